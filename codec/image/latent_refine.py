"""Encoder-side latent refinement for the hyperprior image codecs (Campos et al. 2019, Yang et al. 2020).

The analysis transforms give a fast, amortized guess of the latents; a few gradient steps on this one
image's rate-distortion loss find latents the same decoder turns into fewer bits for the same error (or
less error for the same bits). Only the encoder changes: the file format, the decoder and the tables are
untouched, so refined files decode anywhere the plain ones do.

Only y moves; z, and so the entropy parameters, stay as the hyper-analysis made them (moving z as well,
or re-deriving it from the moving y, measured worse: -2.5% and -2.7% loss against -3.2% at 20 steps).
The synthesis sees y rounded with a straight-through estimator; each step's true loss, that of the latents
as they will be rounded (up to the scale table's snapping), is measured and the best step's y is kept, so
refinement never returns a y worse, by that loss, than the analysis transform's own.
Straight-through rounding beat SGA's annealed soft rounding (Yang et al. 2020; Gumbel-softmax between floor
and ceiling, temperature 0.5 -> 0.05) at these step counts: meanscale-v10, 4 held-back photos' centre 384
crops, 20 steps, true loss -3.9% / -4.1% / -6.7% at q1 / q4 / q8 against -3.7% / -3.8% / -6.2% for SGA
(its rate at the soft values; -3.5 / -3.7 / -6.2% with the rate at y), and at 50 steps on one photo
-7.2% / -4.8% against -6.2% / -4.4% (q1, q4). SGA pays off over hundreds of steps, not 20 or 50.

A latent larger than ``REFINE_TILE`` latents a side is refined tile by tile (``refine_tiled``), so the
backward pass's memory depends on the tile, not on the photo.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

from . import tiling
from .hyperprior_model import GainedHyperprior, round_ste
from .lambdas import LAMBDAS, quality_lambda

LIKELIHOOD_FLOOR = 1e-9  # compressai's lower bound: keeps -log2 finite for far-out symbols
# Total distance (in quantization steps) Adam may move a latent value over a refinement. Measured on
# fruits and baboon at q1/q4/q8: 20 steps at lr 0.01 and 40 at 0.005 gave 3-5% lower loss; larger rates
# overshoot (the true loss rises mid-run), as does 0.01 over 50-100 steps.
TRAVEL = 0.2
# Latents per tile side refined at once (512 x 512 pixels; refine_tiled synthesizes 640 x 640 around it).
# --preset medium on a 1536 x 1024 photo (6 tiles): 1.46 GB peak against 2.40 GB whole, which grows with
# the photo (~1.3 GB per megapixel); 1.7x the time (the windows overlap), measured on a loaded machine.
REFINE_TILE = 32


@torch.no_grad()
def hyper_side(model: GainedHyperprior, z: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """What refinement holds fixed: (bits of round(z), scales, means) for one image's z [1, N, h, w]."""
    eb, (_, n, zh, zw) = model.entropy_bottleneck, z.shape
    medians = eb._get_medians()  # [N, 1, 1]
    z_flat = torch.round(z.reshape(n, 1, -1) - medians) + medians  # compressai's [C, 1, -1] layout
    z_bits = -torch.log2(eb._likelihood(z_flat)[0].clamp_min(LIKELIHOOD_FLOOR)).sum().item()
    scales, means = model.entropy_parameters(z_flat.reshape(1, n, zh, zw))
    return z_bits, scales, torch.zeros_like(scales) if means is None else means


