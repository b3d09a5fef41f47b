"""Movies: a video file's sound, read to the span of its video, and muxed back beside decoded frames.

A movie's sound is coded as its own stream. So that the decoded movie is in sync, the sound is cut to the
video's span when it is read (the same start, the same duration: zeros where the sound starts late or
ends early) and written from time zero beside the frames, a frame's worth of sound after each frame, so
the output stays interleaved and memory holds one frame of sound.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .audio import channel_layout, open_audio, to_pcm16
from .audio_stream import AudioStream
from .av_lib import load_av
from .errors import MediaError

# extension -> (audio codec, sample format, bit/s per channel): AAC at a high rate in mp4 (transparent next
# to the neural codecs' few kbit/s), lossless FLAC in mkv. Other video outputs (y4m) carry no sound.
SOUND_FORMATS = {".mp4": ("aac", "fltp", 96000), ".mkv": ("flac", "s16", None)}


def has_audio(path: Path) -> bool:
    """Whether a (video) file has an audio stream that yields samples."""
    av = load_av()
    try:
        with av.open(str(path)) as c:
            return bool(c.streams.audio) and next(iter(c.decode(c.streams.audio[0])), None) is not None
    except (av.FFmpegError, OSError, ValueError):
        return False


def audio_tracks(path: Path) -> int:
    """How many audio streams a file has (mcodec codes the first)."""
    av = load_av()
    try:
        with av.open(str(path)) as c:
            return len(c.streams.audio)
    except (av.FFmpegError, OSError, ValueError):
        return 0


def movie_audio(path: Path, frames: int, rate: Fraction) -> AudioStream:
    """The first audio stream of a movie over its video's span: from the first video stream's start time,
    ``frames / rate`` seconds long (float32 [C, n] blocks, read as they are consumed)."""
    av = load_av()
    try:
        with av.open(str(path)) as c:
            video, audio = c.streams.video[0], c.streams.audio[0]
            # where the sound starts on the video's clock
            start = _start_seconds(audio) - _start_seconds(video)
    except (av.FFmpegError, OSError, IndexError) as e:
        raise MediaError(f"{path}: cannot read the movie's streams ({e})") from None
    sound = open_audio(path)
    length = round(frames * sound.rate / Fraction(rate))
    return sound.window(-round(start * sound.rate), length)


def _start_seconds(stream) -> Fraction:
    if stream.start_time is None or stream.time_base is None:
        return Fraction(0)
    return stream.start_time * stream.time_base


def check_sound_output(path: Path) -> None:
    """MediaError where ``path``'s format cannot carry a movie's sound."""
    if Path(path).suffix.lower() not in SOUND_FORMATS:
        raise MediaError(
            f"{path}: cannot write a movie's sound into {Path(path).suffix or 'this file'} "
            f"(use {', '.join(SOUND_FORMATS)}, or leave the sound out with --no-audio)"
        )


class SoundTrack:
    """An audio stream added to an output movie, fed from an AudioStream up to a point in time."""

    def __init__(self, out, path: Path, sound: AudioStream):
        check_sound_output(path)
        codec, self.sample_fmt, per_channel = SOUND_FORMATS[Path(path).suffix.lower()]
        self.layout = channel_layout(sound.channels)
        self.out, self.rate, self.channels = out, sound.rate, sound.channels
        self.stream = out.add_stream(codec, rate=sound.rate, layout=self.layout)
        self.stream.format = self.sample_fmt
        if per_channel:
            self.stream.bit_rate = per_channel * sound.channels
        self.blocks, self.pending = iter(sound.blocks), np.zeros((sound.channels, 0), np.float32)
        self.written = 0  # samples sent to the encoder

    def fill_until(self, seconds: Fraction) -> None:
        """Encode and mux the sound up to ``seconds`` from the start (as far as the sound goes)."""
        target = round(seconds * self.rate)
        while self.written + self.pending.shape[1] < target:
            block = next(self.blocks, None)
            if block is None:
                break
            self.pending = np.concatenate([self.pending, block], axis=1)
        n = max(0, min(target - self.written, self.pending.shape[1]))
        if n:
            self._encode(self.pending[:, :n])
            self.pending = self.pending[:, n:]

    def finish(self) -> None:
        """The rest of the sound, then the encoder's flush."""
        for block in [self.pending, *self.blocks]:
            if block.shape[1]:
                self._encode(block)
        self.pending = self.pending[:, :0]
        self.out.mux(self.stream.encode(None))

    def _encode(self, block: np.ndarray) -> None:
        av = load_av()
        if self.sample_fmt == "s16":  # packed: samples interleaved in one plane
            x = np.ascontiguousarray(to_pcm16(block).T.reshape(1, -1))
        else:
            x = np.ascontiguousarray(np.clip(np.asarray(block, np.float32), -1, 1))
        frame = av.AudioFrame.from_ndarray(x, format=self.sample_fmt, layout=self.layout)
        frame.sample_rate, frame.pts = self.rate, self.written
        self.written += block.shape[1]
        self.out.mux(self.stream.encode(frame))
