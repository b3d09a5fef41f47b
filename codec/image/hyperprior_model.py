"""Hyperprior transform codecs with gain units: scale hyperprior (Balle et al. 2018) and mean-scale
hyperprior (Minnen et al. 2018), one network for every quality.

The transforms are compressai's own ``ScaleHyperprior`` / ``MeanScaleHyperprior`` modules (``self.net``),
so compressai zoo checkpoints load into the same class with one quality and unit gains. Gains scale the
analysis output per channel before quantization (Cui et al. 2021); the hyper-analysis sees the scaled
latent, so the hyperprior learns scales for every quality.

The ``mean-scale-checkerboard`` variant adds a checkerboard context (``checkerboard``) on top of the
mean-scale hyperprior: the same ``self.net`` and a ``self.context``.

Shapes: x [B, 3, H, W] in [0, 1], H and W multiples of ``STRIDE``; y [B, M, H/16, W/16];
z [B, N, H/64, W/64].
"""

from __future__ import annotations

import torch
from compressai.models import MeanScaleHyperprior, ScaleHyperprior

from .checkerboard import CheckerboardContext, anchor_mask
from .factorized_model import synthesis_transform
from .gains import GainUnits

ARCH = "gained-hyperprior"  # model-file metadata 'arch'; 'variant' names the entry of ARCHS
STRIDE = 64
ARCHS = {
    "scale-hyperprior": ScaleHyperprior,
    "mean-scale-hyperprior": MeanScaleHyperprior,
    "mean-scale-checkerboard": MeanScaleHyperprior,
}
CONTEXT_ARCHS = {"mean-scale-checkerboard"}


def round_ste(v: torch.Tensor) -> torch.Tensor:
    """Rounded values with the identity's gradient (straight-through)."""
    return v + (torch.round(v) - v).detach()


class GainedHyperprior(GainUnits):
    """``ns``: the synthesis's hidden channels (default n, compressai's own). The synthesis alone decides
    how fine a reconstruction can get (the top qualities' ceiling), and it is the decoder's cost; the
    analysis and the hyper networks keep n."""

    def __init__(self, arch: str, n: int = 128, m: int = 192, qualities: int = 8, ns: int | None = None):
        super().__init__()
        self.arch, self.n, self.m, self.ns = arch, n, m, ns or n
        self.net = ARCHS[arch](n, m)
        if self.ns != n:
            self.net.g_s = synthesis_transform(m, self.ns)
        self.context = CheckerboardContext(m) if arch in CONTEXT_ARCHS else None
        self.init_gains(qualities, m)

    @property
    def mean_scale(self) -> bool:
        return self.arch != "scale-hyperprior"

    @property
    def entropy_bottleneck(self):
        return self.net.entropy_bottleneck

    def analysis(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.net.g_a(x) * self.gains(quality)[0]

    def hyper_analysis(self, y: torch.Tensor) -> torch.Tensor:
        return self.net.h_a(y if self.mean_scale else torch.abs(y))

    def entropy_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z_hat -> (scales, means or None), each [B, M, h, w]."""
        params = self.net.h_s(z_hat)
        if self.mean_scale:
            scales, means = params.chunk(2, 1)
            return scales, means
        return params, None

    def with_context(
        self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The checkerboard variant's (scales, means) of every position, from the anchors of y rounded as
        a decoder has them (straight-through) and the hyperprior's parameters."""
        anchors = (round_ste(y - means) + means) * anchor_mask(y.shape[-2], y.shape[-1], y)
        return self.context(anchors, scales, means)

    def synthesis(self, y_hat: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.net.g_s(y_hat * self.gains(quality)[1])

    def forward(self, x: torch.Tensor, quality: torch.Tensor, rounded_synthesis: bool = False) -> dict:
        """Training pass. Under a caller's autocast (``--amp``) the transforms run in bfloat16 and the
        entropy models in float32: likelihoods of a few bits' precision would make the rate term noise.

        ``rounded_synthesis``: the synthesis sees y rounded about the means, as a decoder does (straight-
        through gradients), instead of y plus noise; the rate stays that of noisy y ("mixed quantization",
        Minnen & Singh 2020). It closes the gap between the noisy latents a decoder is trained on and the
        rounded ones it decodes."""
        y = self.analysis(x, quality).float()
        z = self.hyper_analysis(y).float()
        with torch.autocast(x.device.type, enabled=False):
            z_hat, z_likelihoods = self.net.entropy_bottleneck(z)
        scales, means = self.entropy_parameters(z_hat)
        with torch.autocast(x.device.type, enabled=False):
            if self.context is not None:
                scales, means = self.with_context(y, scales.float(), means.float())
            y_hat, y_likelihoods = self.net.gaussian_conditional(
                y, scales.float(), means=None if means is None else means.float()
            )
        if rounded_synthesis:
            y_hat = round_ste(y) if means is None else round_ste(y - means.float()) + means.float()
        return {
            "x_hat": self.synthesis(y_hat, quality),
            "likelihoods": {"y": y_likelihoods, "z": z_likelihoods},
        }
