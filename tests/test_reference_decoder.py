"""A second, independent decoder for the entropy-coded streams of ``mcodec.entropy.encode_indexed``.

It is written in plain Python integers from the format description alone (no constriction) and must
decode every stream exactly as ``decode_indexed`` does: this shows the stream format is specified
precisely enough to be reimplemented. A matching reference *encoder* (byte-exact against constriction)
pins down the one non-obvious point, the categorical quantization.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pytest

from mcodec.entropy import EntropyDecodeError, TableSet, decode_indexed, encode_indexed

PRECISION = 24  # probability precision (bits)
TOTAL = 1 << PRECISION
WORD_BITS = 32
WORD_MASK = (1 << WORD_BITS) - 1
LOW = 1 << WORD_BITS  # state invariant x >= 2**32 while words remain
HALF_PROBABILITY = TOTAL >> 16  # Uniform(2**16): 256 per symbol


def categorical_cdf(freqs) -> list[int]:
    """Effective cumulative table C[0..n] of constriction's ``Categorical(freqs / 2**24, perfect=False)``.

    C[i] = i + floor(F[i] * (2**24 - n) / 2**24) for i < n, with F[i] = freqs[0] + ... + freqs[i-1],
    and C[n] = 2**24. (constriction computes this in float64, where every step is exact for our
    integer tables, so the integer formula is bit-identical.) Note C[i+1] - C[i] != freqs[i] in general.
    """
    n = len(freqs)
    free = TOTAL - n
    cdf, cum = [], 0
    for i, f in enumerate(freqs):
        cdf.append(i + (cum * free) // TOTAL)
        cum += int(f)
    assert cum == TOTAL
    cdf.append(TOTAL)
    return cdf


def uniform_halves_cdf() -> list[int]:
    """Uniform(2**16) at 24-bit precision: symbol s has left cumulative 256*s and probability 256."""
    return [HALF_PROBABILITY * s for s in range((1 << 16) + 1)]


class _AnsReader:
    """rANS decoder state (u64 state, u32 words, 24-bit precision), as in the spec below."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise ValueError("stream length is not a multiple of 4 bytes")
        self.words = [int(w) for w in np.frombuffer(data, dtype="<u4")]
        if self.words and self.words[-1] == 0:
            raise ValueError("stream ends in a zero word")
        self.state = 0
        if self.words:
            self.state = self.words.pop()
            while self.words and self.state < LOW:
                self.state = (self.state << WORD_BITS) | self.words.pop()

    def decode(self, cdf: list[int]) -> int:
        q = self.state & (TOTAL - 1)
        s = bisect_right(cdf, q) - 1  # C[s] <= q < C[s+1]
        left, prob = cdf[s], cdf[s + 1] - cdf[s]
        self.state = (self.state >> PRECISION) * prob + (q - left)
        if self.state < LOW and self.words:
            self.state = (self.state << WORD_BITS) | self.words.pop()
        return s

    def exhausted(self) -> bool:
        return self.state == 0 and not self.words


