"""Frozen integer probability tables: the only probabilities the rANS coder ever sees.

A ``TableSet`` holds K tables. Table k covers the symbols ``offsets[k] .. offsets[k] + lengths[k] - 1``
with integer frequencies, followed by one escape slot (a symbol outside the range is coded as the escape
slot plus 32 raw bits). Each table's frequencies, escape included, are >= 1 and sum to ``2**PRECISION``.
Tables are built once (in float64) when a model is exported and stored as integers; their sha256 goes into
every file, so a decoder with other tables refuses instead of decoding garbage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

PRECISION = 24  # constriction's ANS coder works with 24-bit fixed-point probabilities
TOTAL = 1 << PRECISION
MAX_TABLE_LENGTH = 1 << 16  # in-range symbols per table; keeps tables and decode tables small


def quantize_pmf(pmf: np.ndarray, tail_mass: float = 0.0) -> np.ndarray:
    """Float pmf over L symbols (+ tail mass for the escape) -> int64 frequencies [L + 1], each >= 1,
    summing to exactly TOTAL. Deterministic: largest-remainder rounding in float64."""
    p = np.append(np.asarray(pmf, dtype=np.float64), max(float(tail_mass), 0.0))
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    n = p.size
    if n > MAX_TABLE_LENGTH + 1:
        raise ValueError(f"table of {n - 1} symbols exceeds the limit of {MAX_TABLE_LENGTH}")
    if p.sum() <= 0:
        p = np.ones(n)
    budget = TOTAL - n  # every slot gets 1 first, the rest is shared in proportion
    share = p / p.sum() * budget
    freqs = 1 + np.floor(share).astype(np.int64)
    remainder = TOTAL - int(freqs.sum())
    if remainder > 0:
        # stable order: larger fractional part first, ties by position
        order = np.lexsort((np.arange(n), -(share - np.floor(share))))
        freqs[order[:remainder]] += 1
    assert freqs.sum() == TOTAL and freqs.min() >= 1
    return freqs


@dataclass(frozen=True)
class TableSet:
    """K integer tables. freqs: int32 [K, max_len + 1], row k holds lengths[k] symbol frequencies then the
    escape frequency, zero-padded. offsets, lengths: int32 [K]."""

    freqs: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    _models: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        k = self.offsets.shape[0]
        if self.freqs.ndim != 2 or self.freqs.shape[0] != k or self.lengths.shape != (k,):
            raise ValueError("inconsistent table shapes")
        if k == 0 or self.lengths.min() < 1 or self.lengths.max() + 1 > self.freqs.shape[1]:
            raise ValueError("table lengths out of range")
        row_sums = self.freqs.astype(np.int64).sum(1)
        slots = np.arange(self.freqs.shape[1])[None, :] <= self.lengths[:, None]
        if (row_sums != TOTAL).any() or (self.freqs[slots] < 1).any() or (self.freqs[~slots] != 0).any():
            raise ValueError(f"each table must hold frequencies >= 1 summing to 2**{PRECISION}")

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets, tail_masses=None) -> TableSet:
        """One table per float pmf; offsets[k] is the symbol value of pmfs[k][0]."""
        tails = [0.0] * len(pmfs) if tail_masses is None else tail_masses
        rows = [quantize_pmf(p, t) for p, t in zip(pmfs, tails, strict=True)]
        width = max(r.size for r in rows)
        freqs = np.zeros((len(rows), width), dtype=np.int32)
        for i, r in enumerate(rows):
            freqs[i, : r.size] = r
        return cls(
            freqs, np.asarray(offsets, dtype=np.int32), np.array([r.size - 1 for r in rows], dtype=np.int32)
        )

    @property
    def num_tables(self) -> int:
        return int(self.offsets.shape[0])

    def sha256(self) -> bytes:
        """Hash of the canonical little-endian content: precision, K, width, offsets, lengths, freqs."""
        h = hashlib.sha256()
        h.update(np.array([PRECISION, *self.freqs.shape], dtype="<u4").tobytes())
        for arr in (self.offsets, self.lengths, self.freqs):
            h.update(np.ascontiguousarray(arr, dtype="<i4").tobytes())
        return h.digest()

    def probabilities(self, k: int) -> np.ndarray:
        """Table k (escape last) as float64 probabilities, exact multiples of 2**-PRECISION: what the
        coder is given. It re-quantizes them (``effective_freqs``)."""
        return self.freqs[k, : self.lengths[k] + 1].astype(np.float64) / TOTAL

    def effective_freqs(self, k: int) -> np.ndarray:
        """The frequencies table k is really coded with (FORMAT.md 5.4): constriction's
        Categorical(perfect=False) maps cumulative F[i] to C[i] = i + floor(F[i] * (2^24 - n) / 2^24)."""
        f = self.freqs[k, : self.lengths[k] + 1].astype(np.int64)
        n = f.size
        cum = np.concatenate([[0], np.cumsum(f)[:-1]])
        c = np.append(np.arange(n) + (cum * (TOTAL - n)) // TOTAL, TOTAL)
        return np.diff(c)

    def code_lengths(self, k: int, n: int) -> np.ndarray:
        """Ideal code length in bits of each symbol 0 .. n - 1 under table k, escapes included (what
        ``information_bits`` sums): a rate-aware search weighs its choices with them."""
        pos = np.arange(n) - self.offsets[k]
        escape = (pos < 0) | (pos >= self.lengths[k])
        f = self.effective_freqs(k)[np.where(escape, self.lengths[k], pos)].astype(np.float64)
        return PRECISION - np.log2(f) + 32 * escape

    def information_bits(self, symbols: np.ndarray, indexes: np.ndarray) -> float:
        """Ideal code length sum(-log2 p) of the symbols under the tables' effective frequencies,
        32 bits per escape included: what a perfect entropy coder would need."""
        pos = symbols.astype(np.int64) - self.offsets[indexes]
        lengths = self.lengths[indexes]
        escape = (pos < 0) | (pos >= lengths)
        slot = np.where(escape, lengths, pos)
        eff = np.zeros(self.freqs.shape, dtype=np.int64)
        for k in np.unique(indexes):
            e = self.effective_freqs(int(k))
            eff[k, : e.size] = e
        f = eff[indexes, slot].astype(np.float64)
        return float(np.sum(PRECISION - np.log2(f)) + 32 * escape.sum())
