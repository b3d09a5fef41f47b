"""Gaussian-conditional coding with a fixed scale table (as compressai's GaussianConditional).

A latent y with predicted mean mu and scale sigma is coded as the residual ``round(y - mu)`` under the
zero-mean discretized Gaussian whose table scale is the smallest table entry >= sigma. Only integers
cross to the coder: the caller computes sigma on a deterministic path and ``scale_indexes`` snaps it.

The default scale table and its 64 integer tables are frozen in ``gaussian_tables.npz`` (FORMAT.md
6.2): computing them at run time through numpy's exp and scipy's ndtr gave other integers on the GPU
machine (numpy 2, another scipy) than here, so a video encoded there was refused here. The generator
stays (``build_gaussian_tables``); ``python -m mcodec.entropy.gaussian`` rewrites the file.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

from .coder import decode_indexed, encode_indexed
from .tables import TableSet

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
TAIL_MASS = 1e-9
FROZEN_PATH = Path(__file__).with_name("gaussian_tables.npz")
FROZEN_SHA256 = "a8d88ca2825b88262044701fc7cc20317e149a4874bd3ba4176cad05fadd2629"


def build_scale_table(levels: int = SCALE_LEVELS) -> np.ndarray:
    """Log-spaced scales [levels], float64 (compressai's get_scale_table: 0.11 .. 256)."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), levels))


@functools.cache
def _frozen() -> tuple[TableSet, np.ndarray]:
    with np.load(FROZEN_PATH) as f:
        tables = TableSet(f["freqs"], f["offsets"], f["lengths"])
        scales = f["scales"].astype(np.float64)
    if tables.sha256().hex() != FROZEN_SHA256:
        raise RuntimeError(f"{FROZEN_PATH} is damaged (sha256 mismatch): reinstall mcodec")
    return tables, scales


def scale_table() -> np.ndarray:
    """The frozen default scale table [64], float64: the same values on every machine."""
    return _frozen()[1].copy()


def gaussian_tables() -> TableSet:
    """The frozen integer tables of the default scale table (FORMAT.md 6.2)."""
    return _frozen()[0]


def build_gaussian_tables(scales: np.ndarray | None = None, tail_mass: float = TAIL_MASS) -> TableSet:
    """One zero-centred table per scale, support +-ceil(sigma * z) where z covers 1 - tail_mass."""
    scales = build_scale_table() if scales is None else np.asarray(scales, dtype=np.float64)
    z = -float(ndtri(tail_mass / 2))
    pmfs, offsets, tails = [], [], []
    for s in scales:
        half = int(math.ceil(s * z))
        k = np.arange(-half, half + 1, dtype=np.float64)
        upper = ndtr((k + 0.5) / s)
        lower = ndtr((k - 0.5) / s)
        pmf = upper - lower
        pmfs.append(pmf)
        offsets.append(-half)
        tails.append(max(1.0 - pmf.sum(), 0.0))
    return TableSet.from_pmfs(pmfs, offsets, tails)


def scale_indexes(scales: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """Smallest table entry >= sigma (sigma below the table's first entry takes index 0), uint8.
    Pass float64 scales computed on the deterministic entropy-parameter path."""
    table = scale_table() if table is None else table
    scales = np.nan_to_num(np.asarray(scales, dtype=np.float64), nan=table[-1])
    idx = np.searchsorted(table, scales, side="left")
    return np.minimum(idx, len(table) - 1).astype(np.uint8 if len(table) <= 256 else np.uint16)


def encode_gaussian(y: np.ndarray, means: np.ndarray, indexes: np.ndarray, tables: TableSet) -> bytes:
    """y, means: float arrays of one shape; indexes from scale_indexes. Codes round(y - means)."""
    residual = np.rint(np.asarray(y, dtype=np.float64) - means)
    residual = np.clip(residual, -(2**31), 2**31 - 1).astype(np.int64)
    return encode_indexed(residual, indexes, tables)


def decode_gaussian(data: bytes, means: np.ndarray, indexes: np.ndarray, tables: TableSet) -> np.ndarray:
    """Returns y_hat = residual + means, float64, shaped like means."""
    residual = decode_indexed(data, indexes, tables)
    return residual.reshape(np.shape(means)).astype(np.float64) + means


def write_frozen(path: Path = FROZEN_PATH) -> str:
    """Regenerate the frozen file from the generator; returns the tables' sha256 for FROZEN_SHA256."""
    scales = build_scale_table()
    tables = build_gaussian_tables(scales)
    np.savez_compressed(
        path, freqs=tables.freqs, offsets=tables.offsets, lengths=tables.lengths, scales=scales
    )
    return tables.sha256().hex()


if __name__ == "__main__":
    print(write_frozen())