def reference_decode_indexed(data: bytes, indexes, tables: TableSet, *, strict: bool = False) -> np.ndarray:
    """Decode a stream of ``encode_indexed`` without constriction. Normative algorithm:

    Notation: all values are unbounded non-negative integers; ``>>``/``<<`` are shifts, ``&`` bitwise
    and. Precision P = 24, word size 32 bits, the state x fits in 64 bits.

    1. Words. The stream is a sequence of m little-endian unsigned 32-bit words W[0..m-1] (its byte
       length must be a multiple of 4). If m > 0 and W[m-1] == 0 the stream is invalid. The words
       form a stack whose top is the highest index: "pop" removes and returns the last word.
    2. Initial state. If m == 0 then x = 0. Otherwise x = pop(); then, while x < 2**32 and words
       remain, x = (x << 32) | pop(). (So x = W[m-1] if m == 1, else (W[m-1] << 32) | W[m-2].)
    3. Decoding one symbol under a model with cumulative table C[0] = 0 < C[1] < ... < C[n] = 2**24:
       q = x & (2**24 - 1); s = the index with C[s] <= q < C[s+1]; p = C[s+1] - C[s];
       x = (x >> 24) * p + (q - C[s]); then, if x < 2**32 and words remain, x = (x << 32) | pop().
       (At most one word is read per symbol.)
    4. Categorical model of table k: n = lengths[k] + 1 slots (slot lengths[k] is the escape) with
       frequencies f[0..n-1] = freqs[k, 0..n-1]; F[i] = f[0] + ... + f[i-1];
       C[i] = i + floor(F[i] * (2**24 - n) / 2**24) for 0 <= i < n, and C[n] = 2**24.
       The frequencies are NOT used as given: C[i+1] - C[i] generally differs from f[i].
    5. Uniform model of the escape halves: C[s] = 256 * s for s in 0..65536, so s = q >> 8, p = 256.
    6. Layout. For each table index k in increasing order, let J_k be the positions j with
       indexes[j] == k, in increasing order; decode |J_k| slots with the categorical model of table k
       and assign them to J_k in order. A position j with slot == lengths[indexes[j]] is escaped; let E
       be their number. Then decode 2E symbols with the uniform model, h[0..2E-1]; the e-th escaped
       position in increasing j gets the value v = h[2e] | (h[2e+1] << 16), read as a two's-complement
       int32. Every other position gets offsets[indexes[j]] + slot.
    7. A stream written by the encoder leaves x == 0 and no words after step 6 (``strict`` checks
       this, as ``mcodec.entropy.decode_indexed`` does).
    """
    indexes = np.asarray(indexes).reshape(-1).astype(np.int64)
    reader = _AnsReader(data)
    slots = np.empty(indexes.size, dtype=np.int64)
    for k in sorted(set(indexes.tolist())):
        n = int(tables.lengths[k]) + 1
        cdf = categorical_cdf(tables.freqs[k, :n].tolist())
        for j in np.flatnonzero(indexes == k).tolist():
            slots[j] = reader.decode(cdf)
    lengths = tables.lengths[indexes].astype(np.int64)
    values = tables.offsets[indexes].astype(np.int64) + slots
    escaped = np.flatnonzero(slots == lengths).tolist()
    if escaped:
        halves_cdf = uniform_halves_cdf()
        for j in escaped:
            raw = reader.decode(halves_cdf) | (reader.decode(halves_cdf) << 16)
            values[j] = raw - (1 << 32) if raw >= 1 << 31 else raw
    if strict and not reader.exhausted():
        raise ValueError("stream not exactly consumed")
    return values.astype(np.int32)


