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


def _broadcast(steps: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return steps.view(-1, *([1] * (w.dim() - 1))) if w.dim() >= 2 else steps


def quantize(w: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Integer symbols (int64) of w under its steps."""
    return torch.round(w.detach() / _broadcast(steps, w)).to(torch.int64)


def dequantize(symbols: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    return symbols.float() * _broadcast(steps, symbols)


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """w quantized in the forward pass, identity in the backward pass."""
    steps = steps_for(w, bits)
    q = dequantize(quantize(w, steps), steps)
    return w + (q - w).detach()
