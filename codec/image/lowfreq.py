"""The low-frequency correction of the hyperprior image codecs (chunk ``LFCR``, FORMAT.md 6.2.2).

At low rates the learned transforms leave slow drifts over smooth areas (a wall, a sky, a clock face): the
decoded picture is off by one to three levels in patches tens of pixels wide, a coloured blotch pattern,
where AVIF's error is fine grain. A grid of one value per B x B pixels and channel, bilinearly
interpolated to the picture and added to the decoded 8 bits, removes much of it for a few hundred bytes.
The encoder synthesizes its file's picture, fits the grid to the error by least squares, rounds it to a
step, codes it under one of the 64 frozen Gaussian tables per channel, and keeps the chunk only where it
lowers the quality's own loss (LAMBDA_SCALE x lambda x MSE + bpp) with its real bytes counted; otherwise
the file is as before.

Measured with meanscale-v23 (`bench/image_rd.py`, real bytes), without -> with it: against AVIF +28.8 ->
+26.1% on the 33 shared images, +39.1 -> +29.2% on the 8 held-back photos; per held-back photo -2.34%
(7 of 8), most on the smooth photos where the codec is furthest behind AVIF (lomiri_umang -5.8%,
lomiri_free -5.0%, lomiri_greentock -3.6%), nothing lost on textured ones (lomiri_life +0.02%).
Least squares gains a third more than block means (+1.04 against +0.63 dB on lomiri_umang at q2, B 64,
step 1); it is solved exactly in grid space (Fit), so the encoder's search costs about one pass over the
pixels per block side.
"""

from __future__ import annotations

import numpy as np
import torch

from mcodec.codec import side_symbols
from mcodec.codec.base import CodecError

CHUNK = "LFCR"
HEADER = 2  # bytes before the scale indexes: log2 of the block side, the step in quarter levels
LOG2_BLOCKS = range(3, 11)  # what a file may hold: blocks of 8 .. 1024 pixels
STEP_UNIT = 0.25  # the step is coded in quarter levels (1 .. 255: 0.25 .. 63.75)
# What the encoder tries: block sides 32, 64, 128 and steps in levels. Smaller blocks cost more than they
# gain at every quality on the held-back photos (B 16 at step 1: +68% bytes for +1.2 dB on lomiri_free).
ENCODER_LOG2_BLOCKS = (5, 6, 7)
ENCODER_STEPS = (0.75, 1.0, 1.5, 2.0, 3.0)
# The encoder weighs the error at this multiple of the quality's training lambda: the codec's real curve is
# steeper than its lambdas say. On 10 training photos (5 lomiri, 2 walls, apple, orange, aero1) the mean
# per-photo BD-rate of the correction was -0.52 / -0.62 / -0.57 / -0.33% at 1 / 1.4 / 2 / 3; on 4 held-back
# photos 1.4 was better than 1 on each (-3.25 -> -3.50% on average).
LAMBDA_SCALE = 1.4
# The encoder synthesizes its file's picture to fit the correction: +0.31 s on a 768x512 picture (0.32 ->
# 0.64 s, 2 threads), but on a 13 MP photo about +12 s (17.7 -> 29.9 s when it decoded the whole file,
# 2.2 s/MP against issue 20's 1.5), so it is fitted to pictures up to this size (1920x1080 and the 1280 px
# photos included). Only at the fast preset: after latent refinement (medium), which already fits the
# picture's squared error, it cost +0.36% (held-back 512 crops, none of 8 better). The restoration filter
# (wiener.py) is fitted to pictures up to the same size, at every preset.
FAST_MAX_PIXELS = 2_500_000
CHUNK_OVERHEAD = 12  # the container's type, length and CRC of a chunk
BAND_ROWS = 256  # rows interpolated at once when a correction is applied: memory follows the width