def reference_encode_indexed(symbols, indexes, tables: TableSet) -> bytes:
    """Byte-exact inverse of the decoder above (push in reverse decoding order)."""
    symbols = np.asarray(symbols).reshape(-1).astype(np.int64)
    indexes = np.asarray(indexes).reshape(-1).astype(np.int64)
    pos = symbols - tables.offsets[indexes]
    lengths = tables.lengths[indexes].astype(np.int64)
    escape = (pos < 0) | (pos >= lengths)
    slots = np.where(escape, lengths, pos)
    pushes = []  # (symbol, cdf) in decoding order
    for k in sorted(set(indexes.tolist())):
        cdf = categorical_cdf(tables.freqs[k, : int(tables.lengths[k]) + 1].tolist())
        pushes += [(int(slots[j]), cdf) for j in np.flatnonzero(indexes == k).tolist()]
    halves_cdf = uniform_halves_cdf()
    for v in symbols[escape].tolist():
        raw = v & 0xFFFFFFFF
        pushes += [(raw & 0xFFFF, halves_cdf), (raw >> 16, halves_cdf)]
    words, x = [], 0
    for s, cdf in reversed(pushes):
        left, prob = cdf[s], cdf[s + 1] - cdf[s]
        if (x >> (64 - PRECISION)) >= prob:
            words.append(x & WORD_MASK)
            x >>= WORD_BITS
        x = ((x // prob) << PRECISION) | (left + x % prob)
    while x:  # the state, least significant word first, leading zero words dropped
        words.append(x & WORD_MASK)
        x >>= WORD_BITS
    return np.array(words, dtype="<u4").tobytes()


RNG = np.random.default_rng(20240607)
EXTREMES = [-(2**31), 2**31 - 1, -1, 0, 1, 2**16, -(2**16) - 1, 123456789]


def _skewed(n, rng):
    return rng.dirichlet(np.full(n, 0.05))


TABLE_SETS = {
    "mixed": lambda: TableSet.from_pmfs(
        [_skewed(7, RNG), np.ones(40), RNG.dirichlet(np.ones(300)), np.array([1.0])],
        offsets=[-3, 0, -150, 5],
        tail_masses=[1e-6, 0.0, 1e-3, 0.3],
    ),
    "very_skewed": lambda: TableSet.from_pmfs(
        [np.array([1.0] + [1e-12] * 20), np.exp(-np.arange(64) / 2.0)],
        offsets=[0, -10],
        tail_masses=[1e-9, 0],
    ),
    "flat_max_length": lambda: TableSet.from_pmfs([np.ones(1 << 16), np.ones(3)], offsets=[-(1 << 15), 0]),
}


def _symbols(tables: TableSet, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.integers(0, tables.num_tables, n)
    pos = np.empty(n, dtype=np.int64)
    for k in range(tables.num_tables):
        sel = idx == k
        length = int(tables.lengths[k])
        p = tables.freqs[k, :length].astype(np.float64)
        pos[sel] = rng.choice(length, size=int(sel.sum()), p=p / p.sum())
    s = tables.offsets[idx] + pos
    out = rng.random(n) < 0.02  # out-of-range symbols: escapes
    s[out] = tables.offsets[idx[out]] + np.where(rng.random(out.sum()) < 0.5, -1, tables.lengths[idx[out]])
    if n >= len(EXTREMES):
        s[rng.choice(n, len(EXTREMES), replace=False)] = EXTREMES
    return s, idx


def _check(s, idx, tables):
    data = encode_indexed(s, idx, tables)
    got = reference_decode_indexed(data, idx, tables, strict=True)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.asarray(s, dtype=np.int64))
    np.testing.assert_array_equal(got, decode_indexed(data, idx, tables))
    assert reference_encode_indexed(s, idx, tables) == data
    return data


@pytest.mark.parametrize("name", sorted(TABLE_SETS))
@pytest.mark.parametrize("n", [0, 1, 2, 3000])
def test_reference_decoder_matches(name, n):
    tables = TABLE_SETS[name]()
    s, idx = _symbols(tables, n, np.random.default_rng(n))
    _check(s, idx, tables)


def test_single_symbols_and_escapes_only():
    tables = TABLE_SETS["mixed"]()
    for k in range(tables.num_tables):
        for v in [int(tables.offsets[k]), int(tables.offsets[k] + tables.lengths[k] - 1), *EXTREMES]:
            _check(np.array([v]), np.array([k]), tables)
    idx = np.array([3, 0, 2, 2, 1, 0])  # every symbol escaped, tables interleaved
    _check(np.array(EXTREMES[: idx.size]), idx, tables)


def test_one_table_many_symbols():
    tables = TABLE_SETS["very_skewed"]()
    s = np.random.default_rng(7).geometric(0.3, 4000) - 12  # table 1 covers -10..53: some escapes
    _check(s, np.ones(s.size, dtype=np.int64), tables)


def test_effective_frequencies_differ_from_table():
    """perfect=False requantizes even exact 2**-24 multiples: the table frequencies are not the model."""
    tables = TABLE_SETS["mixed"]()
    f = tables.freqs[2, : int(tables.lengths[2]) + 1].tolist()
    cdf = categorical_cdf(f)
    effective = np.diff(cdf).tolist()
    assert sum(effective) == 1 << PRECISION and min(effective) >= 1
    assert effective != f
    # and a decoder that uses the table frequencies as given decodes garbage
    s, idx = _symbols(tables, 2000, np.random.default_rng(3))
    idx[:] = 2
    s = np.clip(s, tables.offsets[2], tables.offsets[2] + tables.lengths[2] - 1)
    reader = _AnsReader(encode_indexed(s, idx, tables))
    naive = [0, *np.cumsum(f).tolist()]
    wrong = np.array([reader.decode(naive) for _ in range(s.size)]) + tables.offsets[2]
    assert not np.array_equal(wrong, s)


def test_invalid_streams_rejected_like_production():
    tables = TABLE_SETS["mixed"]()
    idx = np.zeros(4, dtype=np.int64)
    for bad in [b"\x01\x02\x03", np.array([5, 0], dtype="<u4").tobytes()]:
        with pytest.raises(ValueError):
            reference_decode_indexed(bad, idx, tables)
        with pytest.raises(EntropyDecodeError):
            decode_indexed(bad, idx, tables)


def test_zero_state_stream_is_empty():
    """Slot 0 has left cumulative 0, so symbols that all sit in slot 0 leave the state at 0: the stream is
    0 bytes although it codes n > 0 symbols (0 bytes does not imply n == 0)."""
    tables = TABLE_SETS["mixed"]()
    idx = np.array([0, 1, 2, 3, 1])
    data = _check(tables.offsets[idx], idx, tables)
    assert data == b""


def test_end_state_check_agrees_with_the_reference():
    """decode_indexed refuses exactly the streams whose end state the strict reference refuses (and
    otherwise decodes them to the same values): random words, decoded under random indexes."""
    tables = TABLE_SETS["mixed"]()
    rng = np.random.default_rng(5)
    refused = 0
    for _ in range(200):
        data = rng.bytes(4 * int(rng.integers(0, 6)))
        if data[-4:] == bytes(4):
            continue  # a zero top word is invalid before decoding starts
        idx = rng.integers(0, tables.num_tables, int(rng.integers(0, 12)))
        try:
            want = reference_decode_indexed(data, idx, tables, strict=True)
        except ValueError:
            refused += 1
            with pytest.raises(EntropyDecodeError):
                decode_indexed(data, idx, tables)
            continue
        np.testing.assert_array_equal(decode_indexed(data, idx, tables), want)
    assert 0 < refused < 200
