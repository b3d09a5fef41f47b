"""Gaussian-conditional coding with a fixed scale table (as compressai's GaussianConditional).

A latent y with predicted mean mu and scale sigma is coded as the residual ``round(y - mu)`` under the
zero-mean discretized Gaussian whose table scale is the smallest table entry >= sigma. Only integers
cross to the coder: the caller computes sigma on a deterministic path and ``scale_indexes`` snaps it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from .coder import decode_indexed, encode_indexed
from .tables import TableSet

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
TAIL_MASS = 1e-9


def scale_table(levels: int = SCALE_LEVELS) -> np.ndarray:
    """Log-spaced scales [levels], float64 (compressai's get_scale_table: 0.11 .. 256)."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), levels))


def gaussian_tables(scales: np.ndarray | None = None, tail_mass: float = TAIL_MASS) -> TableSet:
    """One zero-centred table per scale, support +-ceil(sigma * z) where z covers 1 - tail_mass."""
    scales = scale_table() if scales is None else np.asarray(scales, dtype=np.float64)
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
