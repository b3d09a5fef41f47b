"""Container v1 reader and writer: the normative text is bitstream_spec/FORMAT.md.

Version 1.1 writes the HEAD's two hashes as their first 8 bytes (1.0: the whole SHA-256, 64 bytes of a
2.8 s speech file's 2.3 kB); it reads both layouts. 1.0 readers refuse 1.1 files (min_reader_minor = 1).

The reader validates the whole file (signature, versions, every chunk's bounds and CRC32, the header's
fields and media sizes) before any payload is handed to a codec, so a decoder never allocates from
unchecked numbers.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field

SIGNATURE = b"\x89MCD\r\n\x1a\n"
MAJOR, MINOR = 1, 1
MIN_READER_MINOR = 1  # what this writer's files need: the 1.1 HEAD layout
MEDIA_KINDS = {1: "image", 2: "video", 3: "audio"}
MEDIA_CODES = {v: k for k, v in MEDIA_KINDS.items()}
HASH_BYTES = 32  # a full SHA-256, as codecs hold it
MAX_FILE_BYTES = 1 << 31
MAX_CHUNKS = 1 << 20
MAX_PARAMS_BYTES = 4096
_ID = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,63}$")
_CHUNK_TYPE = re.compile(rb"^[A-Za-z][A-Za-z0-9_ ]{3}$")
_CHUNK_HEAD = struct.Struct("<4sI")

# Media sizes a reader accepts (FORMAT.md, "Limits"): field -> (min, max), all required integers.
MEDIA_LIMITS: dict[str, dict[str, tuple[int, int]]] = {
    "image": {"width": (1, 16384), "height": (1, 16384), "channels": (1, 4)},
    "video": {
        "width": (1, 8192),
        "height": (1, 8192),
        "frames": (1, 1 << 20),
        "fps_num": (1, 1 << 20),
        "fps_den": (1, 1 << 20),
    },
    "audio": {"sample_rate": (1, 768000), "channels": (1, 64), "samples": (1, 1 << 36)},
}
MAX_PIXELS = {"image": 1 << 26, "video": 1 << 24}  # per image / per frame


class ContainerError(ValueError):
    """The file is not a valid mcodec container (or one this reader cannot read)."""


@dataclass
class Header:
    media: str
    codec: str
    model_id: str = ""
    weights_hash: bytes = bytes(HASH_BYTES)
    tables_hash: bytes = bytes(HASH_BYTES)
    profile: str = "none"
    params: dict = field(default_factory=dict)


@dataclass
class Container:
    header: Header
    chunks: list[tuple[str, bytes]]  # codec chunks in file order (HEAD and MEND excluded)
    version: tuple[int, int] = (MAJOR, MINOR)


def head_hash_bytes(min_reader_minor: int) -> int:
    """Bytes of each hash in HEAD: the whole SHA-256 in 1.0 files, its first 8 bytes from 1.1 on (the
    hashes guard against decoding with the wrong weights, not against an adversary)."""
    return HASH_BYTES if min_reader_minor == 0 else 8


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return _CHUNK_HEAD.pack(ctype, len(payload)) + payload + struct.pack("<I", zlib.crc32(ctype + payload))


def _short_str(s: str, what: str, allow_empty: bool) -> bytes:
    if not (allow_empty and s == "") and not _ID.match(s):
        raise ValueError(f"invalid {what} {s!r}")
    return bytes([len(s)]) + s.encode("ascii")


def encode_header(h: Header) -> bytes:
    """The HEAD payload in this writer's layout (hashes cut to head_hash_bytes(MIN_READER_MINOR))."""
    if h.media not in MEDIA_CODES:
        raise ValueError(f"unknown media kind {h.media!r}")
    n = head_hash_bytes(MIN_READER_MINOR)
    if {len(h.weights_hash), len(h.tables_hash)} - {HASH_BYTES, n}:  # a read 1.1 header holds prefixes
        raise ValueError(f"hashes must be {HASH_BYTES} bytes or their {n}-byte prefixes")
    validate_params(h.media, h.params)
    params = json.dumps(h.params, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(params) > MAX_PARAMS_BYTES:
        raise ValueError("codec parameters too large")
    return (
        bytes([MEDIA_CODES[h.media]])
        + _short_str(h.codec, "codec id", False)
        + _short_str(h.model_id, "model id", True)
        + h.weights_hash[:n]
        + h.tables_hash[:n]
        + _short_str(h.profile, "determinism profile", False)
        + struct.pack("<H", len(params))
        + params
    )


def write_container(c: Container) -> bytes:
    """Serialize: signature, version bytes, HEAD, the codec chunks, MEND."""
    out = [SIGNATURE, bytes([MAJOR, MINOR, MIN_READER_MINOR, 0]), _chunk(b"HEAD", encode_header(c.header))]
    for ctype, payload in c.chunks:
        t = ctype.encode("ascii")
        if not _CHUNK_TYPE.match(t) or t in (b"HEAD", b"MEND"):
            raise ValueError(f"invalid chunk type {ctype!r}")
        out.append(_chunk(t, payload))
    out.append(_chunk(b"MEND", b""))
    return b"".join(out)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ContainerError(f"truncated header ({what})")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def short_str(self, what: str, allow_empty: bool) -> str:
        raw = self.take(self.take(1, what)[0], what)
        try:
            s = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ContainerError(f"invalid {what}") from None
        if not (allow_empty and s == "") and not _ID.match(s):
            raise ContainerError(f"invalid {what} {s!r}")
        return s


def decode_header(payload: bytes, hash_bytes: int = HASH_BYTES) -> Header:
    """A HEAD payload whose hashes are hash_bytes long (head_hash_bytes of the file's min_reader_minor)."""
    cur = _Cursor(payload)
    code = cur.take(1, "media kind")[0]
    if code not in MEDIA_KINDS:
        raise ContainerError(f"unknown media kind code {code}")
    media = MEDIA_KINDS[code]
    codec = cur.short_str("codec id", False)
    model_id = cur.short_str("model id", True)
    weights_hash = cur.take(hash_bytes, "weights hash")
    tables_hash = cur.take(hash_bytes, "tables hash")
    profile = cur.short_str("determinism profile", False)
    (n,) = struct.unpack("<H", cur.take(2, "parameter length"))
    if n > MAX_PARAMS_BYTES:
        raise ContainerError("codec parameters too large")
    raw = cur.take(n, "parameters")
    if cur.pos != len(payload):
        raise ContainerError("trailing bytes in HEAD chunk")
    try:
        params = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..."
        raise ContainerError("codec parameters are not valid JSON") from None
    try:
        validate_params(media, params)
    except ValueError as e:
        raise ContainerError(str(e)) from None
    return Header(media, codec, model_id, weights_hash, tables_hash, profile, params)


def validate_params(media: str, params) -> None:
    """Parameters are a flat JSON object; the media's size fields are integers within MEDIA_LIMITS."""
    if not isinstance(params, dict):
        raise ValueError("codec parameters must be a JSON object")
    for key, value in params.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (bool, int, float, str)) for v in items):
            raise ValueError(f"parameter {key!r} has an unsupported type")
    for key, (lo, hi) in MEDIA_LIMITS[media].items():
        v = params.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{media} parameter {key!r} missing or not an integer")
        if not lo <= v <= hi:
            raise ValueError(f"{media} {key} = {v} outside the supported range {lo}..{hi}")
    if media in MAX_PIXELS and params["width"] * params["height"] > MAX_PIXELS[media]:
        raise ValueError(f"{media} of {params['width']}x{params['height']} pixels is too large")


