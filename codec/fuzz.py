"""Damaged variants of valid mcodec files, for robustness tests (tests/test_fuzz.py) and volume runs
(bench/fuzz_decoders.py); a codec author can run the same on their codec's files.

Every mutation keeps the container valid: the file is re-framed with every CRC recomputed (FORMAT.md
section 1), so the damage reaches the codecs' own parsers instead of stopping at the CRC check. A decoder
must decode each mutant or refuse it with one of ``mcodec.USER_ERRORS``; anything else is a bug.

Mutations (``MUTATIONS``): bytes inside a chunk's payload; a value of the HEAD params (an integer made
huge, zero, negative, a float, a string, a neighbour of itself) or a key removed; the same inside a
chunk's JSON header (``VGOP``); chunks dropped, duplicated, swapped or moved.
"""

from __future__ import annotations

import copy
import json
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from mcodec.entropy.container import (
    CHUNK_FRAMING,
    DEFLATED_PARAMS_MINOR,
    deflate_params,
    head_hash_bytes,
    unpack_params,
)

SIGNATURE = b"\x89MCD\r\n\x1a\n"
_HEAD = struct.Struct("<4sI")
JSON_HEADER_CHUNKS = (b"VGOP", b"VDIF")  # chunks whose payload starts with u32 n + n bytes of JSON
ODD_VALUES = (
    0,
    -1,
    1,
    2,
    3,
    7,
    255,
    1 << 16,
    2**31 - 1,
    2**31,
    2**32,
    2**63,
    2**70,
    -(2**63),
    0.5,
    1.5,
    -2.5,
    1e300,
    float("nan"),
    float("inf"),
    "x",
    "",
    True,
    False,
    None,
    [],
    [1],
    [0, 0],
    {},
)


@dataclass
class McdFile:
    """A parsed mcodec file, every field replaceable: ``to_bytes`` frames it again with fresh CRCs."""

    version: bytes  # the 4 version bytes
    head_prefix: bytes  # the HEAD payload up to its params length (media, ids, hashes, profile)
    params: object  # the HEAD params (a JSON object in a valid file; any JSON value once mutated)
    chunks: list[tuple[bytes, bytes]]  # the chunks between HEAD and MEND, in file order

    @classmethod
    def parse(cls, data: bytes) -> McdFile:
        """A file whose framing is valid (a reference vector, an encoder's output)."""
        if data[:8] != SIGNATURE:
            raise ValueError("not an mcodec file")
        pos, chunks = 12, []
        while pos < len(data):
            ctype, length = _HEAD.unpack_from(data, pos)
            chunks.append((ctype, data[pos + 8 : pos + 8 + length]))
            pos += length + CHUNK_FRAMING
        (head_type, head), *rest = chunks
        if head_type != b"HEAD" or rest[-1][0] != b"MEND":
            raise ValueError("file does not start with HEAD and end with MEND")
        pos = 1  # FORMAT.md section 3: media, codec id, model id, two hashes, profile, params length
        for field in ("codec", "model", "hashes", "profile"):
            pos += 2 * head_hash_bytes(data[10]) if field == "hashes" else 1 + head[pos]
        params = unpack_params(head[pos + 2 :], data[10])
        return cls(data[8:12], head[:pos], params, rest[:-1])

    def to_bytes(self) -> bytes:
        params = json.dumps(self.params, sort_keys=True, separators=(",", ":")).encode("utf-8")
        if self.version[2] >= DEFLATED_PARAMS_MINOR:
            params = deflate_params(params)
        head = self.head_prefix + struct.pack("<H", len(params) & 0xFFFF) + params
        parts = [(b"HEAD", head), *self.chunks, (b"MEND", b"")]
        return SIGNATURE + self.version + b"".join(frame(t, p) for t, p in parts)


def frame(ctype: bytes, payload: bytes) -> bytes:
    """One chunk: type, length, payload, CRC-32 of type + payload (FORMAT.md section 1)."""
    return _HEAD.pack(ctype, len(payload)) + payload + struct.pack("<I", zlib.crc32(ctype + payload))


def split_json_header(payload: bytes) -> tuple[object, bytes]:
    """A chunk payload that starts with u32 n + n bytes of JSON -> (the JSON value, the bytes after)."""
    (n,) = struct.unpack_from("<I", payload)
    return json.loads(payload[4 : 4 + n]), payload[4 + n :]