def grid_shape(height: int, width: int, block: int) -> tuple[int, int]:
    return -(-height // block), -(-width // block)


def _axis(
    size: int, cells: int, rows: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear interpolation along one axis with half-pixel centres (torch's align_corners=False):
    pixel i sits at (i + 1/2) cells / size - 1/2 in grid coordinates, clamped to the grid."""
    i = torch.arange(size, dtype=torch.float64)[rows or slice(None)]
    pos = ((i + 0.5) * (cells / size) - 0.5).clamp(0, cells - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=cells - 1)
    return lo, hi, pos - lo


def upsample(grid: torch.Tensor, height: int, width: int, rows: slice | None = None) -> torch.Tensor:
    """The correction [C, rows, width] of a grid [C, gh, gw] (default: every row), in the grid's dtype."""
    r0, r1, fr = _axis(height, grid.shape[-2], rows)
    c0, c1, fc = _axis(width, grid.shape[-1])
    fr, fc = fr.to(grid.dtype), fc.to(grid.dtype)
    across = grid[..., c0] * (1 - fc) + grid[..., c1] * fc  # [C, gh, width]
    return across[:, r0] * (1 - fr)[:, None] + across[:, r1] * fr[:, None]


def _axis_matrix(size: int, cells: int) -> torch.Tensor:
    """The interpolation along one axis as a matrix [size, cells] (two weights a row), float64."""
    lo, hi, t = _axis(size, cells)
    m = torch.zeros(size, cells, dtype=torch.float64)
    rows = torch.arange(size)
    m.index_put_((rows, lo), 1 - t, accumulate=True)
    m.index_put_((rows, hi), t, accumulate=True)
    return m


class Fit:
    """Least squares of the interpolated grid against error [C, H, W] for one block side, in grid space.

    The interpolation is separable, D = Uy G Ux^T per channel, so everything the encoder weighs needs
    one pass over the pixels: B = Uy^T E Ux. The best grid solves (Uy^T Uy) G (Ux^T Ux) = B exactly,
    and the squared error left by any grid G is |E|^2 - 2 <G, B> + <G, Ay G Ax>, with Ay, Ax small."""

    def __init__(self, error: torch.Tensor, block: int, energy: float | None = None):
        """``energy``: the sum of error^2, where the caller has it (it costs a pass over the pixels)."""
        height, width = error.shape[-2:]
        gh, gw = grid_shape(height, width, block)
        uy, ux = _axis_matrix(height, gh), _axis_matrix(width, gw)
        self.ay, self.ax = uy.T @ uy, ux.T @ ux
        self.b = uy.T @ (error @ ux.float()).double()  # [C, gh, gw]
        self.energy = energy if energy is not None else squared_sum(error)
        self.pixels = error.numel()
        self.grid = torch.linalg.solve(self.ay, self.b) @ torch.linalg.inv(self.ax)

    def mse(self, grid: torch.Tensor) -> float:
        """Mean squared error left by the interpolation of ``grid`` (float64 [C, gh, gw])."""
        left = (
            self.energy - 2 * float((grid * self.b).sum()) + float((grid * (self.ay @ grid @ self.ax)).sum())
        )
        return max(left, 0.0) / self.pixels


def squared_sum(error: torch.Tensor) -> float:
    """The sum of squares of a float32 tensor, accumulated in float64 (no float64 copy of a large photo)."""
    return float((error * error).sum(dtype=torch.float64))


def fit(error: torch.Tensor, block: int) -> torch.Tensor:
    """The grid [C, gh, gw] (float32) whose interpolation is closest to error [C, H, W] in squared error."""
    return Fit(error, block).grid.float()


def pack(log2_block: int, step_code: int, symbols: np.ndarray) -> bytes:
    """The chunk payload of symbols [C, gh, gw]: header, one scale index per channel, the stream."""
    return bytes([log2_block, step_code]) + side_symbols.pack(symbols.reshape(len(symbols), -1))


def unpack(data: bytes, channels: int, height: int, width: int) -> tuple[torch.Tensor, float]:
    """A chunk payload -> (grid [C, gh, gw] float32 in levels, step); a one-line CodecError if damaged."""
    if len(data) < HEADER + channels:
        raise CodecError(f"{CHUNK} chunk of {len(data)} bytes is too short")
    log2_block, step_code = data[0], data[1]
    if log2_block not in LOG2_BLOCKS or step_code == 0:
        raise CodecError(f"{CHUNK} chunk has an invalid header")
    gh, gw = grid_shape(height, width, 1 << log2_block)
    symbols = side_symbols.unpack(data[HEADER:], channels, gh * gw, CHUNK)
    step = step_code * STEP_UNIT
    return torch.from_numpy(symbols.reshape(channels, gh, gw).astype(np.float32)) * step, step


def apply(picture: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """picture uint8 [C, H, W] plus the grid's interpolation, rounded and clamped to 8 bits, in bands of
    BAND_ROWS rows (in place)."""
    height, width = picture.shape[-2:]
    for top in range(0, height, BAND_ROWS):
        band = slice(top, min(top + BAND_ROWS, height))
        corrected = picture[:, band].float() + upsample(grid, height, width, band)
        picture[:, band] = corrected.round_().clamp_(0, 255).to(torch.uint8)
    return picture


def choose(source: torch.Tensor, decoded: torch.Tensor, lmbda: float) -> bytes | None:
    """The LFCR payload that lowers LAMBDA_SCALE * lambda * MSE + bpp (MSE in 8-bit levels; the chunk's
    bytes, framing included) the most for decoded, the file's picture without it, against source (uint8,
    both [C, H, W]); None where no block and step pay for themselves. The MSE is that of the correction
    before the final rounding to 8 bits (Fit.mse)."""
    lmbda *= LAMBDA_SCALE
    pixels = source.shape[-2] * source.shape[-1]
    error = (source.to(torch.int16) - decoded.to(torch.int16)).float()  # one float32 copy: 13 MP, 157 MB
    energy = squared_sum(error)
    best_loss, best = lmbda * energy / error.numel(), None
    for log2_block in ENCODER_LOG2_BLOCKS:
        f = Fit(error, 1 << log2_block, energy)
        for step in ENCODER_STEPS:
            symbols = torch.round(f.grid / step)
            distortion = lmbda * f.mse(symbols * step)
            if distortion >= best_loss or not symbols.any():
                continue  # not even free bytes would pay
            payload = pack(log2_block, round(step / STEP_UNIT), symbols.to(torch.int64).numpy())
            loss = distortion + (len(payload) + CHUNK_OVERHEAD) * 8 / pixels
            if loss < best_loss:
                best_loss, best = loss, payload
    return best
