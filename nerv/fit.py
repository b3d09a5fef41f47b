"""Encoding a group of frames = fitting a NeRV/HNeRV network to it, then a quantization-aware fine-tune.

Phase 1 fits the decoder (and HNeRV's frame encoder) in float. Phase 2 freezes HNeRV's embeddings at
their quantized values and fine-tunes the decoder with quantized weights in the forward pass, so what
the bitstream carries is what was optimized. Loss: MSE over the real (unpadded) pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .model import Decoder, Encoder, NervConfig
from .quant import dequantize, fake_quantize, quantize, steps_for

PRESETS = {"fast": (40, 8), "medium": (150, 20), "slow": (400, 40)}  # (fit epochs, fine-tune epochs)
BATCH = 2  # frames per optimizer step


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


class _Fit:
    """The state of one group's fit: the networks, the optimizer and the padded target [T, 3, H', W']."""

    def __init__(self, frames: torch.Tensor, cfg: NervConfig, bits: int, device: str, batch: int, lr: float):
        _, _, self.h, self.w = frames.shape
        self.bits, self.batch = bits, batch
        self.target = _pad(frames, cfg).to(device)
        self.n = n = self.target.shape[0]
        self.times = (torch.arange(n, dtype=torch.float32) / n).to(device)
        self.decoder = Decoder(cfg).to(device)
        self.encoder = Encoder(cfg).to(device) if cfg.kind == "hnerv" else None
        params = list(self.decoder.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        self.opt = torch.optim.Adam(params, lr=lr)
        self.embeddings = self.embed_symbols = self.embed_steps = None

    def step(self, i: torch.Tensor, qat: bool) -> float:
        """One optimizer step on the frames ``i``; returns the MSE."""
        i = i.to(self.target.device)
        x = self.target[i]
        if not qat:
            out = self.decoder(self.encoder(x) if self.encoder is not None else self.times[i])
        else:
            inputs = self.embeddings[i] if self.encoder is not None else self.times[i]
            quantized = {k: fake_quantize(p, self.bits) for k, p in self.decoder.named_parameters()}
            out = functional_call(self.decoder, quantized, (inputs,))
        loss = _mse(out, x, self.h, self.w)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def start_qat(self) -> None:
        """Freeze HNeRV's embeddings at their quantized values; from now on only the decoder learns."""
        if self.encoder is not None:
            with torch.no_grad():
                b = self.batch
                raw = torch.cat([self.encoder(self.target[i : i + b]) for i in range(0, self.n, b)])
            self.embed_steps = steps_for(raw.transpose(0, 1), self.bits)  # one step per embedding channel
            self.embed_symbols = quantize(raw.transpose(0, 1), self.embed_steps).transpose(0, 1)
            self.embeddings = dequantize(self.embed_symbols.transpose(0, 1), self.embed_steps).transpose(0, 1)
            self.opt = torch.optim.Adam(self.decoder.parameters(), lr=self.opt.param_groups[0]["lr"])


def fit_steps(epochs: tuple[float, float], frames: int, batch: int = BATCH) -> tuple[int, int]:
    """(fit steps, fine-tune steps) of a schedule in epochs for a group of ``frames``, each at least 1: a
    fraction of an epoch ends that epoch early (a benchmark's few steps)."""
    per_epoch = math.ceil(frames / batch)
    return tuple(max(1, round(e * per_epoch)) for e in epochs)


def fit_group(
    frames: torch.Tensor,
    cfg: NervConfig,
    bits: int,
    epochs: tuple[float, float] | str = "medium",
    device: str = "cpu",
    batch: int = BATCH,
    lr: float = 5e-3,
    seed: int = 0,
    on_step: Callable[[str, float], bool | None] | None = None,
) -> FitResult:
    """frames: uint8 [T, 3, H, W] -> a fitted, quantization-aware decoder (and HNeRV embeddings).
    epochs: (fit, fine-tune) epochs, or a preset's name. on_step(phase "fit" or "qat", MSE) after each
    optimizer step (progress, step timing): a true value ends that phase there (a time budget)."""
    torch.manual_seed(seed)
    epochs = PRESETS[epochs] if isinstance(epochs, str) else epochs
    fit = _Fit(frames, cfg, bits, device, batch, lr)
    n_fit, n_qat = fit_steps(epochs, fit.n, batch)
    sched = torch.optim.lr_scheduler.LambdaLR(fit.opt, lambda i: _lr_factor(i, n_fit + n_qat))
    sq_err, seen = 0.0, 0
    for phase, steps in (("fit", n_fit), ("qat", n_qat)):
        if phase == "qat":
            fit.start_qat()
        for i in _batches(fit.n, batch, steps):
            mse = fit.step(i, qat=phase == "qat")
            if phase == "fit":
                sched.step()
            sq_err, seen = sq_err + mse * len(i), seen + len(i)
            if on_step is not None and on_step(phase, mse):
                break
    psnr = -10 * math.log10(max(sq_err / max(seen, 1), 1e-12))
    # The bitstream writer and the decoder work on the CPU, whatever device fitted the network.
    cpu = [None if x is None else x.cpu() for x in (fit.embeddings, fit.embed_symbols, fit.embed_steps)]
    return FitResult(fit.decoder.eval().cpu(), *cpu, psnr)


def _batches(n: int, batch: int, steps: int):
    """``steps`` batches of frame indexes, a new random order for each epoch (a pass over the n frames)."""
    done = 0
    while done < steps:
        for i in torch.randperm(n).split(batch):
            if done == steps:
                return
            yield i
            done += 1


def time_steps(
    cfg: NervConfig,
    bits: int,
    device: str = "cpu",
    batch: int = BATCH,
    repeat: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """Seconds of one fit step and one fine-tune step of ``batch`` frames of ``cfg``'s size on ``device``
    (the median of ``repeat`` after one to warm up), on a throwaway network: the fit itself is untouched."""
    with torch.random.fork_rng(devices=[]):
        frames = torch.zeros(batch, 3, cfg.height, cfg.width, dtype=torch.uint8)
        fit = _Fit(frames, cfg, bits, device, batch, 1e-3)
        out = []
        for qat in (False, True):
            if qat:
                fit.start_qat()
            times = []
            for _ in range(repeat + 1):
                t0 = clock()
                fit.step(torch.arange(batch), qat)
                times.append(clock() - t0)
            out.append(sorted(times[1:])[len(times[1:]) // 2])
    return out[0], out[1]


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 10%, then cosine decay to 10%."""
    warm = max(1, total // 10)
    if step < warm:
        return (step + 1) / warm
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
