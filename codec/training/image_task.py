"""Training loop for the learned image codecs: random crops of a folder of images, rate-distortion loss
``lambda_q * 255^2 * MSE + bpp`` with the quality q drawn per crop, resumable checkpoints.

The checkpoint (``checkpoint.pt`` in the run folder: model, optimizers, step) is written atomically every
``ckpt_every`` steps, so a run killed at any time resumes where it stopped; exporting to shipped
safetensors is a separate step (``training.export``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck
from PIL import Image

from mcodec.codec.base import CodecError
from mcodec.codec.image.lambdas import LAMBDAS

from . import distributed
from .clock import set_lr
from .loop import train_loop

# The checkerboard context, new on a trained model, learns at this multiple of the run's rate: at the
# transforms' fine-tuning rate (1e-4) it would take most of a CPU session to move from zero.
CONTEXT_LR_FACTOR = 10.0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class TrainConfig:
    steps: int = 1000
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    aux_lr: float = 1e-3
    ckpt_every: int = 100
    log_every: int = 10
    seed: int = 0
    max_seconds: float | None = None
    amp: bool = False  # transforms in bfloat16 autocast (entropy models stay float32)
    frozen: tuple[str, ...] = ()  # parameters held fixed for the first frozen_steps (a warm start)
    frozen_steps: int = 0
    # the operating points trained (a quality is drawn per crop from these; () = all) and each quality's
    # lambda (--quality Q [--lambda L] fine-tunes one point; the others' gains are left to drift)
    qualities: tuple[int, ...] = ()
    lambdas: tuple[float, ...] = LAMBDAS
    rounded_synthesis: bool = False  # hyperpriors: GainedHyperprior.forward's mixed quantization
    # the chance that a crop's RGB channels are permuted at random: hues the training photos lack, so the
    # learned priors do not narrow around their colours (0 draws nothing: earlier runs replay exactly)
    channel_shuffle: float = 0.0
    # the chance that a crop is cut from a window rescaled to the crop size (see random_batch)
    rescale_crops: float = 0.0
    # the largest scale of a rescaled crop: above 1 some windows are smaller than the crop and upscaled,
    # content as smooth per pixel as a large camera photo's (1 draws as before: earlier runs replay)
    rescale_max: float = 1.0
    # each crop's loss weighed by (its lambda / the lambdas' geometric mean)^-quality_balance (rd_loss)
    quality_balance: float = 0.0
    # each image's chance of giving a crop, as its pixel count^area_power (0: every image alike, as before)
    area_power: float = 0.0
    # the chance that a crop is turned by 1, 2 or 3 quarter turns (random_batch)
    rotate_crops: float = 0.0


def load_images(folder: Path, min_side: int) -> list[torch.Tensor]:
    """Every image in folder as [3, H, W] uint8, plus a 2x-downscaled copy where it stays >= min_side
    (more scales of texture per source image)."""
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            half = rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS)
        for variant in (rgb, half):
            if min(variant.size) >= min_side:
                images.append(torch.from_numpy(np.asarray(variant).copy()).permute(2, 0, 1))
    if not images:
        raise CodecError(f"no images of at least {min_side} px in {folder}")
    return images


# The smallest scale of a rescaled crop (a window at most 1 / 0.3 = 3.3x the crop). The image's short side
# usually binds first: a 1280 x 800 photo's 384 crops come from windows of at most 800 px (scale 0.48).
MIN_CROP_SCALE = 0.3


def rescaled_crop(im: torch.Tensor, crop: int, rng: random.Random, hi: float = 1.0) -> torch.Tensor:
    """A crop x crop uint8 patch cut from a random window of side crop / s, s drawn log-uniformly from
    [max(crop / short side, MIN_CROP_SCALE), hi], and resized to crop (antialiased when shrunk): each photo
    gives its textures at every scale in that range, not only at 1x and 1/2x."""
    _, h, w = im.shape
    lo = max(crop / min(h, w), MIN_CROP_SCALE)
    side = min(round(crop / math.exp(rng.uniform(math.log(lo), math.log(hi)))), h, w)
    top, left = rng.randrange(h - side + 1), rng.randrange(w - side + 1)
    window = im[:, top : top + side, left : left + side]
    if side == crop:
        return window
    small = F.interpolate(
        window[None].float(), size=(crop, crop), mode="bilinear", antialias=True, align_corners=False
    )
    return small[0].round().clamp(0, 255).to(torch.uint8)  # 8-bit like the photos coded


def draw_weights(images: list[torch.Tensor], area_power: float) -> list[float] | None:
    """Each image's weight in the draw of crops, its pixel count^area_power; None (every image alike)
    at 0. At 1 every pixel is equally likely to be in a crop: a 1280 px photo gives 4x the crops of a
    640 px one, where the even draw lets 36 small images outvote the 21 large photos' 68% of pixels."""
    if not area_power:
        return None
    return [float(im.shape[-1] * im.shape[-2]) ** area_power for im in images]


