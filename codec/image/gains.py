"""Gain units (Cui et al. 2021, "Asymmetric gained deep image compression"): one network for every
quality. The analysis output is scaled per channel by a learned gain for the quality before rounding,
and the synthesis input by a learned inverse gain. Qualities between the trained ones interpolate the
log-gains linearly (the gains geometrically), so the quality knob is continuous.

The parameters are ``log_gain`` and ``log_inv_gain`` [Q, M] on the model itself (model files store them
under those names).
"""

from __future__ import annotations

import torch
from torch import nn


class GainUnits(nn.Module):
    """Base of the gained image networks: ``init_gains`` in the constructor, ``gains`` per batch."""

    qualities: int

    def init_gains(self, qualities: int, channels: int) -> None:
        """Quality q+1 starts ~sqrt(2) finer than q (the lambdas roughly double per step)."""
        self.qualities = qualities
        steps = torch.arange(qualities, dtype=torch.float32) - (qualities - 1)
        init = (0.5 * torch.log(torch.tensor(2.0)) * steps)[:, None].repeat(1, channels)
        self.log_gain = nn.Parameter(init.clone())
        self.log_inv_gain = nn.Parameter(-init.clone())

    def gains(self, quality: torch.Tensor, extrapolate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """quality: [B] float in [1, Q] -> (gain, inverse gain), each [B, M, 1, 1]. ``extrapolate``: a
        quality outside [1, Q] continues the nearest segment's line (probes of what lies past the top);
        otherwise it is clamped."""
        q = (quality if extrapolate else quality.clamp(1, self.qualities)) - 1
        lo = q.floor().long().clamp(0, max(self.qualities - 2, 0))
        hi = (lo + 1).clamp(max=self.qualities - 1)
        t = (q - lo.float())[:, None]
        g = (1 - t) * self.log_gain[lo] + t * self.log_gain[hi]
        ig = (1 - t) * self.log_inv_gain[lo] + t * self.log_inv_gain[hi]
        return g.exp()[:, :, None, None], ig.exp()[:, :, None, None]
