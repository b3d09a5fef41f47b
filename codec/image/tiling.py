"""Running an image transform tile by tile, so that memory depends on the tile, not on the photo.

A transform (the analysis g_a or the synthesis g_s) is run over a grid of latent positions: the analysis
maps 16 x 16 pixels to one latent, the synthesis one latent to 16 x 16 pixels. The grid is cut into
square tiles of ``TILE`` latents from the top-left corner (the last row and column of tiles may be
smaller). Each tile is computed from its latents (or pixels) extended by ``margin`` latents on every side
(clipped at the image's edges), and only the tile's own part of the output is kept. Inside the image the
convolutions then see the same inputs as on the whole image, so the tiles join without seams: the output
equals the whole-image one up to float rounding (convolution kernels sum in an order that depends on the
problem size). An image no larger than one tile is transformed whole, exactly as without tiling.

The margin is computed from the architecture (``context``): for 4 stride-2 5x5 (de)convolutions with GDN
(pointwise in space) it is 2 latents for both transforms. The decoder's tiling is fixed (``TILE``, not
the machine's memory), so its output bytes are the same everywhere (FORMAT.md section 7).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from compressai.layers import GDN
from torch import nn

from mcodec.codec.determinism import map_single_threaded

# Latents per tile side (1024 x 1024 pixels). Normative for decoding (FORMAT.md 7): the decoder's output
# bytes may depend on it in the last bit. Decoding a 4224 x 3168 photo (meanscale) peaked at 1.9 GB
# against 10.2 GB whole, encoding at 2.2 GB against 6.0 (bench/image_memory.py; with conv_gemm's
# transforms since, 1.3 and 2.1 GB); the margins add 13% of work over the whole-image transform, less
# than the whole image's slowdown from its size.
TILE = 64
POINTWISE = (GDN, nn.ReLU, nn.LeakyReLU, nn.Identity)  # layers that mix channels only, not positions


def context(layers: nn.Module, factor_out: int) -> int:
    """Latents of margin a tile needs on each side so that its kept output is exact: the layers of a
    transform (an ``nn.Sequential`` of Conv2d, ConvTranspose2d and pointwise layers such as GDN) are
    followed from a cut in the input to the number of output values the cut reaches on either side.
    ``factor_out``: output values per latent (1 for an analysis, 16 for a synthesis)."""
    left = right = 0  # values next to the cut, on the left and the right, that differ from the whole
    for layer in layers.children():
        if isinstance(layer, nn.ConvTranspose2d):
            (k, _), (s, _), (p, _), (op, _) = (
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.output_padding,
            )
            # output o takes inputs i with s*i - p <= o <= s*i - p + k - 1
            left = max(0, s * (left - 1) + k - p)
            right = max(0, s * right - s - p + k + op)
        elif isinstance(layer, nn.Conv2d):
            (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
            # output j takes inputs s*j - p .. s*j - p + k - 1
            left = max(0, (left - 1 + p) // s + 1)
            right = max(0, (right + k - 1 - p) // s)
        elif not isinstance(layer, POINTWISE):
            raise TypeError(f"no receptive field known for {type(layer).__name__}")
    return math.ceil(max(left, right) / factor_out)


def spans(n: int, tile: int) -> list[tuple[int, int]]:
    """[start, end) of the tiles along a side of n latents."""
    return [(a, min(a + tile, n)) for a in range(0, n, tile)]


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    inp: torch.Tensor,
    grid: tuple[int, int],
    factor_in: int,
    factor_out: int,
    margin: int,
    tile: int | None = None,
    post: Callable[[torch.Tensor], torch.Tensor] | None = None,
    parallel: bool = False,
) -> torch.Tensor:
    """fn over ``inp`` [1, C, gh * factor_in, gw * factor_in] tile by tile -> [*, gh * factor_out,
    gw * factor_out], with ``grid`` = (gh, gw) latents. ``post`` maps each kept tile of fn's output
    (also the whole output when the image is one tile) before it is stored: a pointwise conversion such
    as to 8 bits, so the full-size float output never exists. ``tile``: default ``TILE``. ``parallel``
    (CPU, no autograd): as many tiles at once as torch has threads, each on one thread
    (``determinism.map_single_threaded``), so a tile's values depend on neither the thread count nor its
    neighbours; one big tile on two threads scaled poorly."""
    post, tile = post or (lambda t: t), tile or TILE
    gh, gw = grid
    if gh <= tile and gw <= tile:
        return post(fn(inp))
    boxes = [(a, b, c, d) for a, b in spans(gh, tile) for c, d in spans(gw, tile)]

    def one(box: tuple[int, int, int, int]) -> torch.Tensor:
        a, b, c, d = box
        a0, b0, c0, d0 = max(a - margin, 0), min(b + margin, gh), max(c - margin, 0), min(d + margin, gw)
        piece = fn(inp[..., a0 * factor_in : b0 * factor_in, c0 * factor_in : d0 * factor_in])
        top, lft = (a - a0) * factor_out, (c - c0) * factor_out
        return post(piece[..., top : top + (b - a) * factor_out, lft : lft + (d - c) * factor_out])

    out = None

    def store(box: tuple[int, int, int, int], kept: torch.Tensor) -> None:
        nonlocal out
        a, b, c, d = box
        if out is None:
            out = kept.new_empty((*kept.shape[:-2], gh * factor_out, gw * factor_out))
        out[..., a * factor_out : b * factor_out, c * factor_out : d * factor_out] = kept

    if parallel:
        for start in range(0, len(boxes), torch.get_num_threads()):  # a few tiles in memory at a time
            batch = boxes[start : start + torch.get_num_threads()]
            for box, kept in zip(batch, map_single_threaded(one, batch), strict=True):
                store(box, kept)
    else:
        for box in boxes:
            store(box, one(box))
    return out


def analysis_layers(model) -> nn.Sequential:
    """The model's analysis transform g_a (its own or compressai's ``net.g_a``)."""
    return model.g_a if hasattr(model, "g_a") else model.net.g_a


def analysis(model, x: torch.Tensor, quality: torch.Tensor, tile: int | None = None) -> torch.Tensor:
    """model.analysis(x, quality) tile by tile: x [1, 3, H, W], H and W multiples of 16 -> y [1, M, H/16,
    W/16]. The model has ``g_a`` (its own or compressai's ``net.g_a``)."""
    g_a = analysis_layers(model)
    grid, parallel = (x.shape[-2] // 16, x.shape[-1] // 16), x.device.type == "cpu" and not x.requires_grad
    return run_tiled(
        lambda t: model.analysis(t, quality), x, grid, 16, 1, context(g_a, 1), tile, None, parallel
    )


def synthesis_layers(model) -> nn.Sequential:
    """The model's synthesis transform g_s (its own or compressai's ``net.g_s``)."""
    return model.g_s if hasattr(model, "g_s") else model.net.g_s


def synthesis(
    model,
    y_hat: torch.Tensor,
    quality: torch.Tensor,
    tile: int | None = None,
    post: Callable[[torch.Tensor], torch.Tensor] | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """model.synthesis(y_hat, quality) tile by tile: y_hat [1, M, h, w] -> [1, 3, 16h, 16w], each kept tile
    through ``post`` (see run_tiled). ``transform``: the function of a tile's latents to run instead of
    ``model.synthesis`` at ``quality`` (the decoder's, through ``conv_gemm``), the same function."""
    # One tile at a time: the decoder's transform spreads each layer over the threads itself. (Two tiles
    # at once through torch's transposed convolutions, each on one thread, decoded a 13 MP photo no faster
    # and peaked at 3.0 GB against 1.8: each held ~700 MB of column buffers.)
    fn = transform or (lambda t: model.synthesis(t, quality))
    return run_tiled(fn, y_hat, y_hat.shape[-2:], 1, 16, context(synthesis_layers(model), 16), tile, post)
