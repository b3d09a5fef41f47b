"""The restoration filter of the hyperprior image codecs (chunk ``WFLT``, FORMAT.md 6.2.3).

A Wiener filter the encoder fits to its own picture: per channel, the correction added to each 8-bit
pixel is a weighted sum of second differences around it (pairs of a 7-pixel diamond, point-symmetric,
so a flat area is left alone) and of the other channels' (their difference to this one and their
horizontal and vertical second differences), plus an offset. The encoder solves the least squares of
those weights against the source, rounds them to 2^-shift, and keeps the chunk only where it lowers the
quality's loss (lowfreq.LAMBDA_SCALE x lambda x MSE + bpp) with its real bytes counted. The arithmetic is
integer, so every decoder makes the same picture of it.

The transforms are trained for the average picture; one picture's own weights take what is left of its
blur and colour crosstalk. Measured with meanscale-v23 (`bench/image_rd.py`, real bytes), with the
low-frequency correction before and after: against AVIF +26.1 -> +20.0% on the 33 shared images, +29.2 ->
+21.3% on the 8 held-back photos; per photo -4.93% on the shared (32 of 33 better), -4.15% on the held-back
(8 of 8; lomiri_bridge -10.3%, lomiri_life -0.8%). Encode 768x512 +0.1 s (0.63 -> 0.73 s on 2 threads),
decode +0.02 s. How the shape was chosen, by the fitted filter's gain before its weights are rounded, on 10
training photos at q1 / q3 / q5 / q7: this one 0.30 / 0.26 / 0.20 / 0.26 dB; without the other channels
0.25 / 0.20 / 0.12 / 0.17; a 5-pixel diamond 0.24 / 0.20 / 0.14 / 0.19; a diamond not point-symmetric
(with the other channels' pixel alone) 0.30 / 0.26 / 0.20 / 0.26 for 28 weights a channel against 19; a
weight on the pixel itself (free to scale a flat area) at most +0.005 dB; four classes of local activity, a
filter each, 0.37 / 0.31 / 0.25 / 0.32 for four times the weights.
"""

from __future__ import annotations

import numpy as np
import torch

from mcodec.codec import side_symbols
from mcodec.codec.base import CodecError

from . import lowfreq

CHUNK = "WFLT"
HEADER = 1  # the shift, before the scale indexes
SHIFTS = range(4, 13)  # what a file may hold: weights in units of 2^-4 .. 2^-12
ENCODER_SHIFTS = (5, 6, 7, 8, 9)
MAX_WEIGHT = 32767  # |weight| in units of 2^-shift: the sums stay within int32 (19 x 510 x 32767 < 2^31)
RADIUS = 3
# The diamond's offsets (dy, dx) with dy, dx in -3..3, |dy| + |dx| <= 3, after (0, 0) in (dy, dx) order:
# each stands for itself and its mirror (-dy, -dx).
PAIRS = tuple(
    (dy, dx)
    for dy in range(RADIUS + 1)
    for dx in range(-RADIUS, RADIUS + 1)
    if (dy, dx) > (0, 0) and abs(dy) + abs(dx) <= RADIUS
)
BAND_ROWS = 128  # rows filtered (or weighed, by the encoder) at once: memory follows the width


def weight_count(channels: int) -> int:
    """Weights per channel: the 12 pairs, 3 per other channel, the offset."""
    return len(PAIRS) + 3 * (channels - 1) + 1


def _band(picture: torch.Tensor, rows: slice, dtype: torch.dtype) -> torch.Tensor:
    """picture's ``rows`` with RADIUS pixels of margin on every side, edges repeated: [C, n + 6, W + 6]."""
    height, width = picture.shape[-2:]
    r = torch.arange(rows.start - RADIUS, rows.stop + RADIUS).clamp(0, height - 1)
    c = torch.arange(-RADIUS, width + RADIUS).clamp(0, width - 1)
    return picture[:, r][:, :, c].to(dtype)


def features(band: torch.Tensor, channel: int):
    """The terms the weights of ``channel`` multiply, one [n, W] tensor at a time, from a _band: the
    pairs' second differences, then per other channel its difference to this one and its horizontal and
    vertical second differences, then 1 (the offset)."""
    n, w = band.shape[1] - 2 * RADIUS, band.shape[2] - 2 * RADIUS

    def at(c: int, dy: int, dx: int) -> torch.Tensor:
        return band[c, RADIUS + dy : RADIUS + dy + n, RADIUS + dx : RADIUS + dx + w]

    centre = at(channel, 0, 0)
    for dy, dx in PAIRS:
        yield at(channel, dy, dx) + at(channel, -dy, -dx) - 2 * centre
    for other in range(band.shape[0]):
        if other != channel:
            middle = at(other, 0, 0)
            yield middle - centre
            yield at(other, 0, 1) + at(other, 0, -1) - 2 * middle
            yield at(other, 1, 0) + at(other, -1, 0) - 2 * middle
    yield torch.ones_like(centre)


