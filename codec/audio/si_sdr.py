"""Scale-invariant signal-to-distortion ratio (Le Roux et al. 2019): the training loss's phase term and an
evaluation measure of audio codecs."""

from __future__ import annotations

import torch


def si_sdr_db(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SI-SDR in dB over the last dimension ([..., N] each; higher is better), differentiable. ``eps``
    bounds the denominators: 1e-8 suits float32 training, evaluation passes float64 and 1e-20."""
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / ref.pow(2).sum(-1, keepdim=True).clamp_min(eps)
    target = scale * ref
    ratio = target.pow(2).sum(-1) / (est - target).pow(2).sum(-1).clamp_min(eps)
    return 10 * torch.log10(ratio.clamp_min(eps))
