"""Encoding a group of frames = fitting a NeRV/HNeRV network to it, then a quantization-aware fine-tune.

Phase 1 fits the decoder (and HNeRV's frame encoder) in float. Phase 2 freezes HNeRV's embeddings at
their quantized values and fine-tunes the decoder with quantized weights in the forward pass, so what
the bitstream carries is what was optimized. Loss: MSE over the real (unpadded) pixels.

Rate-aware fine-tune (``lam`` given): phase 2 also learns one quantization step per output channel of
every tensor (log-steps starting at STEP_START x steps_for's max|w| / 127, never below it) and HNeRV's
embeddings themselves, with loss = MSE + lam x estimated bits / pixels (rate.py: the coder's own
Gaussian tables). The file format is the same: it stores each tensor's float16 steps whatever chose them.
One warm-up + cosine learning rate over both phases (the steps: their own over phase 2); gradient
norm clipped at CLIP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .held import first_frames, runs_of
from .keypicture import base_logits
from .model import Decoder, Encoder, NervConfig
from .motion import Motion, place, sample
from .quant import (
    dequantize,
    fake_quantize,
    floor_steps,
    half_exact,
    learned_fake_quantize,
    per_channel,
    quantize,
    steps_for,
)
from .rate import tensor_bits

PRESETS = {"fast": (40, 8), "medium": (150, 20), "slow": (400, 40)}  # (fit epochs, fine-tune epochs)
BATCH = 2  # frames per optimizer step
CLIP = 1.0  # max gradient norm (HiNeRV's): one bad batch cannot throw the fit off
STEP_LR = 0.03  # Adam's rate for the log-steps: up to about 3 nats (20x) over the fast preset's fine-tune
# Learned steps start at STEP_START x the floor max|w| / 127 (6-bit levels): on tree.avi the rate term took
# floor steps to 4-10x within 160 steps for at most 0.3 dB; a short fine-tune starts closer to that.
STEP_START = 4.0
MAX_STEP = 1e4  # learned steps stay below: float16 holds them (up to 65504; the decoder refuses inf)
# HNeRV's frame encoder can die: every unit of a GELU layer pushed below zero for every frame, so each frame
# gets the same embedding and the decoder can only learn one picture for the group (the held-out life clip
# at q3, seed 0: embeddings' spread across frames 2e-9 of their size by step 300, the fit stuck at ~23 dB
# where seed 1 reaches 27). Every CHECK_EVERY fit steps the spread is measured on the group's pictures;
# below COLLAPSED of their mean size the encoder starts again from fresh weights (the decoder keeps its
# own): that fit then climbs from 22.7 to 25.6 dB by step 1000. A healthy fit's spread is >= 1e-2 of the
# size from its first check, and its steps are unchanged (the check draws no random numbers).
CHECK_EVERY = 100
COLLAPSED = 1e-4


@dataclass
class FitResult:
    decoder: Decoder
    embeddings: torch.Tensor | None  # HNeRV: quantized-then-dequantized [T, d, h0, w0]
    embed_symbols: torch.Tensor | None
    embed_steps: torch.Tensor | None
    psnr: float
    steps: dict[str, torch.Tensor] | None = None  # learned float16-exact steps per decoder tensor, or None:
    # steps_for's (rate-aware fits only)
    encoder: dict[str, torch.Tensor] | None = None  # HNeRV's frame encoder (its state): with ``decoder``,
    # where the next group's fit starts (warm_start)
    revivals: int = 0  # times the frame encoder was found collapsed and started again (CHECK_EVERY)


def _pad(frames: torch.Tensor, cfg: NervConfig) -> torch.Tensor:
    t, _, h, w = frames.shape
    return F.pad(frames.float() / 255, (0, cfg.width - w, 0, cfg.height - h), mode="replicate")


def _mse(out: torch.Tensor, target: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.mse_loss(out[..., :h, :w], target[..., :h, :w])


class _Fit:
    """The state of one group's fit: the networks, the optimizer and the padded target [T, 3, H', W'].
    lam: None for today's fine-tune, else the rate-aware one's weight on bits per pixel. motion: the
    group's global motion (motion.py), or None: the decoder draws a canvas [T, 3, H', W'] from which each
    frame is sampled at its place, the target is the frames themselves [T, 3, H, W] and HNeRV's encoder
    sees each frame drawn on the canvas. base: the key picture's logits the decoder draws over, or None.
    pictures: each frame's picture (held.py: one embedding per run of equal frames), or None: its own.
    moved: a block-motion group's base per picture (blocks.py), uint8 [P, 3, h, w], drawn over instead of
    ``base`` (made into logits a batch at a time: a float copy would be the size of the target)."""

    def __init__(
        self,
        frames: torch.Tensor,
        cfg: NervConfig,
        bits: int,
        device: str,
        batch: int,
        lr: float,
        lam: float | None = None,
        start: FitResult | None = None,
        ref: dict[str, torch.Tensor] | None = None,
        motion: Motion | None = None,
        base: torch.Tensor | None = None,
        pictures: torch.Tensor | None = None,
        moved: torch.Tensor | None = None,
    ):
        _, _, self.h, self.w = frames.shape
        self.moved = None if moved is None else moved.to(device)
        # a group coded as differences: the previous group's decoder tensors as the decoder rebuilds them
        self.ref = {k: v.to(device) for k, v in (ref or {}).items()}
        self.bits, self.batch, self.lam, self.motion, self.cfg = bits, batch, lam, motion, cfg
        self.target = (frames.float() / 255 if motion is not None else _pad(frames, cfg)).to(device)
        self.n = n = self.target.shape[0]
        self.pixels = n * self.h * self.w
        self.times = (torch.arange(n, dtype=torch.float32) / n).to(device)
        self.pic = (torch.arange(n) if pictures is None else pictures).to(device)
        self.decoder = Decoder(cfg).to(device)
        # The output starts at the clip's mean colour, not at sigmoid(~0) = mid-grey: on a dark clip the
        # first steps otherwise drive every pixel down into the sigmoid's flat tail, where the gradients
        # vanish and the fit stays a black picture (megamind's dark first 24 frames: 12.7 dB -> 24.0 dB).
        # Over a key picture it starts at the picture itself (a head bias of 0).
        mean = self.target[..., : self.h, : self.w].mean((0, 2, 3)).clamp(0.02, 0.98)
        with torch.no_grad():
            drawn_over = base is not None or moved is not None
            self.decoder.head.bias.copy_(torch.zeros(3) if drawn_over else torch.logit(mean))
        self.decoder.base = None if base is None else base.to(device)
        self.encoder = Encoder(cfg).to(device) if cfg.kind == "hnerv" else None
        if start is not None:  # the previous group's networks (same architecture): warm_start
            self.decoder.load_state_dict(start.decoder.state_dict())
            if self.encoder is not None:
                self.encoder.load_state_dict(start.encoder)
        params = list(self.decoder.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        self.opt = torch.optim.Adam(params, lr=lr)
        self.embeddings = self.embed_symbols = self.embed_steps = None
        self.log_steps: dict[str, torch.nn.Parameter] = {}  # rate-aware: per decoder tensor, and "embeddings"
        self.embed = None  # rate-aware HNeRV: the embeddings being learned, [d, T, h0, w0]

    def step(self, i: torch.Tensor, qat: bool) -> float:
        """One optimizer step on the frames ``i``; returns the MSE."""
        i = i.to(self.target.device)
        x = self.target[i]
        rate = None
        if not qat:
            inputs = self.encoder(self._input(i)) if self.encoder is not None else self.times[i]
            out = self._frames(self.decoder(inputs, self._base(i)), i)
        elif self.lam is not None:
            out, rate = self._rate_forward(i, noise=True)
        else:
            inputs = self.embeddings[self.pic[i]] if self.encoder is not None else self.times[i]
            quantized = {k: self._rebuilt(k, fake_quantize(c, self.bits)) for k, c in self._coded()}
            out = self._frames(functional_call(self.decoder, quantized, (inputs, self._base(i))), i)
        mse = _mse(out, x, self.h, self.w)
        loss = mse if rate is None else mse + self.lam * rate / self.pixels
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], CLIP)
        self.opt.step()
        if self.log_steps:
            self._floor_log_steps()
        return mse.item()

    def _base(self, i: torch.Tensor) -> torch.Tensor | None:
        """A block-motion group's bases (logits) of the frames ``i``, or None: the decoder's own."""
        if self.moved is None:
            return None
        return base_logits(self.moved[self.pic[i]], self.cfg.height, self.cfg.width)

    def _input(self, i: torch.Tensor) -> torch.Tensor:
        """HNeRV encoder's input for the frames ``i``: the padded frames, or in a motion group each frame
        drawn on the canvas."""
        if self.motion is None:
            return self.target[i]
        return place(self.target[i], self.motion, i, self.cfg.height, self.cfg.width)

    @torch.no_grad()
    def encoder_collapsed(self) -> bool:
        """Whether HNeRV's encoder gives (nearly) one embedding for every picture of the group: their
        spread across pictures below COLLAPSED of their mean size (up to 16 pictures, evenly spaced)."""
        firsts = first_frames(runs_of(self.pic))
        if self.encoder is None or len(firsts) < 2:
            return False
        e = self.encoder(self._input(firsts[torch.linspace(0, len(firsts) - 1, min(16, len(firsts))).long()]))
        return bool(e.std(0).mean() < COLLAPSED * e.abs().mean())

    def revive_encoder(self) -> None:
        """Fresh encoder weights, and Adam's state for them dropped; the decoder keeps its own."""
        self.encoder.load_state_dict(Encoder(self.cfg).state_dict())
        for p in self.encoder.parameters():
            self.opt.state.pop(p, None)

    def _frames(self, out: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """The decoder's output for the frames ``i`` -> those frames: itself, or sampled from the canvas."""
        if self.motion is None:
            return out
        return sample(out, self.motion, i.tolist(), self.h, self.w)

    def _steps(self) -> dict[str, torch.Tensor]:
        """The learned steps of every decoder tensor (and "embeddings"), float16-exact, never below the
        floor (the value passes straight through it: a step at the floor still learns)."""
        out = {}
        for name, w in self._coded():
            s = self.log_steps[name].exp()
            s = s + (torch.maximum(s, floor_steps(w, self.bits)) - s).detach()
            out[name] = half_exact(s)
        return out

    def _tensors(self):
        """(name, tensor) of what the file carries: decoder parameters, then the embeddings [d, T, h0, w0]."""
        yield from self.decoder.named_parameters()
        if self.embed is not None:
            yield "embeddings", self.embed

    def _coded(self):
        """(name, what the file codes) per tensor of _tensors: a decoder tensor's difference from the
        reference where the group is coded as differences (ref), else the tensor."""
        for name, w in self._tensors():
            yield name, w - self.ref[name] if name in self.ref else w

    def _rebuilt(self, name: str, coded: torch.Tensor) -> torch.Tensor:
        """The tensor the decoder rebuilds from a (quantized) coded value: plus the reference, if any."""
        return self.ref[name] + coded if name in self.ref else coded

    @torch.no_grad()
    def _floor_log_steps(self) -> None:
        for name, w in self._coded():
            floor = floor_steps(w, self.bits).clamp_max(MAX_STEP)
            self.log_steps[name].clamp_(min=floor.log()).clamp_(max=math.log(MAX_STEP))

    def _rate_forward(self, i: torch.Tensor | None, noise: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(frames [B, 3, H', W'] of ``i`` from the quantized decoder, or None; estimated bits of all
        that the group's file carries) under the learned steps."""
        steps = self._steps()
        coded = dict(self._coded())
        quantized = {k: self._rebuilt(k, learned_fake_quantize(c, steps[k])) for k, c in coded.items()}
        rate = sum(tensor_bits(c / per_channel(steps[k], c), noise) for k, c in coded.items())
        if i is None:
            return None, rate
        if self.embed is not None:
            inputs = quantized.pop("embeddings")[:, self.pic[i]].transpose(0, 1)
        else:
            inputs = self.times[i]
        return self._frames(functional_call(self.decoder, quantized, (inputs, self._base(i))), i), rate

    def start_qat(self) -> None:
        """Freeze HNeRV's embeddings at their quantized values; from now on only the decoder learns.
        Rate-aware: the embeddings go on learning, with the steps of every tensor. One embedding per
        picture: its first frame's."""
        raw = None
        if self.encoder is not None:
            firsts = first_frames(runs_of(self.pic))
            with torch.no_grad():
                raw = torch.cat([self.encoder(self._input(i)) for i in firsts.split(self.batch)])
            self.embed_steps = steps_for(raw.transpose(0, 1), self.bits)  # one step per embedding channel
            self.embed_symbols = quantize(raw.transpose(0, 1), self.embed_steps).transpose(0, 1)
            self.embeddings = dequantize(self.embed_symbols.transpose(0, 1), self.embed_steps).transpose(0, 1)
        g = self.opt.param_groups[0]
        lr = g.get("initial_lr", g["lr"])  # the base rate: the schedule goes on from the fit's
        if self.lam is not None:
            if raw is not None:
                self.embed = torch.nn.Parameter(raw.transpose(0, 1).contiguous())
            self.log_steps = {
                k: torch.nn.Parameter((STEP_START * floor_steps(w, self.bits)).log())
                for k, w in self._tensors()
            }
            groups = [{"params": [p for _, p in self._tensors()], "lr": lr}]
            self.opt = torch.optim.Adam(groups + [{"params": list(self.log_steps.values()), "lr": STEP_LR}])
        elif self.encoder is not None:
            self.opt = torch.optim.Adam(self.decoder.parameters(), lr=lr)
        for g in self.opt.param_groups:  # a new optimizer's rates are the schedule's base rates
            g.setdefault("initial_lr", g["lr"])

    @torch.no_grad()
    def finish(self) -> dict[str, torch.Tensor] | None:
        """Rate-aware: fix the learned steps (float16, at least the floor) and HNeRV's embeddings to what
        the file carries; returns the decoder tensors' steps. Otherwise None."""
        if self.lam is None:
            return None
        steps = self._steps()
        if self.embed is not None:
            self.embed_steps = steps.pop("embeddings")
            self.embed_symbols = quantize(self.embed, self.embed_steps).transpose(0, 1)
            self.embeddings = dequantize(self.embed_symbols.transpose(0, 1), self.embed_steps).transpose(0, 1)
        return {k: s.detach().clone() for k, s in steps.items()}

    @torch.no_grad()
    def estimated_bits(self) -> float:
        """Rate-aware: the estimated bits of the rounded symbols under the current steps."""
        return float(self._rate_forward(None, noise=False)[1])


def fit_steps(epochs: tuple[float, float], frames: int, batch: int = BATCH) -> tuple[int, int]:
    """(fit steps, fine-tune steps) of a schedule in epochs for a group of ``frames``, each at least 1: a
    fraction of an epoch ends that epoch early (a benchmark's few steps)."""
    per_epoch = math.ceil(frames / batch)
    return tuple(max(1, round(e * per_epoch)) for e in epochs)


@contextmanager
def full_float32():
    """TF32 off for the fit (torch leaves it on for cuDNN convolutions): a network fitted on a GPU
    through 10-bit-mantissa convolutions is not the network the CPU decoder evaluates in float32, which may
    be the 0.8 dB a GPU fit lost between its fine-tune PSNR and the decoded file. The flags are restored
    afterwards. (The networks are small and launch-bound on a GPU: full float32 costs little there.)"""
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


@full_float32()
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
    lam: float | None = None,
    start: FitResult | None = None,
    ref: dict[str, torch.Tensor] | None = None,
    motion: Motion | None = None,
    base: torch.Tensor | None = None,
    pictures: torch.Tensor | None = None,
    moved: torch.Tensor | None = None,
) -> FitResult:
    """frames: uint8 [T, 3, H, W] -> a fitted, quantization-aware decoder (and HNeRV embeddings).
    epochs: (fit, fine-tune) epochs, or a preset's name. on_step(phase "fit" or "qat", MSE) after each
    optimizer step (progress, step timing): a true value ends that phase there (a time budget).
    lam: the rate-aware fine-tune's weight on estimated bits per pixel (MSE on [0, 1] pixels), or None.
    start: the previous group's fit, to start from instead of random weights where ``warm_start`` allows.
    ref: for a group coded as differences, the decoder tensors the decoder rebuilt for the previous group
    (same architecture): the fine-tune quantizes each tensor's difference from them, as the file will.
    motion: the group's global motion (cfg is then the canvas's network), or None. base: the logits of the
    group's key picture (keypicture.base_logits, the padded size) the decoder's output is drawn over, or
    None. pictures: each frame's picture index (held.py): the embeddings are one per picture, or None: one
    per frame. moved: a block-motion group's moved key pictures, uint8 [P, 3, h, w] (blocks.py), drawn over
    instead of ``base``. Runs in full float32 (full_float32)."""
    torch.manual_seed(seed)
    epochs = PRESETS[epochs] if isinstance(epochs, str) else epochs
    init = start if start is not None and warm_start(start, cfg) else None
    # the same schedule from a warm start: at half the peak rate the later groups gained 0.7-0.9 dB
    # (tree, megamind 72 frames in groups of 24), at the full rate 1.0-1.05 dB
    fit = _Fit(frames, cfg, bits, device, batch, lr, lam, init, ref, motion, base, pictures, moved)
    n_fit, n_qat = fit_steps(epochs, fit.n, batch)
    total = n_fit + n_qat
    sq_err, seen, revivals = 0.0, 0, 0
    for phase, steps in (("fit", n_fit), ("qat", n_qat)):
        # One warm-up + cosine over both phases for the network (the fine-tune goes on from where the fit
        # is); the learned steps, new in the fine-tune, get their own over it.
        factors = [lambda i: _lr_factor(i, total)]
        if phase == "qat":
            fit.start_qat()
            factors = [lambda i: _lr_factor(n_fit + i, total)] * (1 + bool(fit.log_steps))
            factors[1:] = [lambda i: _lr_factor(i, n_qat)] * len(factors[1:])
        sched = torch.optim.lr_scheduler.LambdaLR(fit.opt, factors)
        for k, i in enumerate(_batches(fit.n, batch, steps), 1):
            mse = fit.step(i, qat=phase == "qat")
            sched.step()
            if phase == "fit" and k % CHECK_EVERY == 0 and fit.encoder_collapsed():
                fit.revive_encoder()
                revivals += 1
            sq_err, seen = sq_err + mse * len(i), seen + len(i)
            if on_step is not None and on_step(phase, mse):
                break
    steps = fit.finish()
    psnr = -10 * math.log10(max(sq_err / max(seen, 1), 1e-12))
    # The bitstream writer and the decoder work on the CPU, whatever device fitted the network.
    cpu = [None if x is None else x.cpu() for x in (fit.embeddings, fit.embed_symbols, fit.embed_steps)]
    steps = None if steps is None else {k: v.cpu() for k, v in steps.items()}
    encoder = None if fit.encoder is None else {k: v.cpu() for k, v in fit.encoder.state_dict().items()}
    return FitResult(fit.decoder.eval().cpu(), *cpu, psnr, steps, encoder, revivals)


def warm_start(previous: FitResult, cfg: NervConfig) -> bool:
    """Whether a group's fit starts from the previous group's networks: only where the architecture is
    the same (a shorter last group may get a narrower network)."""
    return previous.decoder.cfg == cfg


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
    lam: float | None = None,
) -> tuple[float, float]:
    """Seconds of one fit step and one fine-tune step (rate-aware with ``lam``) of ``batch`` frames of
    ``cfg``'s size on ``device`` (the median of ``repeat`` after one to warm up), on a throwaway network:
    the fit itself is untouched."""
    with torch.random.fork_rng(devices=[]):
        frames = torch.zeros(batch, 3, cfg.height, cfg.width, dtype=torch.uint8)
        fit = _Fit(frames, cfg, bits, device, batch, 1e-3, lam)
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
