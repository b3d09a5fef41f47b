"""Streaming pieces of the audio codec, so coding a long file holds a few seconds of it, not all of it
(the blocks come as ``media_io.AudioStream``). ``MonoResampler`` changes the rate block by block
(libswresample through PyAV: no delay, and the pieces add up to the whole signal's length). ``HighPass``
filters a signal block by block as the whole of it would be filtered.
``SampleBuffer`` and ``OverlapAdd`` keep only the window of a long signal that a segment still needs.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from mcodec.codec.media_io.av_lib import load_av


def _joined(frames) -> np.ndarray:
    parts = [f.to_ndarray()[0] for f in frames]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


class MonoResampler:
    """One channel from ``rate_in`` to ``rate_out`` Hz, piece by piece; the identity when they match."""

    def __init__(self, rate_in: int, rate_out: int):
        self.rate_in, self.pts = int(rate_in), 0
        self.av = load_av()
        same = rate_in == rate_out
        self.swr = None if same else self.av.AudioResampler(format="flt", layout="mono", rate=int(rate_out))

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.swr is None or not x.size:
            return x
        frame = self.av.AudioFrame.from_ndarray(x[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = self.rate_in, self.pts
        self.pts += x.size
        return _joined(self.swr.resample(frame))

    def flush(self) -> np.ndarray:
        """What the filter still holds, at the end of the signal."""
        return np.zeros(0, np.float32) if self.swr is None else _joined(self.swr.resample(None))


class HighPass:
    """A Butterworth high-pass (scipy), block by block: the filter's state carries from each block to the
    next, so the blocks come out as the whole signal, filtered from rest, would."""

    def __init__(self, cutoff: float, rate: int, order: int = 2):
        self.sos = signal.butter(order, cutoff, "highpass", fs=rate, output="sos")
        self.state = np.zeros((self.sos.shape[0], 2))

    def push(self, x: np.ndarray) -> np.ndarray:
        if not x.size:
            return np.asarray(x, np.float32)
        y, self.state = signal.sosfilt(self.sos, x.astype(np.float64), zi=self.state)
        return y.astype(np.float32)


class SampleBuffer:
    """A growing 1-D signal of which only a window is kept: ``append`` pieces, ``take`` [lo, hi) by
    absolute sample index, ``drop_before`` what no later read needs. Pieces are joined once per read."""

    def __init__(self):
        self.pieces: list[np.ndarray] = []
        self.base = self.end = 0  # absolute indexes of the first kept and the next appended sample

    def append(self, x: np.ndarray) -> None:
        if x.size:
            self.pieces.append(x)
            self.end += x.size

    def _flat(self) -> np.ndarray:
        if len(self.pieces) != 1:
            self.pieces = [np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)]
        return self.pieces[0]

    def take(self, lo: int, hi: int) -> np.ndarray:
        assert self.base <= lo <= hi <= self.end, (self.base, lo, hi, self.end)
        return self._flat()[lo - self.base : hi - self.base]

    def drop_before(self, pos: int) -> None:
        keep = self._flat()[pos - self.base :]
        self.pieces, self.base = [keep.copy()], pos  # a copy: the dropped head is freed


class OverlapAdd:
    """Weighted overlap-add of spans that arrive in order: ``add`` a span's samples times its weights,
    ``pop`` the normalized signal up to a position no later span reaches."""

    def __init__(self):
        self.pos = 0
        self.sum = np.zeros(0, np.float32)
        self.weight = np.zeros(0, np.float32)

    def add(self, lo: int, y: np.ndarray, w: np.ndarray) -> None:
        assert lo >= self.pos
        need = lo + y.size - self.pos
        if need > self.sum.size:
            grow = need - self.sum.size
            self.sum = np.concatenate([self.sum, np.zeros(grow, np.float32)])
            self.weight = np.concatenate([self.weight, np.zeros(grow, np.float32)])
        self.sum[lo - self.pos : lo - self.pos + y.size] += y * w
        self.weight[lo - self.pos : lo - self.pos + y.size] += w

    def pop(self, until: int) -> np.ndarray:
        k = until - self.pos
        out = self.sum[:k] / np.maximum(self.weight[:k], np.float32(1e-8))
        self.sum, self.weight, self.pos = self.sum[k:].copy(), self.weight[k:].copy(), until
        return out
