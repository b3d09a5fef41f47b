"""rANS coding of integer symbols under frozen integer tables (constriction's AnsCoder, 24-bit).

This module is the only place that touches constriction. Every coding primitive reduces to one call:
each symbol comes with the index of the table that codes it.

Stream layout (constriction is a stack: what is encoded last is decoded first). Symbols are grouped by
table index (stable order within a group) and decoded group by group in increasing index, each group with
one concrete ``Categorical(perfect=False)`` model; then the escaped values follow, as two 16-bit halves
each (low half first) under ``Uniform(2**16)``. The coder's 32-bit words are stored little-endian.
Decoding checks the end state: after the last symbol the coder must be back at its initial state.
"""

from __future__ import annotations

import constriction
import numpy as np

from .tables import TableSet

# constriction exposes its submodules as attributes only (not importable by dotted path).
Categorical = constriction.stream.model.Categorical
Uniform = constriction.stream.model.Uniform
AnsCoder = constriction.stream.stack.AnsCoder

_HALF = Uniform(1 << 16)


class EntropyDecodeError(ValueError):
    """The stream cannot be decoded with the given tables (corrupt, truncated or foreign data)."""


def _model(tables: TableSet, k: int) -> Categorical:
    model = tables._models.get(k)
    if model is None:
        # perfect=False is part of the format: the two settings give different quantizations.
        model = Categorical(tables.probabilities(k), perfect=False)
        tables._models[k] = model
    return model


def _table_indexes(indexes: np.ndarray, tables: TableSet, count: int | None = None) -> np.ndarray:
    """Flat table indexes, checked, as the smallest unsigned type (numpy's stable argsort is a radix
    sort for integer types of 16 bits or less)."""
    indexes = np.asarray(indexes).reshape(-1)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
        raise ValueError("table index out of range")
    if count is not None and indexes.size != count:
        raise ValueError("symbols and indexes differ in length")
    return indexes.astype(np.uint8 if tables.num_tables <= 256 else np.uint16, copy=False)


def _groups(indexes: np.ndarray, num_tables: int):
    order = np.argsort(indexes, kind="stable")
    counts = np.bincount(indexes, minlength=num_tables)
    ends = np.cumsum(counts)
    return order, [(k, int(ends[k] - counts[k]), int(ends[k])) for k in np.flatnonzero(counts)]


def encode_indexed(symbols: np.ndarray, indexes: np.ndarray, tables: TableSet) -> bytes:
    """symbols: int array, any shape; indexes: table index per symbol (same size). Returns the stream.
    Symbols outside their table's range are escaped, so any int32 value codes."""
    symbols = np.asarray(symbols).reshape(-1).astype(np.int64)
    indexes = _table_indexes(indexes, tables, symbols.size)
    if symbols.size and (symbols.min() < -(2**31) or symbols.max() >= 2**31):
        raise ValueError("symbols must fit in int32")
    pos = symbols - tables.offsets[indexes]
    lengths = tables.lengths[indexes]
    escape = (pos < 0) | (pos >= lengths)
    slots = np.where(escape, lengths, pos).astype(np.int32)
    coder = AnsCoder()
    if escape.any():
        raw = symbols[escape].astype(np.int32).view(np.uint32)
        halves = np.stack([raw & 0xFFFF, raw >> 16], axis=1).reshape(-1).astype(np.int32)
        coder.encode_reverse(halves, _HALF)
    order, groups = _groups(indexes, tables.num_tables)
    sorted_slots = slots[order]
    for k, a, b in reversed(groups):
        coder.encode_reverse(sorted_slots[a:b], _model(tables, k))
    return coder.get_compressed().astype("<u4").tobytes()


def decode_indexed(data: bytes, indexes: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of encode_indexed: int32 symbols, flat, in the order of ``indexes``."""
    indexes = _table_indexes(indexes, tables)
    if len(data) % 4:
        raise EntropyDecodeError("entropy-coded stream length is not a multiple of 4 bytes")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        coder = AnsCoder(words)
        order, groups = _groups(indexes, tables.num_tables)
        sorted_slots = np.empty(indexes.size, dtype=np.int32)
        for k, a, b in groups:
            sorted_slots[a:b] = coder.decode(_model(tables, k), b - a)
        slots = np.empty_like(sorted_slots)
        slots[order] = sorted_slots
        lengths = tables.lengths[indexes]
        escape = slots == lengths
        values = tables.offsets[indexes] + slots
        n_escape = int(escape.sum())
        if n_escape:
            halves = coder.decode(_HALF, 2 * n_escape).astype(np.uint32).reshape(-1, 2)
            values[escape] = (halves[:, 0] | (halves[:, 1] << 16)).view(np.int32)
        # FORMAT.md 5.4 step 5: an encoder's stream ends at the initial state (x = 0, no words left), so
        # any other end is damage that happened to decode (or a stream longer than its symbols).
        consumed = coder.is_empty()
    except BaseException as e:  # constriction's Rust panics surface as BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise EntropyDecodeError(f"entropy decoding failed: {e}") from None
    if not consumed:
        raise EntropyDecodeError("entropy-coded stream does not end where its symbols do (corrupt)")
    return values.astype(np.int32)


def encode_categorical(symbols: np.ndarray, tables: TableSet, table: int = 0) -> bytes:
    """All symbols under one table (RVQ indices, quantized weights)."""
    symbols = np.asarray(symbols).reshape(-1)
    return encode_indexed(symbols, np.full(symbols.size, table, dtype=np.uint16), tables)


def decode_categorical(data: bytes, count: int, tables: TableSet, table: int = 0) -> np.ndarray:
    return decode_indexed(data, np.full(count, table, dtype=np.uint16), tables)


def encode_factorized(symbols: np.ndarray, tables: TableSet) -> bytes:
    """symbols: [C, ...] with one table per channel (the channel axis first), as compressai's
    EntropyBottleneck codes a latent."""
    symbols = np.asarray(symbols)
    return encode_indexed(symbols, _channel_indexes(symbols.shape, tables), tables)


def decode_factorized(data: bytes, shape: tuple[int, ...], tables: TableSet) -> np.ndarray:
    return decode_indexed(data, _channel_indexes(shape, tables), tables).reshape(shape)


def _channel_indexes(shape: tuple[int, ...], tables: TableSet) -> np.ndarray:
    if len(shape) < 1 or shape[0] != tables.num_tables:
        raise ValueError(f"factorized coding needs {tables.num_tables} channels first, got {shape}")
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    return np.repeat(np.arange(shape[0], dtype=np.uint16), per_channel)
