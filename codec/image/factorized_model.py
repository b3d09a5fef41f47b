"""Factorized-prior transform codec network (Balle et al. 2018) with gain units.

One network serves every quality through gain units (``gains``).

Shapes: images x: [B, 3, H, W] float in [0, 1], H and W multiples of ``STRIDE``;
latents y: [B, M, H/16, W/16].
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from .gains import GainUnits

ARCH = "gained-factorized-prior"  # model-file metadata 'arch'
STRIDE = 16  # four stride-2 stages


def synthesis_transform(m: int, n: int) -> nn.Sequential:
    """compressai's synthesis g_s, the same in its factorized and hyperprior models: m latents, n hidden
    channels."""
    return nn.Sequential(
        deconv(m, n),
        GDN(n, inverse=True),
        deconv(n, n),
        GDN(n, inverse=True),
        deconv(n, n),
        GDN(n, inverse=True),
        deconv(n, 3),
    )


class GainedFactorizedPrior(GainUnits):
    def __init__(self, n: int = 96, m: int = 128, qualities: int = 8):
        super().__init__()
        self.n, self.m = n, m
        self.g_a = nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
        self.g_s = synthesis_transform(m, n)
        self.entropy_bottleneck = EntropyBottleneck(m)
        self.init_gains(qualities, m)

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
