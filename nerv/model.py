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
from torch import nn

STRIDE_CHOICES = (5, 4, 3, 2)
TOTAL_STRIDES = (16, 20, 24, 32, 40, 48, 60, 64, 80, 96, 120, 128, 160)
MAX_PAD = 0.10  # padding allowed when choosing the total stride, as a fraction of the frame area


@dataclass(frozen=True)
class NervConfig:
    kind: str  # "nerv" or "hnerv"
    height: int  # padded frame size
    width: int
    strides: tuple[int, ...]
    channels: tuple[int, ...]  # input width of each block, then the last block's output width
    embed_dim: int = 16  # HNeRV embedding channels (NeRV: positional-encoding frequencies)

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
    embed_dim: int = 16,
    reduction: float = 1.2,
    min_width: int = 12,
) -> NervConfig:
    """The largest total stride that pads the frame by at most MAX_PAD (small grid = small embeddings),
    split into strides from STRIDE_CHOICES; channels shrink by ``reduction`` per block."""
    best = 16
    for s in TOTAL_STRIDES:
        h, w = -(-height // s) * s, -(-width // s) * s
        if h * w <= (1 + MAX_PAD) * height * width and s <= max(height, width):
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


class NervBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * stride * stride, 3, padding=1)
        self.shuffle = nn.PixelShuffle(stride)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


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
                nn.Linear(2 * cfg.embed_dim, 64), nn.GELU(), nn.Linear(64, c0 * h0 * w0)
            )
        self.blocks = nn.ModuleList(
            NervBlock(cfg.channels[i], cfg.channels[i + 1], s) for i, s in enumerate(cfg.strides)
        )
        self.head = nn.Conv2d(cfg.channels[-1], 3, 3, padding=1)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.cfg.kind == "hnerv":
            return self.stem(inputs)
        h0, w0 = self.cfg.grid
        return self.stem(positional_encoding(inputs, self.cfg.embed_dim)).view(
            -1, self.cfg.channels[0], h0, w0
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs: HNeRV embeddings [B, d, h0, w0] or NeRV frame times t [B]."""
        x = self.features(inputs)
        for block in self.blocks:
            x = block(x)
        return torch.sigmoid(self.head(x))


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