def rd_loss(
    model: GainedHyperprior,
    x: torch.Tensor,
    y: torch.Tensor,
    side: tuple[float, torch.Tensor, torch.Tensor],
    quality: torch.Tensor,
    lmbda: float,
    height: int,
    width: int,
    top: int = 0,
    left: int = 0,
    counted: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """(surrogate, true) losses: lambda * 255^2 * MSE + bits per pixel over the image's own height x width
    (what the padding decodes to is cropped away, so it costs nothing); ``side`` from hyper_side. A tile
    (refine_tiled) counts the pixels [top:height, left:width] of its synthesis and the bits of the y values
    where ``counted`` (bool, y's shape) is true. The
    true loss is that of the rounded latents. The surrogate, which carries the gradients, takes y's bits
    at the unrounded values: the rate then pulls every value smoothly toward its mean, across rounding
    boundaries, where the rounded rate's straight-through gradient stalls (it measured ~1% of loss
    against several %)."""
    z_bits, scales, means = side
    if model.context is not None:  # the checkerboard's second half: its Gaussians from y's first half
        scales, means = model.with_context(y, scales, means)
    y_hat = round_ste(y - means) + means
    gc = model.net.gaussian_conditional
    y_bits = -torch.log2(gc._likelihood(y, scales, means).clamp_min(LIKELIHOOD_FLOOR))
    with torch.no_grad():
        y_bits_rounded = -torch.log2(gc._likelihood(y_hat, scales, means).clamp_min(LIKELIHOOD_FLOOR))
    if counted is None:
        y_bits, y_bits_rounded = y_bits.sum(), y_bits_rounded.sum()
    else:
        y_bits, y_bits_rounded = y_bits[counted].sum(), y_bits_rounded[counted].sum()
    x_hat = model.synthesis(y_hat, quality)[:, :, top:height, left:width]
    distortion = lmbda * 255**2 * torch.mean((x_hat - x[:, :, top:height, left:width]) ** 2)
    pixels = (height - top) * (width - left)
    surrogate = distortion + (z_bits + y_bits) / pixels
    return surrogate, (distortion.detach() + (z_bits + y_bits_rounded) / pixels).item()


def refine_latents(
    model: GainedHyperprior,
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    quality: float,
    steps: int,
    height: int,
    width: int,
    travel: float = TRAVEL,
    progress: Callable[[int, float], None] | None = None,
    lambdas: tuple[float, ...] = LAMBDAS,
    tile: int | None = None,
) -> torch.Tensor:
    """Adam on y for ``steps`` steps from the analysis transform's latent, z (so the entropy parameters)
    held fixed; returns the best y. Adam moves each value by about its learning rate per step, so the
    rate is ``travel / steps``, decaying linearly to 0: the total distance stays the same whatever the
    step count. The model is not changed (a copy runs the steps, without parameter gradients). A latent
    of more than ``tile`` (default REFINE_TILE) latents a side is refined tile by tile (refine_tiled)."""
    tile = tile or REFINE_TILE
    lmbda, q = quality_lambda(quality, lambdas), torch.tensor([float(quality)], device=x.device)
    # a private copy: channels-last runs these steps ~20% faster on the CPU, and the decoder's own model
    # keeps the memory layout its float results were checked with
    model = copy.deepcopy(model).requires_grad_(False).to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    side = hyper_side(model, z)
    if max(y.shape[-2:]) > tile:
        return refine_tiled(model, x, y, side, q, lmbda, steps, height, width, travel, progress, tile)
    return _adam(model, x, y, side, q, lmbda, steps, height, width, travel, progress)


def total_steps(latent_shape: tuple[int, ...], steps: int, tile: int | None = None) -> int:
    """The steps refine_latents reports to ``progress`` for a latent of this shape [..., h, w]."""
    h, w, tile = *latent_shape[-2:], tile or REFINE_TILE
    return steps if max(h, w) <= tile else steps * len(tiling.spans(h, tile)) * len(tiling.spans(w, tile))


def refine_tiled(
    model: GainedHyperprior,
    x: torch.Tensor,
    y: torch.Tensor,
    side: tuple[float, torch.Tensor, torch.Tensor],
    q: torch.Tensor,
    lmbda: float,
    steps: int,
    height: int,
    width: int,
    travel: float,
    progress: Callable[[int, float], None] | None,
    tile: int,
) -> torch.Tensor:
    """Refinement tile by tile: each tile of ``tile`` latents a side moves alone, its neighbours held at
    the analysis transform's values. Its loss counts its own y's bits and the distortion of every pixel
    its y reaches (its 16-pixel blocks and ``m`` latents' worth around them, m the synthesis margin of
    tiling.context), synthesized exactly from y extended by 2m latents. Tiles join without a seam in the
    file (the decoder synthesizes the whole latent); each tile keeps its best step, by its own loss.
    ``progress`` sees each tile's steps in turn: (steps done over all tiles, the tile's loss), up to
    total_steps."""
    m = tiling.context(model.net.g_s, 16)
    gh, gw = y.shape[-2:]
    _, scales, means = side
    out, done = y.detach().clone(), 0
    for a, b in tiling.spans(gh, tile):
        for c, d in tiling.spans(gw, tile):
            a0, b0, c0, d0 = max(a - 2 * m, 0), min(b + 2 * m, gh), max(c - 2 * m, 0), min(d + 2 * m, gw)
            window = (..., slice(a0, b0), slice(c0, d0))
            counted = torch.zeros(y[window].shape, dtype=torch.bool, device=y.device)
            counted[..., a - a0 : b - a0, c - c0 : d - c0] = True
            top, lft = 16 * (max(a - m, 0) - a0), 16 * (max(c - m, 0) - c0)
            bottom = min(16 * (min(b + m, gh) - a0), height - 16 * a0)
            right = min(16 * (min(d + m, gw) - c0), width - 16 * c0)
            if bottom <= top or right <= lft:  # a tile of padding only: nothing to gain
                done += steps
                continue
            tile_side = (0.0, scales[window], means[window])
            xt = x[..., 16 * a0 : 16 * b0, 16 * c0 : 16 * d0]
            count = done

            def tick(step: int, loss: float, count=count) -> None:
                if progress is not None and (step > 0 or count == 0):  # a tile's start is not a step
                    progress(count + step, loss)

            refined = _adam(
                model,
                xt,
                y[window],
                tile_side,
                q,
                lmbda,
                steps,
                bottom,
                right,
                travel,
                tick,
                top,
                lft,
                counted,
            )
            out[..., a:b, c:d] = refined[..., a - a0 : b - a0, c - c0 : d - c0]
            done += steps
    return out.contiguous()


def _adam(
    model: GainedHyperprior,
    x: torch.Tensor,
    y: torch.Tensor,
    side: tuple[float, torch.Tensor, torch.Tensor],
    q: torch.Tensor,
    lmbda: float,
    steps: int,
    height: int,
    width: int,
    travel: float,
    progress: Callable[[int, float], None] | None,
    top: int = 0,
    left: int = 0,
    counted: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adam on y (the values where ``counted``, all if None) from the given y; the best step's y."""
    fixed = y.detach()
    y = y.detach().clone(memory_format=torch.channels_last).requires_grad_(True)
    opt = torch.optim.Adam([y], lr=travel / max(steps, 1))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / max(steps, 1))
    best, best_y = math.inf, y.detach().clone()
    for step in range(steps + 1):
        moving = y if counted is None else torch.where(counted, y, fixed)
        loss, true_loss = rd_loss(model, x, moving, side, q, lmbda, height, width, top, left, counted)
        if true_loss < best:
            best, best_y = true_loss, moving.detach().clone()
        if progress is not None:
            progress(step, true_loss)
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return best_y.contiguous()
