"""Factorized-prior transform codec network (Balle et al. 2018) with gain units.

One network serves every quality: the analysis output is scaled per channel by a learned gain for the
quality before rounding, and the synthesis input by a learned inverse gain (Cui et al. 2021,
"Asymmetric gained deep image compression"). Qualities between the trained ones interpolate the gains
geometrically, so the quality knob is continuous.

Shapes: images x: [B, 3, H, W] float in [0, 1], H and W multiples of ``STRIDE``;
latents y: [B, M, H/16, W/16].
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

STRIDE = 16  # four stride-2 stages


class GainedFactorizedPrior(nn.Module):
    def __init__(self, n: int = 96, m: int = 128, qualities: int = 8):
        super().__init__()
        self.n, self.m, self.qualities = n, m, qualities
        self.g_a = nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
        self.g_s = nn.Sequential(
            deconv(m, n),
            GDN(n, inverse=True),
            deconv(n, n),
            GDN(n, inverse=True),
            deconv(n, n),
            GDN(n, inverse=True),
            deconv(n, 3),
        )
        self.entropy_bottleneck = EntropyBottleneck(m)
        # log-gains: quality q+1 quantizes ~sqrt(2) finer than q (lambda roughly doubles per step).
        steps = torch.arange(qualities, dtype=torch.float32) - (qualities - 1)
        init = (0.5 * torch.log(torch.tensor(2.0)) * steps)[:, None].repeat(1, m)
        self.log_gain = nn.Parameter(init.clone())
        self.log_inv_gain = nn.Parameter(-init.clone())

    def gains(self, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quality: [B] float in [1, Q] -> (gain, inverse gain), each [B, M, 1, 1]."""
        q = quality.clamp(1, self.qualities) - 1
        lo = q.floor().long().clamp(max=self.qualities - 2) if self.qualities > 1 else q.long()
        t = (q - lo.float())[:, None]
        hi = (lo + 1).clamp(max=self.qualities - 1)
        g = (1 - t) * self.log_gain[lo] + t * self.log_gain[hi]
        ig = (1 - t) * self.log_inv_gain[lo] + t * self.log_inv_gain[hi]
        return g.exp()[:, :, None, None], ig.exp()[:, :, None, None]

    def analysis(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        gain, _ = self.gains(quality)
        return self.g_a(x) * gain

    def synthesis(self, y_hat: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        _, inv_gain = self.gains(quality)
        return self.g_s(y_hat * inv_gain)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        """Training/estimation pass: noisy (train) or rounded (eval) latents and their likelihoods."""
        y = self.analysis(x, quality).float()
        with torch.autocast(x.device.type, enabled=False):  # likelihoods in float32 under --amp
            y_hat, likelihoods = self.entropy_bottleneck(y)
        return {"x_hat": self.synthesis(y_hat, quality), "likelihoods": {"y": likelihoods}}
