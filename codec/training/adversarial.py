"""Adversarial losses and the discriminators' own update, for ``mcodec train audio --adversarial``.

Per step (as HiFi-GAN and audiocraft order it): the discriminators first learn to tell the batch from its
reconstruction (detached), then the generator's terms are taken through the updated discriminators:
- adversarial: hinge (EnCodec: D minimises relu(1 - D(x)) + relu(1 + D(x_hat)), G relu(1 - D(x_hat))) or
  least squares (HiFi-GAN, DAC: (1 - D(x))^2 + D(x_hat)^2, G (1 - D(x_hat))^2), each a mean over the
  logits, averaged over the sub-discriminators;
- feature matching: EnCodec's relative L1, |D_l(x) - D_l(x_hat)| / mean |D_l(x)| for every feature map l,
  averaged over the maps of each sub-discriminator, then over the sub-discriminators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed
from .discriminators import Discriminators

LOSSES = ("hinge", "ls")


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Mean over sub-discriminators of the loss on real and fake logits (each [B, 1, T', F'])."""
    if kind == "hinge":
        terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)]
    else:
        terms = [(1 - r).pow(2).mean() + f.pow(2).mean() for r, f in zip(real, fake, strict=True)]
    return sum(terms) / len(terms)


def generator_loss(fake: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Mean over sub-discriminators of the generator's adversarial loss on the fake logits."""
    terms = [F.relu(1 - f).mean() if kind == "hinge" else (1 - f).pow(2).mean() for f in fake]
    return sum(terms) / len(terms)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """EnCodec's relative L1 between the feature maps of real (taken as constants) and decoded audio."""
    per_sub = []
    for maps_r, maps_f in zip(real, fake, strict=True):
        terms = [
            (f - r.detach()).abs().mean() / r.detach().abs().mean().clamp_min(1e-8)
            for r, f in zip(maps_r, maps_f, strict=True)
        ]
        per_sub.append(sum(terms) / len(terms))
    return sum(per_sub) / len(per_sub)


class Adversary:
    """The discriminators, their optimizer and loss kind: ``update`` trains them on one batch,
    ``generator_terms`` gives the generator's adversarial and feature-matching losses."""

    def __init__(self, disc: Discriminators, opt: torch.optim.Optimizer, kind: str = "hinge"):
        if kind not in LOSSES:
            raise ValueError(f"adversarial loss {kind!r} is not one of {LOSSES}")
        self.disc, self.opt, self.kind = disc, opt, kind

    def update(self, real: torch.Tensor, fake: torch.Tensor, d: distributed.Dist) -> dict[str, float]:
        """One discriminator step on real [B, 1, N] and decoded audio (detached here); skipped (no update)
        when its gradient is not finite. Returns the discriminator loss, whether it was skipped, and the
        generator's terms as these (pre-update) discriminators see them, for the log."""
        logits_f, maps_f = self.disc(fake.detach())
        logits_r, maps_r = self.disc(real)
        loss = discriminator_loss(logits_r, logits_f, self.kind)
        self.opt.zero_grad()
        loss.backward()
        params = [p for g in self.opt.param_groups for p in g["params"]]
        distributed.average_grads(params, d)  # DDP wraps the generator only
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        finite = bool(torch.isfinite(loss) and torch.isfinite(norm))
        if finite:
            self.opt.step()
        with torch.no_grad():
            adv, feat = generator_loss(logits_f, self.kind), feature_matching(maps_r, maps_f)
        return {"disc": loss.item(), "d_skipped": float(not finite), "adv": adv.item(), "feat": feat.item()}

    def generator_terms(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(adversarial, feature matching) losses of decoded audio ``fake`` [B, 1, N], differentiable with
        respect to ``fake`` only: the discriminators' parameters collect no gradient."""
        params = list(self.disc.parameters())
        for p in params:
            p.requires_grad_(False)
        try:
            with torch.no_grad():
                _, maps_r = self.disc(real)
            logits_f, maps_f = self.disc(fake)
            return generator_loss(logits_f, self.kind), feature_matching(maps_r, maps_f)
        finally:
            for p in params:
                p.requires_grad_(True)
