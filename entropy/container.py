"""Container v1 reader and writer: the normative text is bitstream_spec/FORMAT.md.

Version 1.1 writes the HEAD's two hashes as their first 8 bytes (1.0: the whole SHA-256, 64 bytes of a
2.8 s speech file's 2.3 kB); it reads both layouts. 1.0 readers refuse 1.1 files (min_reader_minor = 1).
Version 1.2 adds streams: a file may carry several (a movie's video and its sound), each opened by a
header (HEAD for the first, a ``STRM`` chunk of the same layout for each next) and owning the chunks that
follow it. A 1.2 writer wrote a file of one stream as a 1.1 file, byte for byte; a file of several needed a
1.2 reader (min_reader_minor = 2), so a 1.1 reader refuses it with a version message instead of dropping a
stream.
Version 1.3 deflates the header's JSON params against a preset dictionary of the keys and values codecs
write (FORMAT.md 3.1): ~125 bytes of an audio file's params become ~20, bytes a short clip at a low bitrate
spends on codes instead. Every file it writes needs a 1.3 reader (min_reader_minor = 3).

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
MAJOR, MINOR = 1, 3
# From which min_reader_minor on a file may hold streams, and its HEAD params are deflated; every file this
# writer makes needs the latter, so it is what the writer marks.
STREAMS_MINOR, DEFLATED_PARAMS_MINOR = 2, 3
MIN_READER_MINOR = DEFLATED_PARAMS_MINOR
MAX_STREAMS = 8  # a video, its sound and a few more: more is a damaged or hostile file
MEDIA_KINDS = {1: "image", 2: "video", 3: "audio"}
MEDIA_CODES = {v: k for k, v in MEDIA_KINDS.items()}
HASH_BYTES = 32  # a full SHA-256, as codecs hold it
MAX_FILE_BYTES = 1 << 31
MAX_CHUNKS = 1 << 20
MAX_PARAMS_BYTES = 4096  # the JSON text, deflated or not
# The preset dictionary of deflated params (FORMAT.md 3.1, normative): the canonical JSON that the codecs
# write, with typical values, the commonest last (deflate codes nearer matches in fewer bits). Changing it
# makes every 1.3 file unreadable.
PARAMS_DICTIONARY = b"".join(
    [
        b'{"channels":3,"ep_crc32":0,"height":1080,"quality":1.0,"width":1920}',  # image
        b'{"fps_den":1,"fps_num":25,"frames":0,"height":720,"preset":"fast","quality":1.0,"width":1280}',
        b'"medium","slow"',  # video
        b'{"channels":1,"coded_channels":1,"kbps":12.0,"model_samples":0,"n_q":8,"postfilter":2,'
        b'"sample_rate":48000,"samples":0}44100,"samples":',
        b'{"channels":1,"coded_channels":1,"kbps":6.0,"model_samples":0,"n_q":8,"postfilter":2,'
        b'"sample_rate":16000,"samples":0}',  # audio
    ]
)
_ID = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,63}$")
_CHUNK_TYPE = re.compile(rb"^[A-Za-z][A-Za-z0-9_ ]{3}$")
_CHUNK_HEAD = struct.Struct("<4sI")
CHUNK_FRAMING = _CHUNK_HEAD.size + 4  # a chunk's bytes besides its payload: type, length and CRC

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
class Stream:
    header: Header
    chunks: list[tuple[str, bytes]]  # the stream's codec chunks in file order


@dataclass
class Container:
    header: Header  # the first stream's (HEAD)
    chunks: list[tuple[str, bytes]]  # the first stream's codec chunks in file order (HEAD, MEND excluded)
    version: tuple[int, int] = (1, MIN_READER_MINOR)  # (major, minor) of the file read; 1.3 written
    more: list[Stream] = field(default_factory=list)  # the streams after the first, each opened by STRM

    @property
    def streams(self) -> list[Stream]:
        """Every stream in file order, the first (HEAD's) included."""
        return [Stream(self.header, self.chunks), *self.more]


def head_hash_bytes(min_reader_minor: int) -> int:
    """Bytes of each hash in HEAD: the whole SHA-256 in 1.0 files, its first 8 bytes from 1.1 on (the
    hashes guard against decoding with the wrong weights, not against an adversary)."""
    return HASH_BYTES if min_reader_minor == 0 else 8


def pack_params(params, min_reader_minor: int = MIN_READER_MINOR) -> bytes:
    """HEAD params (any JSON value) -> their bytes in a file of this min_reader_minor: the canonical JSON
    text, raw-deflated against PARAMS_DICTIONARY from 1.3 on."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(text) > MAX_PARAMS_BYTES:
        raise ValueError("codec parameters too large")
    return text if min_reader_minor < DEFLATED_PARAMS_MINOR else deflate_params(text)


def deflate_params(text: bytes) -> bytes:
    """Raw deflate (RFC 1951) against PARAMS_DICTIONARY; the exact bytes are not normative, only that
    they inflate to ``text``."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PARAMS_DICTIONARY)
    return deflate.compress(text) + deflate.flush()


def unpack_params(raw: bytes, min_reader_minor: int) -> object:
    """pack_params' inverse: the JSON value, or ContainerError. The inflated text is capped at
    MAX_PARAMS_BYTES before it is held, so a small chunk cannot inflate to a large allocation."""
    if min_reader_minor >= DEFLATED_PARAMS_MINOR:
        inflate = zlib.decompressobj(-15, PARAMS_DICTIONARY)
        try:
            text = inflate.decompress(raw, MAX_PARAMS_BYTES + 1)
        except zlib.error:
            raise ContainerError("codec parameters are not a valid deflate stream") from None
        if len(text) > MAX_PARAMS_BYTES:
            raise ContainerError("codec parameters too large")
        if not inflate.eof or inflate.unused_data:
            raise ContainerError("codec parameters are not one complete deflate stream")
        raw = text
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..."
        raise ContainerError("codec parameters are not valid JSON") from None


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return _CHUNK_HEAD.pack(ctype, len(payload)) + payload + struct.pack("<I", zlib.crc32(ctype + payload))


def _short_str(s: str, what: str, allow_empty: bool) -> bytes:
    if not (allow_empty and s == "") and not _ID.match(s):
        raise ValueError(f"invalid {what} {s!r}")
    return bytes([len(s)]) + s.encode("ascii")


def encode_header(h: Header, min_reader_minor: int = MIN_READER_MINOR) -> bytes:
    """The HEAD payload in the layout of a file of this min_reader_minor (this writer's, or an older one's,
    for tests of what readers accept)."""
    if h.media not in MEDIA_CODES:
        raise ValueError(f"unknown media kind {h.media!r}")
    n = head_hash_bytes(min_reader_minor)
    if {len(h.weights_hash), len(h.tables_hash)} - {HASH_BYTES, n}:  # a read 1.1 header holds prefixes
        raise ValueError(f"hashes must be {HASH_BYTES} bytes or their {n}-byte prefixes")
    validate_params(h.media, h.params)
    params = pack_params(h.params, min_reader_minor)
    if len(params) > MAX_PARAMS_BYTES:  # deflate may grow incompressible text by a few bytes
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


def write_container(c: Container, min_reader_minor: int = MIN_READER_MINOR) -> bytes:
    """Serialize: signature, version bytes, HEAD and the first stream's chunks, then STRM and the chunks
    of each further stream, MEND. A version 1.3 file, or (``min_reader_minor`` 1 or 2) one as the 1.1 or
    1.2 writer made it, for readers of those versions."""
    if len(c.more) + 1 > MAX_STREAMS:
        raise ValueError(f"at most {MAX_STREAMS} streams in a file")
    if not (STREAMS_MINOR if c.more else 1) <= min_reader_minor <= MINOR:
        streams = len(c.streams)
        raise ValueError(f"a file of {streams} streams cannot be written for 1.{min_reader_minor} readers")
    out = [SIGNATURE, bytes([MAJOR, min_reader_minor, min_reader_minor, 0])]
    for i, stream in enumerate(c.streams):
        out.append(_chunk(b"STRM" if i else b"HEAD", encode_header(stream.header, min_reader_minor)))
        for ctype, payload in stream.chunks:
            t = ctype.encode("ascii")
            if not _CHUNK_TYPE.match(t) or t in (b"HEAD", b"STRM", b"MEND"):
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


def decode_header(payload: bytes, min_reader_minor: int = MIN_READER_MINOR, chunk: str = "HEAD") -> Header:
    """A HEAD (or STRM) payload in the layout of a file of this min_reader_minor."""
    hash_bytes = head_hash_bytes(min_reader_minor)
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
        raise ContainerError(f"trailing bytes in {chunk} chunk")
    params = unpack_params(raw, min_reader_minor)
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
    pos, streams, ended, count = 12, [], False, 0
    while pos < len(data):
        if ended:
            raise ContainerError("data after the end chunk")
        if count >= MAX_CHUNKS:
            raise ContainerError("too many chunks")
        count += 1
        if pos + CHUNK_FRAMING > len(data):
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
        if not streams:
            if name != "HEAD":
                raise ContainerError("first chunk is not HEAD")
            streams.append(Stream(decode_header(payload, min_reader_minor), []))
        elif name == "HEAD":
            raise ContainerError("more than one HEAD chunk")
        elif name == "STRM":
            if min_reader_minor < STREAMS_MINOR:  # a 1.1 reader would have read one stream of a movie
                raise ContainerError(f"STRM chunk in a file marked for {major}.{min_reader_minor} readers")
            if len(streams) >= MAX_STREAMS:
                raise ContainerError(f"more than {MAX_STREAMS} streams")
            streams.append(Stream(decode_header(payload, min_reader_minor, "STRM"), []))
        elif name == "MEND":
            if length:
                raise ContainerError("MEND chunk must be empty")
            ended = True
        elif name[0].isupper():
            streams[-1].chunks.append((name, payload))
        # else: an ancillary chunk (lowercase first letter) this reader skips
        pos = end + 4
    if not streams:
        raise ContainerError("truncated file (no HEAD chunk)")
    if not ended:
        raise ContainerError("truncated file (no MEND chunk)")
    first, *more = streams
    return Container(first.header, first.chunks, (major, minor), more)


def chunk_sizes(data: bytes) -> list[tuple[str, int]]:
    """(type, total bytes incl. CHUNK_FRAMING) of every chunk of an already validated file."""
    pos, out = 12, []
    while pos < len(data):
        ctype, length = _CHUNK_HEAD.unpack_from(data, pos)
        out.append((ctype.decode("ascii"), length + CHUNK_FRAMING))
        pos += length + CHUNK_FRAMING
    return out
