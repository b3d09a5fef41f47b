"""What a tensor's symbols cost in a VGOP stream, as a differentiable estimate (the fit's rate term).

``_write_group`` (codec.py) codes each tensor's integer symbols under one frozen zero-mean discretized
Gaussian table: the smallest table scale >= the symbols' standard deviation. ``tensor_bits`` is the same
model in torch: the probability of the unit interval around each (continuous) symbol under a Gaussian
of the scale the coder will pick, -log2 of it summed. During the fit the symbols are w / step plus
uniform noise in [-1/2, 1/2) (the rate of rounding, smooth); on rounded symbols it is the table's code
length up to the tables' integer quantization, the rANS coder's few bytes and escapes (symbols beyond
about 6.1 scales; the estimate charges them their Gaussian tail instead of 32 raw bits).
"""

from __future__ import annotations

import math

import torch

from mcodec.entropy import scale_table

_SCALES = torch.from_numpy(scale_table()).float()  # [64], the coder's scales, increasing
_LEAST_P = 2.0**-24  # a table's smallest probability (24-bit frequencies, each >= 1)
MIN_STD = 1e-3  # the floor under a tensor's symbol std, here and in _write_group (codec.py)


def coder_scale(symbols: torch.Tensor) -> torch.Tensor:
    """The table scale the coder picks for these symbols (any shape): the smallest table scale >= their
    standard deviation (population std, floor MIN_STD). A scalar whose gradient is the std's: the
    snapping to the table passes straight through."""
    std = symbols.std(correction=0).clamp_min(MIN_STD)
    table = _SCALES.to(symbols.device)
    idx = torch.searchsorted(table, std.detach().reshape(1)).clamp_max(table.numel() - 1)
    return std + (table[idx][0] - std).detach()


def gaussian_bits(symbols: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits of coding round(symbols) under the zero-mean discretized Gaussian of ``scale``: sum over the
    symbols (any shape, continuous) of -log2(Phi((|y| + 1/2) / s) - Phi((|y| - 1/2) / s)), each
    probability floored at the tables' least. Computed on |y| with erfc: exact in the tails too."""
    y = symbols.abs()
    c = 1 / (scale * math.sqrt(2))
    p = 0.5 * (torch.erfc((y - 0.5) * c) - torch.erfc((y + 0.5) * c))
    return -torch.log2(p.clamp_min(_LEAST_P)).sum()


def tensor_bits(symbols: torch.Tensor, noise: bool) -> torch.Tensor:
    """Estimated bits of one tensor's symbols (w / step, continuous), at the scale the coder picks.
    noise: add uniform noise in [-1/2, 1/2) (training); else round them (what is coded)."""
    y = symbols + torch.rand_like(symbols) - 0.5 if noise else torch.round(symbols)
    return gaussian_bits(y, coder_scale(y))
