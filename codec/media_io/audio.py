"""Audio through PyAV (ffmpeg): float32 [C, N] in [-1, 1] with a sample rate, read and written as an
``AudioStream`` of blocks where a file may be long."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from mcodec.codec.atomic_write import atomic_output

from .audio_checks import check_audio_header, checked_blocks
from .audio_soundfile import open_audio_soundfile
from .audio_stream import AudioStream
from .av_lib import load_av
from .errors import MediaError
from .formats import output_format
from .probe import check_readable


def open_audio(path: Path) -> AudioStream:
    """The first audio stream of a file as float32 [C, n] blocks in [-1, 1], read while they are consumed
    (a long file is never whole in memory). The header is checked here; the samples as they come: a
    stream with no samples, NaN or infinite values, or too many samples raises MediaError. Without PyAV
    (a GPU machine that cannot carry its 36 MB wheel), soundfile reads what libsndfile can."""
    path = Path(path)
    check_readable(path)
    try:
        av = load_av()
    except ImportError:
        return open_audio_soundfile(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            ctx = container.streams.audio[0].codec_context
            rate, channels = ctx.sample_rate, ctx.channels
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    check_audio_header(path, rate, channels)
    return AudioStream(rate, channels, checked_blocks(_audio_blocks(path, rate, channels), path, channels))


def _audio_blocks(path: Path, rate: int, channels: int):
    av = load_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
            frames = (f for frame in container.decode(stream) for f in resampler.resample(frame))
            for f in itertools.chain(frames, resampler.resample(None)):
                yield _to_channels(f.to_ndarray().astype(np.float32, copy=False), channels, path)
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None


def read_audio(path: Path) -> tuple[torch.Tensor, int]:
    """float32 [C, N] in [-1, 1] of the first audio stream, and its sample rate (Hz)."""
    return open_audio(path).collect()


def write_audio(path: Path, audio: torch.Tensor, rate: int, force: bool = False) -> None:
    """audio: float [C, N] in [-1, 1]; .wav (16-bit PCM) or .flac (16-bit)."""
    write_audio_stream(path, AudioStream.from_tensor(audio, rate), force)


def write_audio_stream(path: Path, audio: AudioStream, force: bool = False) -> None:
    """Blocks of float [C, n] in [-1, 1] to .wav (16-bit PCM) or .flac (16-bit) as they come, atomically:
    an error while the blocks are produced leaves no output."""
    av = load_av()
    path = Path(path)
    fmt, codec, sample_fmt = output_format(path, "audio")
    channels, rate = audio.channels, audio.rate
    layout = channel_layout(channels)
    with atomic_output(path, force) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            stream = out.add_stream(codec, rate=rate, layout=layout)
            stream.format = sample_fmt
            pts = 0
            for block in audio.blocks:
                pcm = to_pcm16(block)
                for start in range(0, pcm.shape[1], 4096):
                    piece = np.ascontiguousarray(pcm[:, start : start + 4096].T.reshape(1, -1))
                    frame = av.AudioFrame.from_ndarray(piece, format=sample_fmt, layout=layout)
                    frame.sample_rate, frame.pts = rate, pts
                    pts += piece.shape[1] // channels
                    out.mux(stream.encode(frame))
            out.mux(stream.encode(None))


def channel_layout(channels: int) -> str:
    """ffmpeg's name of the layout of ``channels`` channels."""
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def to_pcm16(block: np.ndarray) -> np.ndarray:
    """float [C, n] in [-1, 1] -> int16 [C, n] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(block, np.float64) * 32767), -32768, 32767).astype(np.int16)


def _to_channels(block: np.ndarray, channels: int, path: Path) -> np.ndarray:
    """A block [c, n] as the stream header's ``channels``. A chained Ogg file may change its layout
    mid-stream (some klettres recordings turn from mono to stereo after 44 packets), and the resampler
    then passes the new layout through: a mono header gets a mono mix, a mono block is repeated."""
    if block.shape[0] == channels:
        return block
    if channels == 1:
        return block.mean(0, keepdims=True)
    if block.shape[0] == 1:
        return np.repeat(block, channels, 0)
    raise MediaError(f"{path}: audio changes from {channels} to {block.shape[0]} channels mid-stream")
