"""The rvq codec's high band (FORMAT.md 6.3.2): noise above 12 kHz at the source's band levels.

The network codes 24 kHz audio, so a source sampled faster decoded with nothing above 12 kHz: the air of
cymbals, breath and hiss was cut off, and on music that missing band was most of the mel distance (8
music samples at 6 kbit/s: 0.75, ~0.57 with the band filled from the source's own levels). What lies up
there is mostly noise-like, so the file carries only its level: per 80 ms and per band (12-14, 14-16,
16-18.5, 18.5-21, 21-24 kHz, those below half the source rate), in 4.5 dB steps, coded as differences
(``side_symbols``, ~0.1 kbit/s). The decoder fills each band with noise of that level, frame by frame.
"""

from __future__ import annotations

import math

import numpy as np

from mcodec.codec import side_symbols
from mcodec.codec.base import CodecError

from .model import SAMPLE_RATE

CHUNK = "AHBE"
EDGES = (12000.0, 14000.0, 16000.0, 18500.0, 21000.0, 24000.0)  # Hz
ENVELOPE = 1920  # 24 kHz samples per level (80 ms; a segment of 240000 holds 125)
# level q > 0 is FLOOR_DB + STEP_DB q dB (rms, full scale 1); q = 0 is silence. On music, 4.5 dB steps
# cost a sixth less than 3 dB for the same mel distance (0.5335 against 0.5324 on 8 samples)
STEP_DB = 4.5
FLOOR_DB = -99.0
MAX_LEVEL = 22  # 0 dB
# the encoder leaves out the band of a file whose levels all lie below this one (-76.5 dB): a resampler's
# residue (-85 dB after torchaudio's from 16 kHz) or a quiet noise floor is not worth its ~20 bytes a segment
AUDIBLE = 5
GROUP = 64  # noise frames drawn at once by the decoder


def bands(rate: int) -> list[tuple[float, float]]:
    """The bands a source of ``rate`` Hz has (lower edge below half the rate), the last cut there."""
    nyquist = rate / 2
    return [(lo, min(hi, nyquist)) for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True) if lo < nyquist]


def hop(rate: int) -> int:
    """Samples between noise frames at ``rate`` Hz (frames are twice as long): a power of two, ~10 ms."""
    return 1 << max(4, math.ceil(math.log2(rate / 100)))


def frame_range(start: int, end: int) -> tuple[int, int]:
    """(k0, k1): the level frames k0..k1-1 a segment core [start, end) of the 24 kHz timeline carries."""
    return start // ENVELOPE, -(-end // ENVELOPE)


def _bins(rate: int, n_fft: int) -> list[np.ndarray]:
    f = np.arange(n_fft // 2 + 1) * rate / n_fft
    return [np.flatnonzero((f >= lo) & (f < hi)) for lo, hi in bands(rate)]  # (hi is at most rate / 2)


def _window(n_fft: int) -> np.ndarray:
    """Sine window: consecutive frames' squares sum to 1, so noise frames overlap-add at a steady level."""
    return np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft)


def _level_index(rms: np.ndarray) -> np.ndarray:
    db = 20 * np.log10(np.maximum(rms, 1e-12))
    return np.clip(np.round((db - FLOOR_DB) / STEP_DB), 0, MAX_LEVEL).astype(np.int32)


def amplitude(levels: np.ndarray) -> np.ndarray:
    """Level indexes -> rms amplitudes (0 for level 0)."""
    return np.where(levels > 0, 10 ** ((FLOOR_DB + STEP_DB * levels) / 20), 0.0)


class Analyser:
    """The encoder's side: levels [bands, frames] of a mono source at ``rate`` Hz, given as consecutive
    pieces; frame k covers the source's [k, k + 1) x 80 ms."""

    def __init__(self, rate: int):
        self.rate, self.h = rate, hop(rate)
        self.bands = np.zeros((self.h + 1, len(bands(rate))))  # bin -> band indicator
        for i, b in enumerate(_bins(rate, 2 * self.h)):
            self.bands[b, i] = 1
        self.window = _window(2 * self.h)
        self.buffer = np.zeros(self.h, np.float64)  # the signal from the next noise frame's first sample
        self.power = np.zeros((0, self.bands.shape[1]))  # band power [frames, bands] of noise frames first..
        self.first = 0  # (centres f h); frames before it were consumed by ``levels``

    def push(self, x: np.ndarray, final: bool = False) -> None:
        """The next piece of the source; ``final``: the last one (the signal is zero after it)."""
        parts = [self.buffer, x.astype(np.float64)] + [np.zeros(2 * self.h)] * final
        self.buffer, h = np.concatenate(parts), self.h
        count = (self.buffer.size - h) // h  # whole noise frames [f h - h, f h + h) in the buffer
        if count > 0:
            frames = np.lib.stride_tricks.sliding_window_view(self.buffer, 2 * h)[::h][:count]
            spec = np.fft.rfft(self.window * frames, axis=1)
            # a band's variance from its bins (sine window, Parseval)
            self.power = np.concatenate([self.power, (np.abs(spec) ** 2 / h**2) @ self.bands])
            self.buffer = self.buffer[count * h :]

    def levels(self, k0: int, k1: int, samples: int) -> np.ndarray:
        """Levels int32 [bands, k1 - k0] of frames k0..k1-1, of a source of ``samples`` samples (so far);
        the noise frames before frame k1 are then let go (calls go forward)."""
        out = np.zeros((self.bands.shape[1], k1 - k0))
        index = self.first + np.arange(len(self.power))
        frame = index * self.h * SAMPLE_RATE // (self.rate * ENVELOPE)  # the level frame of its centre
        for i, k in enumerate(range(k0, k1)):
            inside = (frame == k) & (index * self.h < samples)
            if inside.any():
                out[:, i] = np.sqrt(self.power[inside].mean(0))
        done = int(np.count_nonzero(frame < k1))
        self.power, self.first = self.power[done:], self.first + done
        return _level_index(out)