def join_json_header(header: object, rest: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack("<I", len(text)) + text + rest


def odd_value(value: object, rng: random.Random) -> object:
    """A value a decoder must survive in place of ``value``: a neighbour of a number, or anything odd."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.4:
        return rng.choice([value + 1, value - 1, value * 2, value // 2, -value, value * 1000 + 1])
    return copy.deepcopy(rng.choice(ODD_VALUES))


def _leaves(value: object, path: tuple = ()) -> list[tuple]:
    """Paths (keys and list indexes) to every value inside a JSON value, containers included."""
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:64]):  # a long list: its first items stand for the rest
            out += _leaves(v, (*path, i))
    return out


def mutate_json(value: object, rng: random.Random) -> object:
    """A copy of a JSON value with one inner value replaced (odd_value), removed, or a list item
    duplicated or dropped."""
    value = copy.deepcopy(value)
    paths = _leaves(value)
    if not paths:
        return odd_value(value, rng)
    path = rng.choice(paths)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key, action = path[-1], rng.random()
    if action < 0.7:
        parent[key] = odd_value(parent[key], rng)
    elif isinstance(parent, dict):
        del parent[key]
    elif action < 0.85:
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        del parent[key]
    return value


def mutate_payload_bytes(f: McdFile, rng: random.Random) -> McdFile | None:
    """Flip a bit, overwrite, insert or delete bytes, or cut the end, inside one chunk's payload; half
    the time in its last quarter (the entropy-coded stream of every codec's chunks)."""
    if not f.chunks:
        return None
    i = rng.randrange(len(f.chunks))
    ctype, data = f.chunks[i]
    data = bytearray(data)
    n = len(data)
    pos = rng.randrange(n) if n and rng.random() < 0.5 else (rng.randrange(3 * n // 4, n) if n else 0)
    action = rng.choice(("flip", "flip", "byte", "insert", "delete", "truncate"))
    if action == "flip" and n:
        data[pos] ^= 1 << rng.randrange(8)
    elif action == "byte" and n:
        data[pos] = rng.randrange(256)
    elif action == "insert":
        data[pos:pos] = rng.randbytes(rng.choice((1, 4, rng.randrange(1, 64))))
    elif action == "delete" and n:
        del data[pos : pos + rng.choice((1, 4, rng.randrange(1, 64)))]
    else:
        del data[pos:]
    chunks = list(f.chunks)
    chunks[i] = (ctype, bytes(data))
    return replace(f, chunks=chunks)


def mutate_head_params(f: McdFile, rng: random.Random) -> McdFile:
    """One HEAD params value made odd, or removed (mutate_json)."""
    return replace(f, params=mutate_json(f.params, rng))


def mutate_chunk_header(f: McdFile, rng: random.Random) -> McdFile | None:
    """One value inside a chunk's JSON header (VGOP) made odd or removed; None if the file has none."""
    found = [i for i, (t, _) in enumerate(f.chunks) if t in JSON_HEADER_CHUNKS]
    if not found:
        return None
    i = rng.choice(found)
    header, rest = split_json_header(f.chunks[i][1])
    chunks = list(f.chunks)
    chunks[i] = (chunks[i][0], join_json_header(mutate_json(header, rng), rest))
    return replace(f, chunks=chunks)


def mutate_chunk_order(f: McdFile, rng: random.Random) -> McdFile | None:
    """A chunk dropped, duplicated (in place or at the end), moved, two swapped, or an unknown critical
    one added."""
    chunks = list(f.chunks)
    if not chunks:
        return None
    i, j = rng.randrange(len(chunks)), rng.randrange(len(chunks))
    action = rng.choice(("drop", "duplicate", "append", "move", "swap", "unknown"))
    if action == "drop":
        del chunks[i]
    elif action == "duplicate":
        chunks.insert(i, chunks[i])
    elif action == "append":
        chunks.append(chunks[i])
    elif action == "move":
        chunks.insert(j, chunks.pop(i))
    elif action == "swap" and len(chunks) > 1:
        chunks[i], chunks[j] = chunks[j], chunks[i]
    else:
        chunks.insert(i, (b"ZZZZ", rng.randbytes(rng.randrange(16))))
    return replace(f, chunks=chunks)


MUTATIONS: dict[str, Callable[[McdFile, random.Random], McdFile | None]] = {
    "payload_bytes": mutate_payload_bytes,
    "head_params": mutate_head_params,
    "chunk_header": mutate_chunk_header,
    "chunk_order": mutate_chunk_order,
}


def mutant(data: bytes, mutation: str, seed: int) -> bytes | None:
    """The file ``data`` with one ``mutation`` drawn from ``seed`` (None where it does not apply)."""
    rng = random.Random(seed)
    out = MUTATIONS[mutation](McdFile.parse(data), rng)
    return None if out is None else out.to_bytes()


def decode_outcome(data: bytes, **options) -> str:
    """``"decoded"``, or the name of the ``USER_ERRORS`` type the decoder refused ``data`` with (its
    message must be one line); any other exception propagates: it is a bug. Every stream is decoded (a
    movie's sound too)."""
    from mcodec import USER_ERRORS, decode_bytes
    from mcodec.compress import open_stream

    try:
        container, _ = decode_bytes(data, **options)
        for stream in container.more:
            codec, payload = open_stream(stream)
            codec.decode(payload)
    except USER_ERRORS as e:
        message = str(e)
        if not message or "\n" in message:
            raise AssertionError(f"{type(e).__name__} without a one-line message: {message!r}") from e
        return type(e).__name__
    return "decoded"
