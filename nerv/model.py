"""NeRV and HNeRV networks, sized from the clip.

Both decode a small feature grid [C0, h0, w0] into a frame through "NeRV blocks" (3x3 conv ->
PixelShuffle(s) -> GELU) whose strides multiply to S, then a 3x3 head and a sigmoid. They differ in where
the grid comes from: NeRV maps the frame index (sin/cos positional encoding -> MLP) to it; HNeRV maps a
tiny per-frame embedding [d, h0, w0], made from the frame by a convolutional encoder, through a 1x1 conv.
Only the decoder (and HNeRV's quantized embeddings) is transmitted; the encoder stays with the encoder.

Shapes: frames [B, 3, H', W'] in [0, 1] with H' = h0 * S, W' = w0 * S (the clip padded); t: [B] in [0, 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

STRIDE_CHOICES = (5, 4, 3, 2)
TOTAL_STRIDES = (16, 20, 24, 32, 40, 48, 60, 64, 80, 96, 120, 128, 160)
MAX_PAD = 0.10  # padding allowed when choosing the total stride, as a fraction of the frame area
WIDTHS = range(8, 257, 4)  # first-block widths the encoder chooses from (network_for)
MIN_WIDTH = 12  # the narrowest later block (plan's min_width)
STEM_WIDTH = 64  # NeRV's MLP hidden width
EMBED_DIM = 16  # HNeRV embedding channels, NeRV positional-encoding frequencies: the encoder's only choice


@dataclass(frozen=True)
class NervConfig:
    kind: str  # "nerv" or "hnerv"
    height: int  # padded frame size
    width: int
    strides: tuple[int, ...]
    channels: tuple[int, ...]  # input width of each block, then the last block's output width
    embed_dim: int = EMBED_DIM  # HNeRV embedding channels (NeRV: positional-encoding frequencies)

    @property
    def grid(self) -> tuple[int, int]:
        s = math.prod(self.strides)
        return self.height // s, self.width // s

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> NervConfig:
        return cls(
            d["kind"],
            int(d["height"]),
            int(d["width"]),
            tuple(d["strides"]),
            tuple(d["channels"]),
            int(d["embed_dim"]),
        )


def plan(
    kind: str,
    height: int,
    width: int,
    width0: int,
    embed_dim: int = EMBED_DIM,
    reduction: float = 1.2,
    min_width: int = MIN_WIDTH,
    max_stride: int | None = None,
) -> NervConfig:
    """The largest total stride (at most ``max_stride``) that pads the frame by at most MAX_PAD (small
    grid = small embeddings), split into strides from STRIDE_CHOICES; channels shrink by ``reduction`` per
    block."""
    best = 16
    for s in TOTAL_STRIDES:
        h, w = -(-height // s) * s, -(-width // s) * s
        fits = h * w <= (1 + MAX_PAD) * height * width and s <= max(height, width)
        if fits and s <= (max_stride or s):
            best = s
    strides, rest = [], best
    for f in STRIDE_CHOICES:
        while rest % f == 0 and rest > 1:
            strides.append(f)
            rest //= f
    channels, c = [width0], float(width0)
    for _ in strides:
        c = max(c / reduction, min_width)
        channels.append(int(round(c)))
    return NervConfig(
        kind, -(-height // best) * best, -(-width // best) * best, tuple(strides), tuple(channels), embed_dim
    )


def tensor_shapes(cfg: NervConfig) -> dict[str, tuple[int, ...]]:
    """The shapes of ``Decoder(cfg).state_dict()``, in its order, without building it (FORMAT.md 6.4)."""
    (h0, w0), c, d = cfg.grid, cfg.channels, cfg.embed_dim
    if cfg.kind == "hnerv":
        shapes = {"stem.weight": (c[0], d, 1, 1), "stem.bias": (c[0],)}
    else:
        shapes = {
            "stem.0.weight": (STEM_WIDTH, 2 * d),
            "stem.0.bias": (STEM_WIDTH,),
            "stem.2.weight": (c[0] * h0 * w0, STEM_WIDTH),
            "stem.2.bias": (c[0] * h0 * w0,),
        }
    for i, s in enumerate(cfg.strides):
        shapes[f"blocks.{i}.conv.weight"] = (c[i + 1] * s * s, c[i], 3, 3)
        shapes[f"blocks.{i}.conv.bias"] = (c[i + 1] * s * s,)
    return {**shapes, "head.weight": (3, c[-1], 3, 3), "head.bias": (3,)}


def parameter_count(cfg: NervConfig) -> int:
    """Parameters of ``Decoder(cfg)`` (what the bitstream carries, embeddings aside)."""
    return sum(math.prod(shape) for shape in tensor_shapes(cfg).values())


class NervBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * stride * stride, 3, padding=1)
        self.stride = stride
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(pixel_shuffle(self.conv(x), self.stride))


def pixel_shuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    """[B, C s^2, h, w] -> [B, C, h s, w s], out[c, i s + a, j s + b] = x[c s^2 + a s + b, i, j]: the same
    values as ``F.pixel_shuffle``, whose CPU kernel took 2.7x the time of this permuted copy."""
    b, c, h, w = x.shape
    return (
        x.view(b, c // (s * s), s, s, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // (s * s), h * s, w * s)
    )


def over(logits: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
    """The decoder's picture: the head's logits drawn over a key picture's (keypicture.base_logits), or
    alone where the group has none, through the sigmoid."""
    return torch.sigmoid(logits if base is None else logits + base)


class Head(nn.Conv2d):
    """3x3 convolution C -> 3 with zero padding (an ``nn.Conv2d``: same parameters, same function).

    In eval mode it is computed as a 1x1 convolution to the 9 taps' outputs plus a sum of 9 shifted
    slices (each clipped at the border). torch's native CPU convolution (the deterministic path, oneDNN
    off) first unfolds a 3x3 input into a 9C-row matrix; for 3 output channels at full resolution that
    copy was 60% of the decoding time. Training keeps the ordinary convolution, whose backward pass is
    faster with oneDNN.
    """

    def __init__(self, cin: int):
        super().__init__(cin, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        h, w = x.shape[-2:]
        taps = self.weight.permute(2, 3, 0, 1).reshape(27, -1, 1, 1)  # tap (dy, dx): rows 3 (3 dy + dx) + c
        p = F.conv2d(x, taps)  # [B, 27, H, W]
        y = p[:, 12:15] + self.bias.view(1, 3, 1, 1)  # the centre tap reaches every pixel
        for t in (0, 1, 2, 3, 5, 6, 7, 8):  # y[i, j] += p_t[i + oy, j + ox] where inside (zero padding)
            oy, ox = t // 3 - 1, t % 3 - 1
            y[:, :, max(0, -oy) : h - max(0, oy), max(0, -ox) : w - max(0, ox)] += p[
                :, 3 * t : 3 * t + 3, max(0, oy) : h - max(0, -oy), max(0, ox) : w - max(0, -ox)
            ]
        return y


class Decoder(nn.Module):
    """Grid features [B, C0, h0, w0] -> frames [B, 3, H', W']. This is what the bitstream carries."""

    def __init__(self, cfg: NervConfig):
        super().__init__()
        self.cfg = cfg
        h0, w0 = cfg.grid
        c0 = cfg.channels[0]
        if cfg.kind == "hnerv":
            self.stem = nn.Conv2d(cfg.embed_dim, c0, 1)
        else:  # NeRV: positional encoding of t -> MLP -> the grid
            self.stem = nn.Sequential(
                nn.Linear(2 * cfg.embed_dim, STEM_WIDTH), nn.GELU(), nn.Linear(STEM_WIDTH, c0 * h0 * w0)
            )
        self.blocks = nn.ModuleList(
            NervBlock(cfg.channels[i], cfg.channels[i + 1], s) for i, s in enumerate(cfg.strides)
        )
        self.head = Head(cfg.channels[-1])
        # a group's key picture (keypicture.py) as logits [1, 3, H', W'] added to the head's output, or None;
        # not a parameter: the file carries the picture itself (a VKEY chunk), not in this state dict
        self.register_buffer("base", None, persistent=False)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.cfg.kind == "hnerv":
            return self.stem(inputs)
        h0, w0 = self.cfg.grid
        return self.stem(positional_encoding(inputs, self.cfg.embed_dim)).view(
            -1, self.cfg.channels[0], h0, w0
        )

    def forward(self, inputs: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """inputs: HNeRV embeddings [B, d, h0, w0] or NeRV frame times t [B]. base: logits [B, 3, H', W'] to
        draw these frames over (a block-motion group's moved key pictures), instead of ``self.base``."""
        return over(self.logits(inputs), self.base if base is None else base)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The head's output [B, 3, H', W']: what ``forward`` draws over the base, before the sigmoid."""
        x = self.features(inputs)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def _needed(self, lo: int, hi: int, size: int) -> list[tuple[int, int]]:
        """Output pixels lo:hi along one axis (``size`` at the output) -> the range each level's input must
        hold: a 3x3 convolution needs one more pixel on each side (within the picture, where its zero
        padding is the real border), a block's outputs at s x its convolution's. Level 0 is the grid;
        the last entry is the head's input."""
        sizes = [size // math.prod(self.cfg.strides[k:]) for k in range(len(self.cfg.strides) + 1)]
        need = [(max(0, lo - 1), min(size, hi + 1))]  # the head's input
        for k in reversed(range(len(self.cfg.strides))):
            s, (a, b) = self.cfg.strides[k], need[0]
            need.insert(0, (max(0, a // s - 1), min(sizes[k], -(-b // s) + 1)))
        return need

    def window(self, inputs: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """``logits(inputs)`` (one input) at output rows r0:r1 and columns c0:c1 only, [1, 3, r1 - r0,
        c1 - c0]: a motion group's frame reads a window of its canvas (motion.sample). Each level draws only
        what the next needs (``_needed``), so the window's values are logits', up to the order of float sums
        in the smaller convolutions."""
        height, width = self.cfg.height, self.cfg.width
        ny, nx = self._needed(*rows, height), self._needed(*cols, width)
        x = self.features(inputs)[..., ny[0][0] : ny[0][1], nx[0][0] : nx[0][1]]
        for k, block in enumerate(self.blocks):
            s, (ya, yb), (xa, xb) = block.stride, ny[k + 1], nx[k + 1]
            # the convolution's outputs under the next level's range: inside the crop by a pixel
            y0, x0 = ya // s - ny[k][0], xa // s - nx[k][0]
            y = block.conv(x)[..., y0 : -(-yb // s) - ny[k][0], x0 : -(-xb // s) - nx[k][0]]
            y = pixel_shuffle(y, s)  # from row (ya // s) s and column (xa // s) s of the next level
            x = block.act(y[..., ya % s : ya % s + yb - ya, xa % s : xa % s + xb - xa])
        (r0, r1), (c0, c1), (ya, _), (xa, _) = rows, cols, ny[-1], nx[-1]
        return self.head(x)[..., r0 - ya : r1 - ya, c0 - xa : c1 - xa]


class Encoder(nn.Module):
    """HNeRV's frame encoder: patchify convolutions with the decoder's strides, GELU between."""

    def __init__(self, cfg: NervConfig, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for s in cfg.strides:
            layers += [nn.Conv2d(cin, width, s, stride=s), nn.GELU()]
            cin = width
        layers.append(nn.Conv2d(cin, cfg.embed_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)


def positional_encoding(t: torch.Tensor, frequencies: int) -> torch.Tensor:
    """t [B] in [0, 1) -> [B, 2 * frequencies] (sin, cos of 1.25^i * pi * t), as in NeRV."""
    scales = 1.25 ** torch.arange(frequencies, dtype=t.dtype, device=t.device) * math.pi
    angles = t[:, None] * scales[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
