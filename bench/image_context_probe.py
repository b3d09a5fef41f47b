"""What would a context model buy on top of the shipped meanscale model, its transforms frozen?

Trains a small network that corrects the hyperprior's (mean, scale) of y from context the decoder
would have, on rate alone (y is fixed), then measures the true RD loss (real rounding, synthesis, and
the hyperprior's z bits) against the plain model at qualities 1, 4 and 8:

- ``--mode channel``: Minnen & Singh's channel-conditional model: y in --slices slices, slice k's
  parameters from the hyperprior's and the decoded slices < k (3x3 convolutions);
- ``--mode checkerboard``: He et al.'s two-pass model: the anchor half of the positions as the
  hyperprior codes them, the other half's parameters from the decoded anchors (5x5 convolution).

    python bench/image_context_probe.py --mode channel --slices 4 --hidden 32 --steps 1500 \\
        --held-out DIR_OF_PNGS

Estimated bits (-log2 of the bin probabilities), not a bitstream: this asks whether the format change
would pay. The training images are those of the shipped model (../shared/media/images); --held-out
images show how much of the saving carries over to images neither network saw.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mcodec.codec.image.hyperprior import STRIDE, load_ours
from mcodec.codec.image.lambdas import quality_lambda
from mcodec.codec.image.latent_refine import LIKELIHOOD_FLOOR, hyper_side
from mcodec.codec.image.tensors import to_input
from mcodec.codec.media_io import read_image
from mcodec.codec.training.image_task import load_images

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "images"
EVAL_TRAIN = ("fruits.png", "baboon.png", "wall_kite.png", "building.png", "smarties.png")


def corrector(cin: int, hidden: int, cout: int, kernel: int) -> nn.Sequential:
    """Outputs (mean offset, log scale factor), zero at the start: training starts at the plain model."""
    net = nn.Sequential(
        nn.Conv2d(cin, hidden, kernel, padding=kernel // 2),
        nn.GELU(),
        nn.Conv2d(hidden, hidden, 3 if kernel == 3 else 1, padding=1 if kernel == 3 else 0),
        nn.GELU(),
        nn.Conv2d(hidden, 2 * cout, 1),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def corrected(net, mean, scale, context):
    dm, ds = net(torch.cat([mean, torch.log(scale.clamp_min(0.11)), *context], 1)).chunk(2, 1)
    return mean + dm, scale * torch.exp(ds)


class Probe(nn.Module):
    def __init__(self, mode: str, m: int, slices: int, hidden: int):
        super().__init__()
        self.mode, self.c = mode, m // slices if mode == "channel" else m
        if mode == "channel":
            self.nets = nn.ModuleList(corrector((2 + k) * self.c, hidden, self.c, 3) for k in range(slices))
        else:
            self.nets = nn.ModuleList([corrector(3 * m, hidden, m, 5)])

    def forward(self, y, scale, mean, bits, noise: bool):
        """(bits of y, y_hat): rate at y + uniform noise when training, at the rounded y otherwise."""
        if self.mode == "channel":
            done, total = [], 0.0
            for k, net in enumerate(self.nets):
                part = slice(k * self.c, (k + 1) * self.c)
                mk, sk = corrected(net, mean[:, part], scale[:, part], done)
                yk = y[:, part]
                yh = (torch.round(yk - mk) + mk).detach()
                total = total + bits(yk + torch.empty_like(yk).uniform_(-0.5, 0.5) if noise else yh, sk, mk)
                done.append(yh)
            return total, torch.cat(done, 1)
        h, w = y.shape[-2:]
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        anchor = ((ii + jj) % 2 == 0).to(y.dtype)
        m2, s2 = corrected(self.nets[0], mean, scale, [((torch.round(y - mean) + mean) * anchor).detach()])
        m2, s2 = anchor * mean + (1 - anchor) * m2, anchor * scale + (1 - anchor) * s2
        yh = torch.round(y - m2) + m2
        return bits(y + torch.empty_like(y).uniform_(-0.5, 0.5) if noise else yh, s2, m2), yh.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("channel", "checkerboard"), default="channel")
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--held-out", type=Path, help="a folder of PNGs the model never trained on")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_ours("meanscale").model.eval().requires_grad_(False)
    gc = model.net.gaussian_conditional

    def bits(v, scale, mean):
        return -torch.log2(gc._likelihood(v, scale, mean).clamp_min(LIKELIHOOD_FLOOR)).sum()

    t0 = time.time()
    latents = []  # per training image and quality: (y, scales, means) [M, h, w]
    with torch.no_grad():
        for im in load_images(MEDIA, 256):
            x = to_input(im, STRIDE, "meanscale")
            for q in range(1, 9):
                y = model.analysis(x, torch.tensor([float(q)]))
                _, s, m = hyper_side(model, model.hyper_analysis(y))
                latents.append((y[0], s[0], m[0]))
    print(f"{len(latents)} latents of the training images in {time.time() - t0:.0f} s", flush=True)

    probe = Probe(args.mode, model.m, args.slices, args.hidden)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    rng, size, avg = random.Random(0), 16, None
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * (0.1 if step > 0.8 * args.steps else 1.0)
        crops = []
        for _ in range(16):
            y, s, m = latents[rng.randrange(len(latents))]
            i, j = rng.randint(0, y.shape[1] - size), rng.randint(0, y.shape[2] - size)
            crops.append([t[:, i : i + size, j : j + size] for t in (y, s, m)])
        y, s, m = (torch.stack(t) for t in zip(*crops, strict=True))
        b, _ = probe(y, s, m, bits, noise=True)
        with torch.no_grad():
            plain = bits(y + torch.empty_like(y).uniform_(-0.5, 0.5), s, m)
        loss = b / plain.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step}: training rate {avg:.4f} of the hyperprior's", flush=True)

    @torch.no_grad()
    def evaluate(paths: list[Path]) -> str:
        rows = []
        for path in paths:
            image = read_image(path)[:3]
            _, height, width = image.shape
            x = to_input(image, STRIDE, "meanscale")
            for q in (1.0, 4.0, 8.0):
                qt, lmbda = torch.tensor([q]), quality_lambda(q)
                y = model.analysis(x, qt)
                z_bits, s, m = hyper_side(model, model.hyper_analysis(y))
                result = []
                for use_probe in (False, True):
                    if use_probe:
                        y_bits, y_hat = probe(y, s, m, bits, noise=False)
                    else:
                        y_hat = torch.round(y - m) + m
                        y_bits = bits(y_hat, s, m)
                    x_hat = model.synthesis(y_hat, qt)[:, :, :height, :width].clamp(0, 1)
                    mse = torch.mean((x_hat - x[:, :, :height, :width]) ** 2).item()
                    bpp = (z_bits + y_bits.item()) / (height * width)
                    result.append((lmbda * 255**2 * mse + bpp, bpp, -10 * math.log10(mse)))
                (l0, b0, p0), (l1, b1, p1) = result
                rows.append((l1 / l0 - 1, b1 / b0 - 1, p1 - p0))
        loss, bpp, psnr = np.array(rows).mean(0)
        return f"RD loss {100 * loss:+.2f}%, bpp {100 * bpp:+.2f}%, PSNR {psnr:+.3f} dB"

    print(f"{sum(p.numel() for p in probe.parameters())} parameters, {args.mode}")
    print("training images:", evaluate([MEDIA / n for n in EVAL_TRAIN]), flush=True)
    if args.held_out:
        print("held-out images:", evaluate(sorted(args.held_out.glob("*.png"))), flush=True)


if __name__ == "__main__":
    main()