def read_container(data: bytes) -> Container:
    """Parse and validate a whole file. Raises ContainerError with a one-line reason."""
    if len(data) > MAX_FILE_BYTES:
        raise ContainerError("file too large")
    if len(data) < len(SIGNATURE) or data[: len(SIGNATURE)] != SIGNATURE:
        raise ContainerError("not an mcodec file (bad signature)")
    if len(data) < len(SIGNATURE) + 4:
        raise ContainerError("truncated file (no version)")
    major, minor, min_reader_minor, reserved = data[8:12]
    if major != MAJOR:
        raise ContainerError(f"unsupported container version {major}.{minor} (this reader: {MAJOR}.x)")
    if min_reader_minor > MINOR:
        raise ContainerError(f"file needs a reader of version {major}.{min_reader_minor} or newer")
    if reserved:
        raise ContainerError("reserved header byte is not zero")
    pos, chunks, header, ended = 12, [], None, False
    while pos < len(data):
        if ended:
            raise ContainerError("data after the end chunk")
        if len(chunks) >= MAX_CHUNKS:
            raise ContainerError("too many chunks")
        if pos + 12 > len(data):
            raise ContainerError(f"truncated chunk header at byte {pos}")
        ctype, length = _CHUNK_HEAD.unpack_from(data, pos)
        if not _CHUNK_TYPE.match(ctype):
            raise ContainerError(f"invalid chunk type at byte {pos}")
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ContainerError(f"chunk {ctype.decode()} at byte {pos} runs past the end of the file")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack_from("<I", data, end)
        if crc != zlib.crc32(ctype + payload):
            raise ContainerError(f"CRC mismatch in chunk {ctype.decode()} at byte {pos}")
        name = ctype.decode("ascii")
        if header is None:
            if name != "HEAD":
                raise ContainerError("first chunk is not HEAD")
            header = decode_header(payload, head_hash_bytes(min_reader_minor))
        elif name == "HEAD":
            raise ContainerError("more than one HEAD chunk")
        elif name == "MEND":
            if length:
                raise ContainerError("MEND chunk must be empty")
            ended = True
        elif name[0].isupper():
            chunks.append((name, payload))
        # else: an ancillary chunk (lowercase first letter) this reader skips
        pos = end + 4
    if header is None:
        raise ContainerError("truncated file (no HEAD chunk)")
    if not ended:
        raise ContainerError("truncated file (no MEND chunk)")
    return Container(header, chunks, (major, minor))


def chunk_sizes(data: bytes) -> list[tuple[str, int]]:
    """(type, total bytes incl. 12 bytes of framing) of every chunk of an already validated file."""
    pos, out = 12, []
    while pos < len(data):
        ctype, length = _CHUNK_HEAD.unpack_from(data, pos)
        out.append((ctype.decode("ascii"), length + 12))
        pos += length + 12
    return out