def random_batch(
    images: list[torch.Tensor],
    batch: int,
    crop: int,
    rng: random.Random,
    channel_shuffle: float = 0.0,
    rescale_crops: float = 0.0,
    rescale_max: float = 1.0,
    weights: list[float] | None = None,
    rotate_crops: float = 0.0,
) -> torch.Tensor:
    """[batch, 3, crop, crop] float in [0, 1], random crops with random horizontal flips; with
    probability ``rescale_crops`` a crop comes from a window rescaled to it (rescaled_crop, scales up to
    ``rescale_max``), and with probability ``channel_shuffle`` its colour channels come in a random order
    (an exact change of hue: no resampling, no clipping). With probability ``rotate_crops`` a crop is
    turned by 1, 2 or 3 quarter turns: with the flips, all 8 symmetries of the square, exact like the
    shuffle (edges and textures in every orientation, where photos favour the upright). Images are drawn
    by ``weights`` (draw_weights), evenly where None. Probabilities of 0 and no weights draw nothing new
    from rng, so earlier runs replay exactly."""
    out = []
    for _ in range(batch):
        im = images[rng.randrange(len(images))] if weights is None else rng.choices(images, weights)[0]
        _, h, w = im.shape
        if rescale_crops and rng.random() < rescale_crops:
            patch = rescaled_crop(im, crop, rng, rescale_max)
        else:
            top, left = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
            patch = im[:, top : top + crop, left : left + crop]
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        if rotate_crops and rng.random() < rotate_crops:
            patch = patch.rot90(rng.randint(1, 3), (-2, -1))
        if channel_shuffle and rng.random() < channel_shuffle:
            order = [0, 1, 2]
            rng.shuffle(order)
            patch = patch[order]
        out.append(patch)
    return torch.stack(out).float() / 255.0


def rd_loss(
    model,
    x: torch.Tensor,
    quality: torch.Tensor,
    lambdas: tuple[float, ...] = LAMBDAS,
    rounded_synthesis: bool = False,
    balance: float = 0.0,
) -> tuple[torch.Tensor, float, float]:
    """Mean RD loss over the batch, lambda ``lambdas[q - 1]`` per sample; returns (loss, bpp, psnr).

    ``balance`` a > 0 weighs a sample's loss by (lambda / G)^-a, G the lambdas' geometric mean: a
    quality's loss grows about as lambda^0.5 (~0.2 at q1, ~2.2 at q8), so plain sums let the top
    qualities steer the shared transforms; a = 0.5 gives every quality about the same say."""
    out = model(x, quality, rounded_synthesis=True) if rounded_synthesis else model(x, quality)
    num_pixels = x.shape[2] * x.shape[3]
    bits = sum(-torch.log2(lk).flatten(1).sum(1) for lk in out["likelihoods"].values())
    bpp = bits / num_pixels
    mse = F.mse_loss(out["x_hat"].float(), x, reduction="none").flatten(1).mean(1)
    lam = torch.tensor(lambdas, device=x.device)[quality.long() - 1]
    loss = lam * 255**2 * mse + bpp
    if balance:
        loss = loss * (lam / math.exp(sum(map(math.log, lambdas)) / len(lambdas))) ** -balance
    loss = loss.mean()
    psnr = -10 * math.log10(max(mse.mean().item(), 1e-10))
    return loss, bpp.mean().item(), psnr


