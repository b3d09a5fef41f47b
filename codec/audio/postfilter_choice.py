"""The encoder's choice of the pitch postfilter strength (postfilter.py) for a file, by analysis-by-synthesis.

The comb helps voiced speech whose harmonics the decoder blurs and harms sound whose noise is real (breath,
hiss, some voices), so one strength does not suit every file: on the 52 held-back files at 3 kbit/s, the
best strength per file (by PESQ-WB) would score 2.191 against 2.131 at the fixed 2. The encoder has the
source, so it decodes its own codes, filters them at every strength and keeps the one whose spectrum lies
closest to the source's below 4 kHz: the mean absolute difference of log power spectra, in 1024-sample
frames (43 ms, 23 Hz bins, fine enough to see the harmonics and the noise between them), floored 60 dB
below the source's strongest bin so silence does not weigh. PESQ-WB itself is not used (a measure of the
benchmark, meant for speech alone). Picked on 48 training files, among log-spectral and mel-loudness
distances of several bands, sizes and floors (codec/models/rvq.md, session 47).
"""

from __future__ import annotations

import torch

from .postfilter import MAX_STRENGTH, RATE, comb, pitch_track

FFT = 1024
HOP = 256
BINS = int(4000 / RATE * FFT) + 1  # the bins below 4 kHz
FLOOR = 1e-6  # of the source's strongest bin
SILENCE = 1e-12  # power under which a segment adds nothing (a silent source: every strength ties)


def _power(x: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(FFT, dtype=x.dtype)
    spec = torch.stft(x, FFT, HOP, window=window, pad_mode="constant", return_complex=True)
    return spec[:BINS].abs().square()


class StrengthChooser:
    """Feed it each analysed segment (``add``); ``best`` is the strength 0..MAX_STRENGTH for the file."""

    def __init__(self, default: int):
        self.default = default
        self.distance = [0.0] * (MAX_STRENGTH + 1)

    def add(self, source: torch.Tensor, decoded: torch.Tensor, core: slice) -> None:
        """source: the segment's core, 24 kHz float32; decoded: the span synthesized from its codes, before
        the postfilter (the decoder filters whole spans); core: where the source lies in the span."""
        if decoded.numel() < 2:
            return
        target = _power(source.float())
        top = float(target.max())
        if top <= SILENCE:
            return
        floor = top * FLOOR
        log_target = torch.log10(target + floor)
        track = pitch_track(decoded.double())
        for s in range(MAX_STRENGTH + 1):
            y = decoded if s == 0 else comb(decoded, track, s)
            d = (torch.log10(_power(y[core]) + floor) - log_target).abs().sum()
            self.distance[s] += float(d)

    def best(self) -> int:
        """The strength of least distance; the default where it ties (nothing analysed, or silence)."""
        return min(range(MAX_STRENGTH + 1), key=lambda s: (self.distance[s], s != self.default))
