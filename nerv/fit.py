"""Encoding a group of frames = fitting a NeRV/HNeRV network to it, then a quantization-aware fine-tune.

Phase 1 fits the decoder (and HNeRV's frame encoder) in float. Phase 2 freezes HNeRV's embeddings at
their quantized values and fine-tunes the decoder with quantized weights in the forward pass, so what
the bitstream carries is what was optimized. Loss: MSE over the real (unpadded) pixels.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from .model import Decoder, Encoder, NervConfig
from .quant import dequantize, fake_quantize, quantize, steps_for

PRESETS = {"fast": (40, 8), "medium": (150, 20), "slow": (400, 40)}  # (fit epochs, fine-tune epochs)


@dataclass
class FitResult:
    decoder: Decoder
    embeddings: torch.Tensor | None  # HNeRV: quantized-then-dequantized [T, d, h0, w0]
    embed_symbols: torch.Tensor | None
    embed_steps: torch.Tensor | None
    psnr: float


def _pad(frames: torch.Tensor, cfg: NervConfig) -> torch.Tensor:
    t, _, h, w = frames.shape
    return F.pad(frames.float() / 255, (0, cfg.width - w, 0, cfg.height - h), mode="replicate")


def _mse(out: torch.Tensor, target: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.mse_loss(out[..., :h, :w], target[..., :h, :w])


def fit_group(
    frames: torch.Tensor,
    cfg: NervConfig,
    bits: int,
    preset: str = "medium",
    device: str = "cpu",
    batch: int = 2,
    lr: float = 5e-3,
    seed: int = 0,
    progress: bool = True,
    label: str = "fit",
) -> FitResult:
    """frames: uint8 [T, 3, H, W] -> a fitted, quantization-aware decoder (and HNeRV embeddings)."""
    torch.manual_seed(seed)
    epochs, qat_epochs = PRESETS[preset]
    _, _, h, w = frames.shape
    target = _pad(frames, cfg).to(device)
    n = target.shape[0]
    times = (torch.arange(n, dtype=torch.float32) / n).to(device)
    decoder = Decoder(cfg).to(device)
    encoder = Encoder(cfg).to(device) if cfg.kind == "hnerv" else None
    params = list(decoder.parameters()) + (list(encoder.parameters()) if encoder else [])
    total = epochs + qat_epochs
    steps_per_epoch = math.ceil(n / batch)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: _lr_factor(i, total * steps_per_epoch))
    bar = tqdm(range(total), desc=label, unit="epoch", file=sys.stderr, disable=not progress)
    embeddings = embed_symbols = embed_steps = None
    psnr = 0.0
    for epoch in bar:
        if epoch == epochs and encoder is not None:  # freeze the embeddings at their quantized values
            with torch.no_grad():
                raw = torch.cat([encoder(target[i : i + batch]) for i in range(0, n, batch)])
            embed_steps = steps_for(raw.transpose(0, 1), bits)  # one step per embedding channel
            embed_symbols = quantize(raw.transpose(0, 1), embed_steps).transpose(0, 1)
            embeddings = dequantize(embed_symbols.transpose(0, 1), embed_steps).transpose(0, 1)
            opt = torch.optim.Adam(decoder.parameters(), lr=opt.param_groups[0]["lr"])
        sq_err = 0.0
        for i in torch.randperm(n).split(batch):
            i = i.to(device)
            x = target[i]
            if epoch < epochs:
                inputs = encoder(x) if encoder is not None else times[i]
                out = decoder(inputs)
            else:
                inputs = embeddings[i] if encoder is not None else times[i]
                quantized = {k: fake_quantize(p, bits) for k, p in decoder.named_parameters()}
                out = functional_call(decoder, quantized, (inputs,))
            loss = _mse(out, x, h, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if epoch < epochs:
                sched.step()
            sq_err += loss.item() * len(i)
        psnr = -10 * math.log10(max(sq_err / n, 1e-12))
        bar.set_postfix_str(f"{'qat' if epoch >= epochs else 'fit'} psnr {psnr:.2f} dB")
    # The bitstream writer and the decoder work on the CPU, whatever device fitted the network.
    cpu = [None if x is None else x.cpu() for x in (embeddings, embed_symbols, embed_steps)]
    return FitResult(decoder.eval().cpu(), *cpu, psnr)


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 10%, then cosine decay to 10%."""
    warm = max(1, total // 10)
    if step < warm:
        return (step + 1) / warm
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