class ImageTask:
    """One step: random crops with a quality drawn per crop, RD loss, then compressai's auxiliary
    quantile loss on its own optimizer (gradients averaged across processes by hand: DDP never sees it)."""

    def __init__(self, model, data: Path, cfg: TrainConfig, opt, aux_opt, aux_params: list):
        self.model, self.data, self.cfg = model, data, cfg
        self.opt, self.aux_opt, self.aux_params = opt, aux_opt, aux_params
        self.main_params = [p for g in opt.param_groups for p in g["params"]]
        named = dict(model.named_parameters())
        self.frozen = [named[n] for n in cfg.frozen]
        # Adam's own step count on a trained parameter says how far the run is, resumes included.
        trained = {id(p) for p in self.main_params}
        self.clock_param = next(p for n, p in named.items() if n not in cfg.frozen and id(p) in trained)

    def _frozen_now(self) -> bool:
        state = self.opt.state.get(self.clock_param, {})
        return bool(self.frozen) and int(state.get("step", 0)) < self.cfg.frozen_steps

    def setup(self, d: distributed.Dist) -> str:
        self.d = d
        # NHWC convolutions: ~15% faster steps on this CPU (oneDNN), and the layout tensor cores want.
        # Parameters change layout in place, so the optimizers keep their references.
        self.model.to(memory_format=torch.channels_last)
        self.images = load_images(self.data, self.cfg.crop)
        self.weights = draw_weights(self.images, self.cfg.area_power)
        return f"{len(self.images)} training images"

    def step(self, net, rng: random.Random, step: int = 0) -> dict[str, float]:
        cfg, device = self.cfg, self.d.device
        x = random_batch(
            self.images,
            cfg.batch,
            cfg.crop,
            rng,
            cfg.channel_shuffle,
            cfg.rescale_crops,
            cfg.rescale_max,
            self.weights,
            cfg.rotate_crops,
        )
        x = x.to(device, memory_format=torch.channels_last)
        n = len(cfg.lambdas)
        draws = [rng.choice(cfg.qualities) if cfg.qualities else rng.randint(1, n) for _ in range(cfg.batch)]
        quality = torch.tensor(draws, device=device, dtype=torch.float32)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            loss, bpp, psnr = rd_loss(
                net, x, quality, cfg.lambdas, cfg.rounded_synthesis, balance=cfg.quality_balance
            )
        frozen = self._frozen_now()
        self.opt.zero_grad()
        loss.backward()
        if frozen:
            for p in self.frozen:
                p.grad = None  # Adam leaves a parameter without a gradient untouched
        norm = torch.nn.utils.clip_grad_norm_(self.main_params, 1.0)
        # One inf or NaN gradient, clipped, would turn every weight into NaN: skip that step instead
        # (the log's "skipped" is the fraction of such steps). Under torchrun every rank sees the same
        # averaged gradient, so all ranks skip together.
        finite = bool(torch.isfinite(norm))
        if finite:
            self.opt.step()
        aux_loss = sum(m.loss() for m in self.model.modules() if isinstance(m, EntropyBottleneck))
        self.aux_opt.zero_grad()
        aux_loss.backward()
        distributed.average_grads(self.aux_params, self.d)
        if torch.isfinite(aux_loss):
            self.aux_opt.step()
        metrics = {
            "loss": loss.item(),
            "bpp": bpp,
            "psnr": psnr,
            "aux": aux_loss.item(),
            "skipped": float(not finite),
        }
        if self.frozen:
            metrics["frozen"] = float(frozen)
        return metrics


def train(
    model,
    data: Path,
    run_dir: Path,
    cfg: TrainConfig,
    device: str = "cpu",
    init_state: dict | None = None,
    log=None,
) -> bool:
    """Train ``model`` until ``cfg.steps`` total steps (or ``cfg.max_seconds``), resuming from
    run_dir/checkpoint.pt if present; returns whether this is the main process (the one that exports).

    ``init_state``: weights to start from when there is no checkpoint yet (fine-tuning shipped weights).
    """
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    rd_params = [
        p for n, p in model.named_parameters() if not n.endswith("quantiles") and not n.startswith("context.")
    ]
    groups = [{"params": rd_params}]
    if getattr(model, "context", None) is not None:
        groups.append({"params": list(model.context.parameters()), "lr_factor": CONTEXT_LR_FACTOR})
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    set_lr(opt, cfg.lr, 1.0)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    task = ImageTask(model, data, cfg, opt, aux_opt, aux_params)
    optimizers = {"opt": opt, "aux_opt": aux_opt}
    main = train_loop(model, task, optimizers, run_dir, cfg, device, init_state, log)
    model.to(memory_format=torch.contiguous_format)  # export and coding see the usual layout
    return main
