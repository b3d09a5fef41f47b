"""Full-reference distortion measures for 8-bit media (torch + pytorch_msssim only).

Inputs are uint8 tensors shaped [C, H, W] (an image) or [T, C, H, W] (a video), C = 1 or 3, with the
same shape for reference and reconstruction. 3-channel inputs are taken as RGB.
"""

from __future__ import annotations

import importlib
import math

import torch
from pytorch_msssim import ms_ssim as _library_ms_ssim

__all__ = ["psnr_rgb", "psnr_y", "ms_ssim", "ms_ssim_levels"]

_PEAK = 255.0
# BT.601 luma weights (R, G, B), applied to 0..255 values without rounding.
_BT601 = (0.299, 0.587, 0.114)
# Per-scale exponents of Wang et al. 2003, fine to coarse (pytorch_msssim's default).
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN_SIZE = 11


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dtype != torch.uint8 or b.dtype != torch.uint8:
        raise TypeError(f"expected uint8 tensors, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() not in (3, 4) or a.shape[-3] not in (1, 3):
        raise ValueError(f"expected [C,H,W] or [T,C,H,W] with C in (1, 3), got {tuple(a.shape)}")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two float tensors on a 0..255 scale; inf when identical."""
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10.0 * math.log10(_PEAK**2 / mse)


def psnr_rgb(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) over all samples of all channels (and frames): one MSE, not a mean of per-frame PSNRs."""
    _check(a, b)
    return _psnr(a, b)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] uint8 RGB -> [..., H, W] float64 BT.601 Y on 0..255; 1-channel input passes through."""
    x = x.double()
    if x.shape[-3] == 1:
        return x[..., 0, :, :]
    w = torch.tensor(_BT601, dtype=torch.float64).view(3, 1, 1)
    return (x * w).sum(dim=-3)


def psnr_y(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of BT.601 luma (Y = 0.299R + 0.587G + 0.114B, unrounded); 1-channel input as is."""
    _check(a, b)
    return _psnr(_luma(a), _luma(b))


def ms_ssim_levels(short_side: int) -> int:
    """Number of MS-SSIM scales that fit an image whose shorter side is ``short_side`` pixels.

    pytorch_msssim requires ``short_side > (win_size - 1) * 2**(levels - 1)`` for 5 levels (> 160 px with
    the 11-tap window); the same rule is applied per level count, so the coarsest scale is still at
    least one window wide. Returns 0 when even single-scale SSIM does not fit (short side <= 10).
    """
    levels = 0
    while levels < len(_MS_SSIM_WEIGHTS) and short_side > (_WIN_SIZE - 1) * 2**levels:
        levels += 1
    return levels


def _ms_ssim_loop(x: torch.Tensor, y: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """MS-SSIM of float [N, C, H, W] batches on 0..255 with one scale per weight -> per-image values [N].

    Same loop as pytorch_msssim.ms_ssim, whose public function asserts the 5-scale size limit whatever
    ``weights`` it is given; so this calls the library's per-scale ``_ssim`` (private, pytorch-msssim 1.0).
    """
    lib = importlib.import_module("pytorch_msssim.ssim")  # the package re-exports a function named ssim
    w = torch.tensor(weights, dtype=x.dtype)
    win = lib._fspecial_gauss_1d(_WIN_SIZE, 1.5).repeat([x.shape[1], 1, 1, 1])
    mcs = []
    for i in range(len(weights)):
        ssim_per_channel, cs = lib._ssim(x, y, data_range=_PEAK, win=win, size_average=False)
        if i < len(weights) - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=padding)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=padding)
    stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)  # [level, N, C]
    return torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean(dim=1)


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """MS-SSIM in [0, 1] (data_range 255, 11-tap Gaussian window); video: mean of per-frame values.

    Images with the shorter side > 160 px use the standard 5 scales via pytorch_msssim.ms_ssim.
    Smaller images use as many scales as fit (see ``ms_ssim_levels``), keeping the finest-scale
    weights renormalised to sum to 1: a 40x30 image gets 2 scales, a short side of 11..20 px plain
    SSIM. Values from different scale counts are not directly comparable.
    Returns nan when the shorter side is <= 10 px (not even one window fits).
    """
    _check(a, b)
    x = (a if a.dim() == 4 else a.unsqueeze(0)).float()  # [N, C, H, W]
    y = (b if b.dim() == 4 else b.unsqueeze(0)).float()
    levels = ms_ssim_levels(min(x.shape[-2:]))
    if levels == 0:
        return math.nan
    if levels == len(_MS_SSIM_WEIGHTS):
        per_image = _library_ms_ssim(x, y, data_range=_PEAK, size_average=False)
    else:
        kept = _MS_SSIM_WEIGHTS[:levels]
        per_image = _ms_ssim_loop(x, y, [v / sum(kept) for v in kept])
    return per_image.mean().item()
