"""Small arrays of side symbols (the image codecs' LFCR grid and WFLT coefficients, rvq's AHBE levels):
one scale index per channel into the 64 frozen Gaussian tables of FORMAT.md 6.2, then one stream of every
channel's symbols in turn."""

from __future__ import annotations

import numpy as np

from mcodec.codec.base import CodecError
from mcodec.entropy import EntropyDecodeError, decode_indexed, encode_indexed, gaussian_tables, scale_table


def _code_channel(symbols: np.ndarray) -> tuple[int, bytes]:
    """(scale index, stream) of one channel's symbols under the frozen table that codes them shortest,
    searched around the table scale nearest their RMS."""
    tables, scales = gaussian_tables(), scale_table()
    rms = float(np.sqrt(np.mean(symbols.astype(np.float64) ** 2)))
    centre = int(np.searchsorted(scales, rms))
    best = None
    for i in range(max(centre - 3, 0), min(centre + 3, len(scales) - 1) + 1):
        data = encode_indexed(symbols, np.full(symbols.size, i, np.uint8), tables)
        if best is None or len(data) < len(best[1]):
            best = (i, data)
    return best


def pack(symbols: np.ndarray) -> bytes:
    """symbols [C, n] (int) -> C scale indexes (u8), then the stream of the C x n symbols."""
    coded = [_code_channel(c.reshape(-1)) for c in symbols]
    indexes = np.repeat([i for i, _ in coded], symbols[0].size).astype(np.uint8)
    stream = encode_indexed(symbols.reshape(-1), indexes, gaussian_tables())
    return bytes(i for i, _ in coded) + stream


def unpack(data: bytes, channels: int, count: int, chunk: str) -> np.ndarray:
    """Inverse of pack: int32 [channels, count]; a one-line CodecError naming ``chunk`` if damaged."""
    if len(data) < channels:
        raise CodecError(f"{chunk} chunk is too short")
    indexes = np.frombuffer(data[:channels], np.uint8)
    if indexes.max() >= len(scale_table()):
        raise CodecError(f"{chunk} chunk has an invalid scale index")
    try:
        symbols = decode_indexed(data[channels:], np.repeat(indexes, count), gaussian_tables())
    except EntropyDecodeError as e:
        raise CodecError(f"{chunk} chunk: {e}") from None
    return symbols.reshape(channels, count)