def apply(picture: torch.Tensor, weights: np.ndarray, shift: int) -> torch.Tensor:
    """picture uint8 [C, H, W] -> the filtered picture (a new tensor): per channel c, P + floor((sum of
    weights[c] x features + 2^(shift-1)) / 2^shift), clamped to 8 bits, in int32, band by band, every
    channel from the unfiltered picture."""
    height = picture.shape[-2]
    out = torch.empty_like(picture)
    w = torch.from_numpy(np.asarray(weights, np.int64)).to(torch.int32)
    for top in range(0, height, BAND_ROWS):
        rows = slice(top, min(top + BAND_ROWS, height))
        band = _band(picture, rows, torch.int32)
        for c in range(picture.shape[0]):
            total = torch.full_like(band[0, RADIUS:-RADIUS, RADIUS:-RADIUS], 1 << (shift - 1))
            for weight, term in zip(w[c], features(band, c), strict=True):
                if weight:
                    total += weight * term
            total.bitwise_right_shift_(shift).add_(picture[c, rows])  # >> is floor division on int32
            out[c, rows] = total.clamp_(0, 255).to(torch.uint8)
    return out


def pack(shift: int, weights: np.ndarray) -> bytes:
    """The chunk payload of weights [C, weight_count(C)] (int, units of 2^-shift)."""
    return bytes([shift]) + side_symbols.pack(weights)


def unpack(data: bytes, channels: int) -> tuple[np.ndarray, int]:
    """A chunk payload -> (weights int32 [C, weight_count(C)], shift); a one-line CodecError if damaged."""
    if len(data) < HEADER or data[0] not in SHIFTS:
        raise CodecError(f"{CHUNK} chunk has an invalid header")
    weights = side_symbols.unpack(data[HEADER:], channels, weight_count(channels), CHUNK)
    if np.abs(weights).max() > MAX_WEIGHT:
        raise CodecError(f"{CHUNK} chunk has a weight beyond {MAX_WEIGHT}")
    return weights, data[0]


class Fit:
    """The least squares of each channel's weights against source - picture, from one pass over the pixels
    (float64 normal equations: gram [C, K, K], cross [C, K], energy [C]), and the squared error any weights
    leave (before the correction's rounding to whole levels)."""

    def __init__(self, source: torch.Tensor, picture: torch.Tensor):
        channels, height, width = picture.shape
        k = weight_count(channels)
        self.gram = torch.zeros(channels, k, k, dtype=torch.float64)
        self.cross = torch.zeros(channels, k, dtype=torch.float64)
        self.energy = torch.zeros(channels, dtype=torch.float64)
        for top in range(0, height, BAND_ROWS):
            rows = slice(top, min(top + BAND_ROWS, height))
            band = _band(picture, rows, torch.float64)
            error = (source[:, rows].double() - picture[:, rows].double()).reshape(channels, -1)
            for c in range(channels):
                f = torch.stack(list(features(band, c))).reshape(k, -1)
                self.gram[c] += f @ f.T
                self.cross[c] += f @ error[c]
                self.energy[c] += error[c] @ error[c]
        self.pixels = channels * height * width
        # a small ridge: a flat picture leaves the normal equations singular
        ridge = 1e-9 * self.gram.diagonal(dim1=1, dim2=2).sum(1).clamp(min=1)[:, None, None]
        self.weights = torch.linalg.solve(self.gram + ridge * torch.eye(k, dtype=torch.float64), self.cross)

    def mse(self, weights: torch.Tensor) -> float:
        """Mean squared error (levels^2) left by weights [C, K] (float64, in levels)."""
        quadratic = (weights[:, None, :] @ self.gram @ weights[:, :, None]).sum()
        left = self.energy.sum() - 2 * (weights * self.cross).sum() + quadratic
        return max(float(left), 0.0) / self.pixels


def choose(source: torch.Tensor, picture: torch.Tensor, lmbda: float) -> bytes | None:
    """The WFLT payload that lowers LAMBDA_SCALE * lambda * MSE + bpp (MSE in 8-bit levels; the chunk's
    bytes, framing included) the most for ``picture``, the file's picture without it, against ``source``
    (uint8, both [C, H, W]); None where no shift pays for itself. The shift is chosen by the error before
    the correction's rounding (Fit.mse); the chunk is kept on the error of the filtered 8-bit picture."""
    lmbda *= lowfreq.LAMBDA_SCALE
    pixels = source.shape[-2] * source.shape[-1]
    fit = Fit(source, picture)
    base = lmbda * float(fit.energy.sum()) / fit.pixels
    best_loss, best = base, None
    for shift in ENCODER_SHIFTS:
        weights = torch.round(fit.weights * (1 << shift)).clamp(-MAX_WEIGHT, MAX_WEIGHT)
        distortion = lmbda * fit.mse(weights / (1 << shift))
        if distortion >= best_loss or not weights.any():
            continue  # not even free bytes would pay
        integers = weights.to(torch.int64).numpy()
        payload = pack(shift, integers)
        loss = distortion + (len(payload) + lowfreq.CHUNK_OVERHEAD) * 8 / pixels
        if loss < best_loss:
            best_loss, best = loss, (payload, integers, shift)
    if best is None:
        return None
    payload, integers, shift = best
    filtered = apply(picture, integers, shift)
    mse = lowfreq.squared_sum((source.to(torch.int16) - filtered.to(torch.int16)).float()) / fit.pixels
    real = lmbda * mse + (len(payload) + lowfreq.CHUNK_OVERHEAD) * 8 / pixels
    return payload if real < base else None
