"""The public Python API: encode a media file to an mcodec file, decode it back, describe it.

The CLI is a thin shell over these functions; they raise one of ``USER_ERRORS`` with one-line
messages for every failure a user can cause.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from mcodec.codec import CodecError, Payload, media_io, registry
from mcodec.codec.atomic_write import check_output, write_bytes_atomic
from mcodec.entropy import (
    Container,
    ContainerError,
    EntropyDecodeError,
    Header,
    read_container,
    write_container,
)
from mcodec.entropy.container import Stream, chunk_sizes

# Every failure a user can cause (bad input, wrong weights, corrupt files): reported in one line.
USER_ERRORS = (CodecError, ContainerError, EntropyDecodeError)
MAX_INPUT_BYTES = 1 << 31
# A bitrate request (a codec whose knob is kbit/s) is met in file bytes, headers included, within this
# margin: where a short file's fixed container bytes would push it further over, the codec sheds rate
# (rvq: its finest stages) until it fits or can go no lower. rvq's ~115 fixed bytes (container 1.3) are 10% of
# the request below ~6 s at 1.5 kbit/s and ~1.5 s at 6, so longer files keep every stage.
RATE_TOLERANCE = 0.10


@dataclass
class EncodeResult:
    media: str
    codec: str
    quality: float
    input_bytes: int
    output_bytes: int
    params: dict
    streams: list[dict] = field(default_factory=list)  # describe()'s per-stream rows, the first included


def encode_stream(
    media_tensor,
    media: str,
    codec_id: str | None = None,
    quality: float | None = None,
    device: str = "cpu",
    weights: Path | None = None,
    **options,
) -> Stream:
    """Media item -> one coded stream (its header and chunks). ``options`` go to the codec (video:
    preset, progress). A bitrate request is met in the bytes of a file of this stream alone."""
    codec_id = codec_id or registry.default_for(media)
    info = registry.info(codec_id)
    if info.media != media:
        raise CodecError(f"codec {codec_id!r} codes {info.media}, not {media}")
    quality = info.default_quality if quality is None else quality
    lo, hi = info.qualities
    if not lo <= quality <= hi:
        raise CodecError(f"{info.unit} {quality:g} outside {codec_id}'s range {lo:g}..{hi:g}")
    codec = registry.get(codec_id, weights)
    payload = codec.encode(media_tensor, quality, device=device, **options)

    def stream(p: Payload) -> Stream:
        ids = (media, codec_id, codec.model_id, codec.weights_hash, codec.tables_hash, codec.profile)
        return Stream(Header(*ids, p.params), p.chunks)

    coded = stream(payload)
    limit = _byte_limit(info.unit, quality, payload.params)
    while limit is not None and (excess := (size := _file_bytes(coded)) - limit) > 0:
        aim = size - _byte_limit(info.unit, quality, payload.params, tolerance=0)
        if (lower := codec.reduce_rate(payload, excess, aim)) is None:
            break
        payload = lower
        coded = stream(payload)
    return coded


def _file_bytes(stream: Stream) -> int:
    return len(write_container(Container(stream.header, stream.chunks)))


def encode_bytes(
    media_tensor,
    media: str,
    codec_id: str | None = None,
    quality: float | None = None,
    device: str = "cpu",
    weights: Path | None = None,
    **options,
) -> bytes:
    """Media item -> the bytes of an mcodec file. ``options`` go to the codec (video: preset, progress)."""
    s = encode_stream(media_tensor, media, codec_id, quality, device, weights, **options)
    return write_container(Container(s.header, s.chunks))


def _byte_limit(unit: str, kbps: float, params: dict, tolerance: float = RATE_TOLERANCE) -> int | None:
    """The most file bytes an audio bitrate request allows (``tolerance`` over it); None for quality
    levels."""
    if unit != "kbps" or "samples" not in params:
        return None
    return int((1 + tolerance) * kbps * 1000 * params["samples"] / params["sample_rate"] / 8)


def _open_payload(data: bytes, weights: Path | None = None):
    """Bytes of an mcodec file -> (container, codec, payload) of its first stream, after every check of
    that stream that needs no decoding."""
    container = read_container(data)
    codec, payload = open_stream(container.streams[0], weights)
    return container, codec, payload


def open_stream(stream: Stream, weights: Path | None = None):
    """A stream of a read container -> (codec, payload), after every check that needs no decoding."""
    h = stream.header
    codec = registry.get(h.codec, weights)
    if codec.info.media != h.media:
        raise CodecError(f"file says {h.media} but codec {h.codec!r} codes {codec.info.media}")
    if h.weights_hash != codec.weights_hash[: len(h.weights_hash)]:  # 1.1 files hold 8-byte prefixes
        raise CodecError(
            f"file was encoded with other weights (model {h.model_id!r}, weights "
            f"{h.weights_hash.hex()[:16]}; these are {codec.weights_hash.hex()[:16]})"
        )
    if h.tables_hash != codec.tables_hash[: len(h.tables_hash)]:
        raise CodecError("file was encoded with other entropy tables")
    if h.profile != codec.profile:
        raise CodecError(f"unsupported determinism profile {h.profile!r} for {h.codec}")
    codec.check_params(h.params)
    return codec, Payload(h.params, stream.chunks)


def decode_bytes(data: bytes, device: str = "cpu", weights: Path | None = None, **options):
    """Bytes of an mcodec file -> (container, media item). ``options`` go to the codec (video: frames)."""
    container, codec, payload = _open_payload(data, weights)
    return container, codec.decode(payload, device=device, **options)


def read_mcodec_file(path: Path) -> bytes:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise ContainerError(f"{path}: file too large ({size} bytes)")
        return path.read_bytes()
    except FileNotFoundError:
        raise CodecError(f"{path}: no such file") from None
    except OSError as e:
        raise CodecError(f"cannot read {path}: {e.strerror or e}") from None


def encode_file(
    src: Path,
    dst: Path,
    codec_id: str | None = None,
    quality: float | None = None,
    device: str = "cpu",
    weights: Path | None = None,
    force: bool = False,
    audio: bool = True,
    audio_bitrate: float | None = None,
    audio_codec: str | None = None,
    **options,
) -> EncodeResult:
    """Encode the media file src into the mcodec file dst; ``options`` go to the codec. A video with sound
    (a movie) is coded as two streams: the video with ``codec_id`` at ``quality``, and its first audio
    stream, over the video's span, with ``audio_codec`` (default: the audio default) at ``audio_bitrate``
    kbit/s (default: the codec's); ``audio=False`` leaves the sound out. ``weights`` is the video's."""
    src, dst = Path(src), Path(dst)
    check_output(dst, force)
    media = registry.info(codec_id).media if codec_id else media_io.media_kind(src)
    if not registry.has_codec_for(media):
        raise CodecError(f"{src}: {media} coding is not available yet")
    # audio and video are read while they are coded: a long recording or clip is never whole in memory
    streamed = {"audio": media_io.open_audio, "video": media_io.open_video}
    item = streamed[media](src) if media in streamed else media_io.MEDIA_READERS[media](src)
    more = []
    if media == "video" and audio and media_io.has_audio(src):  # the sound first: it fails fast
        sound = media_io.movie_audio(src, item.frames, item.rate)
        more.append(encode_stream(sound, "audio", audio_codec, audio_bitrate, device))
    first = encode_stream(item, media, codec_id, quality, device, weights, **options)
    container = Container(first.header, first.chunks, more=more)
    data = write_container(container)
    write_bytes_atomic(dst, data, force)
    h = first.header
    knob = h.params.get("quality", h.params.get("kbps"))
    rows = _stream_rows(container, data)
    return EncodeResult(media, h.codec, knob, src.stat().st_size, len(data), h.params, rows)


def decode_file(
    src: Path,
    dst: Path,
    device: str = "cpu",
    weights: Path | None = None,
    force: bool = False,
    audio: bool = True,
    **options,
):
    """Decode src into dst (format from dst's extension). Returns (header, media tensor); for audio and
    video the media is None: it is decoded and written block by block (group by group), never whole (read
    dst for the samples or frames). A movie (video and sound) is written with both tracks; ``audio=False``
    leaves the sound out, and an audio file name (.wav, .flac) as dst takes the sound alone."""
    dst = Path(dst)
    check_output(dst, force)
    container = read_container(read_mcodec_file(src))
    codec, payload = open_stream(container.streams[0], weights)
    sounds = [(s.header, *open_stream(s)) for s in container.more if s.header.media == "audio"]
    header, kind = container.header, container.header.media
    if kind == "video" and sounds and dst.suffix.lower() in media_io.WRITE_FORMATS["audio"]:
        header, codec, payload = sounds[0]  # the movie's sound alone
        kind = "audio"
    if kind == "audio":
        media_io.write_audio_stream(dst, codec.decode_stream(payload, device), force)
        return header, None
    if kind == "video":  # written group by group as it is decoded, never whole
        p = payload.params
        rate = Fraction(p["fps_num"], p["fps_den"])
        a, b = options.get("frames") or (0, p["frames"])
        sound = None
        if sounds and audio:  # the movie's sound over the frames written
            _, sound_codec, sound_payload = sounds[0]
            whole = sound_codec.decode_stream(sound_payload, device)
            sound = whole.window(round(a * whole.rate / rate), round((b - a) * whole.rate / rate))
        groups = codec.decode_groups(payload, device, options.get("frames"))
        media_io.write_video_stream(dst, groups, rate, p["width"], p["height"], force, sound=sound)
        return header, None
    media = codec.decode(payload, device=device, **options)
    media_io.write_image(dst, media, force)
    return header, media


def describe(src: Path) -> dict:
    """What ``mcodec info`` prints: media, codec, model, hashes, sizes, per-chunk bytes."""
    data = read_mcodec_file(src)
    c = read_container(data)
    h = c.header
    return {
        "file": str(src),
        "bytes": len(data),
        "version": f"{c.version[0]}.{c.version[1]}",
        "media": h.media,
        "codec": h.codec,
        "model_id": h.model_id,
        "weights_sha256": h.weights_hash.hex(),
        "tables_sha256": h.tables_hash.hex(),
        "determinism_profile": h.profile,
        "params": h.params,
        "chunks": [{"type": t, "bytes": n} for t, n in chunk_sizes(data)],
        "streams": _stream_rows(c, data),
        "file_sha256": hashlib.sha256(data).hexdigest(),
    }


def _stream_rows(c: Container, data: bytes) -> list[dict]:
    """One row per stream of the file ``data`` (``c``, as read or written): media, codec, model, params and
    bytes (its header chunk and codec chunks with their framing; signature, version and MEND are
    nobody's)."""
    sizes, i = [0] * len(c.streams), -1
    for ctype, n in chunk_sizes(data):
        i += ctype in ("HEAD", "STRM")
        if ctype != "MEND":
            sizes[i] += n
    return [
        {
            "media": s.header.media,
            "codec": s.header.codec,
            "model_id": s.header.model_id,
            "params": s.header.params,
            "bytes": n,
        }
        for s, n in zip(c.streams, sizes, strict=True)
    ]
