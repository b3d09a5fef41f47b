"""Reading and writing media files: Pillow for still images, PyAV (ffmpeg) for video and audio.

Images are uint8 tensors [C, H, W] with C = 1 (grayscale) or 3 (RGB); video uint8 [T, 3, H, W] with a
frame rate; audio float32 [C, N] in [-1, 1] with a sample rate, or an ``AudioStream`` of such blocks
(``open_audio``, ``write_audio_stream``) where a file may be long. Sizes are checked from the file's
header before anything large is decoded. Writers go through a temporary file in the target folder and a
rename, so a failed write never leaves a partial output.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .audio_stream import AudioStream
from .base import CodecError


def _av():
    """PyAV, imported on first use: image-only work (training on a GPU machine without PyAV, say) never
    needs it. ffmpeg's own log lines would reach stderr through Python logging; our errors say what
    went wrong, so they are off."""
    import av

    av.logging.set_level(None)
    return av


MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS = 16384, 1 << 26
MAX_FRAME_PIXELS, MAX_VIDEO_BYTES = 1 << 24, 8 << 30
MAX_AUDIO_CHANNELS, MAX_AUDIO_SAMPLES = 64, 1 << 31

IMAGE_WRITE_FORMATS = {
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".webp": "WEBP",
}
VIDEO_WRITE_FORMATS = {
    ".mkv": ("matroska", "ffv1", "bgr0"),
    ".y4m": ("yuv4mpegpipe", "rawvideo", "yuv444p"),
    ".mp4": ("mp4", "libx264", "yuv420p"),
}
AUDIO_WRITE_FORMATS = {".wav": ("wav", "pcm_s16le", "s16"), ".flac": ("flac", "flac", "s16")}


class MediaError(CodecError):
    """A media file cannot be read or written."""


# ---------------------------------------------------------------------------------------------- probe


def media_kind(path: Path) -> str:
    """'image', 'video' or 'audio' for a readable file; MediaError otherwise."""
    path = Path(path)
    _check_readable(path)
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) == 1 or im.format in ("PNG", "JPEG", "WEBP", "TIFF"):
                return "image"
    except Image.DecompressionBombError:
        return "image"  # an image, too large: read_image says so
    except (UnidentifiedImageError, OSError):
        pass
    av = _av()
    try:
        with av.open(str(path)) as c:
            for kind, streams in (("video", c.streams.video), ("audio", c.streams.audio)):
                if streams and next(iter(c.decode(streams[0])), None) is not None:
                    return kind  # a stream that yields a frame, not just a header ffmpeg guessed
    except (av.FFmpegError, OSError, ValueError):
        pass
    raise MediaError(f"{path}: not an image, video or audio file that can be read")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")


# --------------------------------------------------------------------------------------------- images


def read_image(path: Path) -> torch.Tensor:
    """uint8 [C, H, W], C = 1 or 3. Palette and CMYK become RGB, 16-bit samples are scaled to 8 bits,
    an alpha channel is dropped when fully opaque and refused otherwise."""
    path = Path(path)
    _check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if not (1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE and w * h <= MAX_IMAGE_PIXELS):
                raise MediaError(
                    f"{path}: image of {w}x{h} pixels is outside the supported size "
                    f"(at most {MAX_IMAGE_SIDE} per side, {MAX_IMAGE_PIXELS} pixels)"
                )
            arr = _to_8bit_array(im, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(f"{path}: image is outside the supported size ({e})") from None
    except UnidentifiedImageError as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None
    except OSError as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).contiguous()


def _to_8bit_array(im: Image.Image, path: Path) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.rint(np.asarray(im, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
    if im.mode == "F":
        return np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"))
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("LA" if im.mode == "LA" else "RGBA"))
        if (rgba[..., -1] != 255).any():
            raise MediaError(f"{path}: images with transparency are not supported (alpha channel)")
        return rgba[..., 0] if im.mode == "LA" else rgba[..., :3]
    return np.asarray(im.convert("RGB"))


def write_image(path: Path, image: torch.Tensor, force: bool = False) -> None:
    """image: uint8 [C, H, W], C = 1 or 3; format from the extension (png, bmp, tiff, ppm, lossless webp)."""
    path = Path(path)
    fmt = IMAGE_WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MediaError(
            f"{path}: cannot write images as {path.suffix or 'files without extension'} "
            f"(use {', '.join(IMAGE_WRITE_FORMATS)})"
        )
    arr = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    with atomic_output(path, force) as tmp:
        pil.save(tmp, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))


# ---------------------------------------------------------------------------------------------- video


def read_video(path: Path, max_frames: int | None = None) -> tuple[torch.Tensor, Fraction]:
    """uint8 [T, 3, H, W] RGB frames of the first video stream, and its frame rate (frames/s)."""
    av = _av()
    path = Path(path)
    _check_readable(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if not (1 <= w and 1 <= h and w * h <= MAX_FRAME_PIXELS):
                raise MediaError(f"{path}: video of {w}x{h} pixels is outside the supported size")
            limit = min(max_frames or (1 << 20), MAX_VIDEO_BYTES // (3 * w * h))
            rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
            frames, first_pts = [], None
            for frame in container.decode(stream):
                # A frame whose timestamp skips slots (AVI "drop" frames, as in tree.avi: 68 coded frames
                # over 444 slots) is shown for all of them: repeat it, as ffmpeg's constant-rate output.
                slot = len(frames)
                if frame.pts is not None and frame.time_base is not None:
                    first_pts = frame.pts if first_pts is None else first_pts
                    slot = max(slot, round((frame.pts - first_pts) * frame.time_base * rate))
                image = frame.to_ndarray(format="rgb24")
                while len(frames) <= slot:
                    if len(frames) >= limit:
                        if max_frames:
                            break
                        raise MediaError(f"{path}: video longer than {limit} frames")
                    frames.append(frames[-1] if frames and len(frames) < slot else image)
                if len(frames) >= limit and max_frames:
                    break
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read video ({e})") from None
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), rate


def write_video(path: Path, frames: torch.Tensor, rate: Fraction, force: bool = False, crf: int = 18) -> None:
    """frames: uint8 [T, 3, H, W]. .mkv: lossless FFV1 (RGB); .y4m: raw YUV 4:4:4; .mp4: x264 4:2:0."""
    av = _av()
    path = Path(path)
    spec = VIDEO_WRITE_FORMATS.get(path.suffix.lower())
    if spec is None:
        raise MediaError(
            f"{path}: cannot write video as {path.suffix} (use {', '.join(VIDEO_WRITE_FORMATS)})"
        )
    fmt, codec, pix_fmt = spec
    t, _, h, w = frames.shape
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise MediaError(f"{path}: mp4 (x264 4:2:0) needs even dimensions, got {w}x{h}; use .mkv")
    with atomic_output(path, force) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            stream = out.add_stream(codec, rate=Fraction(rate))
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "medium"}
            for arr in frames.permute(0, 2, 3, 1).numpy():
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                out.mux(stream.encode(frame.reformat(format=pix_fmt)))
            out.mux(stream.encode())


# ---------------------------------------------------------------------------------------------- audio


def open_audio(path: Path) -> AudioStream:
    """The first audio stream of a file as float32 [C, n] blocks in [-1, 1], read while they are consumed
    (a long file is never whole in memory). The header is checked here; the samples as they come: a
    stream with no samples, NaN or infinite values, or too many samples raises MediaError."""
    av = _av()
    path = Path(path)
    _check_readable(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            ctx = container.streams.audio[0].codec_context
            rate, channels = ctx.sample_rate, ctx.channels
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    if not (1 <= channels <= MAX_AUDIO_CHANNELS and 1 <= rate <= 768000):
        raise MediaError(f"{path}: unsupported audio ({channels} channels at {rate} Hz)")
    return AudioStream(rate, channels, _audio_blocks(path, rate, channels))


def _audio_blocks(path: Path, rate: int, channels: int):
    av = _av()
    total = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
            frames = (f for frame in container.decode(stream) for f in resampler.resample(frame))
            for f in itertools.chain(frames, resampler.resample(None)):
                block = f.to_ndarray().astype(np.float32, copy=False)
                total += block.shape[1]
                if total > MAX_AUDIO_SAMPLES // channels:
                    raise MediaError(f"{path}: audio too long")
                if not np.isfinite(block).all():
                    raise MediaError(f"{path}: audio contains NaN or infinite samples")
                yield block
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    if total == 0:
        raise MediaError(f"{path}: audio has no samples")


def read_audio(path: Path) -> tuple[torch.Tensor, int]:
    """float32 [C, N] in [-1, 1] of the first audio stream, and its sample rate (Hz)."""
    return open_audio(path).collect()


def write_audio(path: Path, audio: torch.Tensor, rate: int, force: bool = False) -> None:
    """audio: float [C, N] in [-1, 1]; .wav (16-bit PCM) or .flac (16-bit)."""
    write_audio_stream(path, AudioStream.from_tensor(audio, rate), force)


def write_audio_stream(path: Path, audio: AudioStream, force: bool = False) -> None:
    """Blocks of float [C, n] in [-1, 1] to .wav (16-bit PCM) or .flac (16-bit) as they come, atomically:
    an error while the blocks are produced leaves no output."""
    av = _av()
    path = Path(path)
    spec = AUDIO_WRITE_FORMATS.get(path.suffix.lower())
    if spec is None:
        raise MediaError(
            f"{path}: cannot write audio as {path.suffix} (use {', '.join(AUDIO_WRITE_FORMATS)})"
        )
    fmt, codec, sample_fmt = spec
    channels, rate = audio.channels, audio.rate
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    with atomic_output(path, force) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            stream = out.add_stream(codec, rate=rate, layout=layout)
            stream.format = sample_fmt
            pts = 0
            for block in audio.blocks:
                pcm = np.clip(np.rint(np.asarray(block, np.float64) * 32767), -32768, 32767).astype(np.int16)
                for start in range(0, pcm.shape[1], 4096):
                    piece = np.ascontiguousarray(pcm[:, start : start + 4096].T.reshape(1, -1))
                    frame = av.AudioFrame.from_ndarray(piece, format=sample_fmt, layout=layout)
                    frame.sample_rate, frame.pts = rate, pts
                    pts += piece.shape[1] // channels
                    out.mux(stream.encode(frame))
            out.mux(stream.encode(None))


# ----------------------------------------------------------------------------------------- atomicity


@contextmanager
def atomic_output(path: Path, force: bool):
    """Yields a temporary path beside ``path``; renames it onto ``path`` only if the block succeeds.
    Refuses an existing output unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise MediaError(f"{path} exists (use --force to overwrite)")
    if path.exists() and path.is_dir():
        raise MediaError(f"{path} is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as e:
        raise MediaError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise MediaError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    with atomic_output(path, force) as tmp:
        tmp.write_bytes(data)


# What each media kind's reader returns: the item codecs and anchors take.
MEDIA_READERS = {"image": read_image, "video": read_video, "audio": read_audio}
