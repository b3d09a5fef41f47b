"""Uniform quantization of a fitted network's weights and embeddings (what the bitstream carries).

Tensors with two or more dimensions get one step per output channel (dim 0), vectors one step; the step
is max|w| / (2^(bits-1) - 1), stored as float16 (the decoder uses exactly that value). During the
quantization-aware fine-tune the forward pass sees the quantized weights and gradients pass straight
through the rounding.
"""

from __future__ import annotations

import torch


def steps_for(w: torch.Tensor, bits: int) -> torch.Tensor:
    """float16-exact steps: [C] for per-channel tensors, [1] for vectors."""
    levels = 2 ** (bits - 1) - 1
    peak = w.detach().abs().flatten(1).amax(1) if w.dim() >= 2 else w.detach().abs().amax()[None]
    return (peak.clamp_min(1e-8) / levels).half().float()


def per_channel(steps: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """steps [C] (or [1]) shaped to broadcast over w [C, ...] (or a vector)."""
    return steps.view(-1, *([1] * (w.dim() - 1))) if w.dim() >= 2 else steps


def quantize(w: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Integer symbols (int64) of w under its steps."""
    return torch.round(w.detach() / per_channel(steps, w)).to(torch.int64)


def dequantize(symbols: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    return symbols.float() * per_channel(steps, symbols)


def rebuild(symbols: torch.Tensor, steps: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
    """A tensor as the decoder rebuilds it: symbol x step, plus the previous group's rebuilt tensor in a
    group coded as differences (VDIF). The encoder's reference for the next group is this same value."""
    value = dequantize(symbols, steps)
    return value if ref is None else ref + value


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """w quantized in the forward pass, identity in the backward pass."""
    steps = steps_for(w, bits)
    q = dequantize(quantize(w, steps), steps)
    return w + (q - w).detach()


def floor_steps(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The least step a learned step may take: steps_for's max|w| / (2^(bits-1) - 1), so symbols stay
    within +-(2^(bits-1) - 1) whatever the fit learns (the header's ``bits`` stays true)."""
    return steps_for(w, bits)


def half_exact(steps: torch.Tensor) -> torch.Tensor:
    """steps rounded to float16 (what the file stores) in the forward pass, identity in the backward."""
    return steps + (steps.half().float() - steps).detach()


def learned_fake_quantize(w: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """w quantized under learned ``steps`` ([C] or [1], float16-exact): step x round(w / step) forward;
    backward, identity for w and round(w / step) - w / step for the step (LSQ's straight-through)."""
    s = per_channel(steps, w)
    x = w / s
    return (x + (torch.round(x) - x).detach()) * s