def pack(levels: np.ndarray) -> bytes:
    """levels [bands, n] -> the AHBE payload: each band's first level (u8), then the steps between
    consecutive levels (mostly 0 and +-1) as side symbols under one scale. Coded apart, the first levels
    do not widen the steps' table: 17% fewer bytes on 40 music samples and 24 syllables."""
    steps = np.diff(levels, axis=1).reshape(1, -1)
    return bytes(levels[:, 0].astype(np.uint8)) + (side_symbols.pack(steps) if steps.size else b"")


def unpack(data: bytes, n_bands: int, n: int) -> np.ndarray:
    """Inverse of pack; a one-line CodecError if the chunk is damaged or a level leaves 0..MAX_LEVEL."""
    if len(data) < n_bands or (n > 1 and len(data) == n_bands):
        raise CodecError(f"{CHUNK} chunk is too short")
    first = np.frombuffer(data[:n_bands], np.uint8).astype(np.int64)[:, None]
    steps = np.zeros((n_bands, 0), np.int64)
    if n > 1:
        steps = side_symbols.unpack(data[n_bands:], 1, n_bands * (n - 1), CHUNK).reshape(n_bands, n - 1)
    elif len(data) > n_bands:
        raise CodecError(f"{CHUNK} chunk is too long")
    levels = np.cumsum(np.concatenate([first, steps], axis=1), axis=1)
    if levels.size and (levels.min() < 0 or levels.max() > MAX_LEVEL):
        raise CodecError(f"{CHUNK} chunk has a level outside 0..{MAX_LEVEL} (corrupt)")
    return levels.astype(np.int32)


class Synthesizer:
    """The decoder's side: the high band of output samples [a, b) at ``rate`` Hz, for levels [bands,
    frames] over the whole file. Noise frames of 2 h samples, hop h, sine-windowed; frames GROUP g .. GROUP
    g + GROUP - 1 are drawn at once from a generator seeded by g, so any range renders the same samples
    however the output is cut (a frame at a time, 10 s at 48 kHz took 87 ms: a fifth of the decode)."""

    def __init__(self, rate: int, levels: np.ndarray):
        self.rate, self.h = rate, hop(rate)
        bins = _bins(rate, 2 * self.h)
        # per FFT bin: its band's column in ``amp`` and the scale that makes a band's noise variance 1
        self.band_of_bin = np.full(self.h + 1, len(bins))  # (the extra column is zero: bins outside)
        self.scale = np.zeros(self.h + 1)
        for i, b in enumerate(bins):
            self.band_of_bin[b], self.scale[b] = i, self.h / math.sqrt(max(b.size, 1))
        self.window = _window(2 * self.h)
        self.amp = np.concatenate([amplitude(levels), np.zeros((1, levels.shape[1]))])  # [bands + 1, frames]
        self.cache: tuple[int, np.ndarray] | None = None  # the last group rendered (the output goes forward)

    def _gains(self, f: np.ndarray) -> np.ndarray:
        """Band amplitudes [len(f), bands + 1] at the centres of noise frames f: linear between the
        centres of the level frames, (k + 1/2) 80 ms, and constant beyond the first and last."""
        last = self.amp.shape[1] - 1
        u = f * self.h * SAMPLE_RATE / self.rate / ENVELOPE - 0.5
        k0 = np.clip(np.floor(u), 0, last).astype(np.int64)
        k1, t = np.minimum(k0 + 1, last), np.clip(u - k0, 0.0, 1.0)[:, None]
        return (1 - t) * self.amp[:, k0].T + t * self.amp[:, k1].T

    def _group(self, g: int) -> np.ndarray:
        """The windowed noise frames GROUP g .. GROUP (g + 1) - 1: [GROUP, 2 h]."""
        if self.cache is not None and self.cache[0] == g:
            return self.cache[1]
        h, f = self.h, np.arange(g * GROUP, (g + 1) * GROUP)
        scale = self._gains(f)[:, self.band_of_bin] * self.scale  # [GROUP, h + 1]
        if scale.any():
            noise = np.random.default_rng(g).standard_normal((2, GROUP, h + 1))
            frames = self.window * np.fft.irfft((noise[0] + 1j * noise[1]) * scale, 2 * h, axis=1)
        else:
            frames = np.zeros((GROUP, 2 * h))
        self.cache = (g, frames)
        return frames

    def render(self, a: int, b: int) -> np.ndarray:
        """float32 [b - a]: the high band of output samples a..b-1."""
        h = self.h
        if self.amp.shape[1] == 0 or b <= a:
            return np.zeros(max(b - a, 0), np.float32)
        first, last = max(a // h - 1, 0), b // h + 1  # frame f covers [f h - h, f h + h)
        groups = range(first // GROUP, last // GROUP + 1)
        frames = np.concatenate([self._group(g) for g in groups])[
            first - groups[0] * GROUP : last + 1 - groups[0] * GROUP
        ]
        # overlap-add: the stretch [f h - h, f h) holds frame f's first half and frame f - 1's second
        out = np.zeros((len(frames) + 1, h))
        out[:-1] += frames[:, :h]
        out[1:] += frames[:, h:]
        origin = first * h - h
        return out.reshape(-1)[a - origin : b - origin].astype(np.float32)
