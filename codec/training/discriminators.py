"""Discriminators for adversarial training of the RVQ audio codec (``mcodec train audio --adversarial``).

Two families, each a list of sub-discriminators that all return (logits, feature maps):
- EnCodec's multi-scale STFT discriminator (MS-STFTD): 2-D convolutions over the complex STFT (real and
  imaginary parts as two channels, time x frequency), kernel 3 x 9, time dilations 1, 2, 4, frequency
  stride 2, LeakyReLU 0.2, weight norm; one per window size, hop = window / 4.
- HiFi-GAN's multi-period discriminator (MPD): the waveform folded into [N / p, p] for p in 2, 3, 5, 7,
  11, then (5 x 1) convolutions of stride 3 along time, so each column sees every p-th sample.

Sized for a CPU: 8 channels in the STFT stacks (EnCodec: 32) and 8..64 in the period stacks (HiFi-GAN:
32..1024). ``Discriminators()`` has 3 STFT scales (EnCodec's own default 2048, 1024, 512; the paper
uses 5) and 5 periods: 19,038 + 172,610 = 191,648 parameters (HiFi-GAN's MPD alone is ~41 M).
Training only: never exported, never imported by coding.

Shapes: audio [B, 1, N] (any N >= 1); logits [B, 1, T', F'] per sub-discriminator; feature maps
[B, C, T', F'] with the same shapes for real and decoded audio of the same length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

STFT_WINDOWS = (2048, 1024, 512)
STFT_CHANNELS = 8
PERIODS = (2, 3, 5, 7, 11)
PERIOD_CHANNELS = (8, 16, 32, 64)
SLOPE = 0.2  # LeakyReLU slope of EnCodec and HiFi-GAN

Output = tuple[torch.Tensor, list[torch.Tensor]]  # logits, feature maps


class STFTDiscriminator(nn.Module):
    """One MS-STFTD scale: complex STFT of ``window`` samples (Hann, hop window / 4, zero-padded by half a
    window at both ends so any length has at least one frame), then 2-D convolutions."""

    def __init__(self, window: int, channels: int = STFT_CHANNELS, dilations: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        self.window, self.hop = window, window // 4
        self.register_buffer("hann", torch.hann_window(window), persistent=False)
        convs = [nn.Conv2d(2, channels, (3, 9), padding=(1, 4))]
        for d in dilations:  # dilated along time, strided along frequency
            convs.append(
                nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))
            )
        convs.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.convs = nn.ModuleList(weight_norm(c) for c in convs)
        self.post = weight_norm(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, audio: torch.Tensor) -> Output:
        """audio [B, 1, N] -> logits [B, 1, 1 + N // hop, F'] and feature maps."""
        spec = torch.stft(
            audio[:, 0],
            self.window,
            self.hop,
            window=self.hann,
            center=True,
            pad_mode="constant",
            normalized=True,
            return_complex=True,
        )  # [B, window / 2 + 1, frames]
        z = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)  # [B, 2, frames, bins]
        fmaps = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), SLOPE)
            fmaps.append(z)
        return self.post(z), fmaps


class PeriodDiscriminator(nn.Module):
    """One MPD period p: audio zero-padded to a multiple of p and folded into [B, 1, N / p, p]."""

    def __init__(self, period: int, channels: tuple[int, ...] = PERIOD_CHANNELS):
        super().__init__()
        self.period = period
        convs, cin = [], 1
        for c in channels:
            convs.append(nn.Conv2d(cin, c, (5, 1), stride=(3, 1), padding=(2, 0)))
            cin = c
        convs.append(nn.Conv2d(cin, cin, (5, 1), padding=(2, 0)))
        self.convs = nn.ModuleList(weight_norm(c) for c in convs)
        self.post = weight_norm(nn.Conv2d(cin, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> Output:
        """audio [B, 1, N] -> logits [B, 1, T', p] (T' = ceil(N / p) shrunk by 3 per strided layer)."""
        b, _, n = audio.shape
        z = F.pad(audio, (0, -n % self.period)).view(b, 1, -1, self.period)
        fmaps = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), SLOPE)
            fmaps.append(z)
        return self.post(z), fmaps


class Discriminators(nn.Module):
    """Every sub-discriminator: STFT scales first, then periods."""

    def __init__(
        self,
        windows: tuple[int, ...] = STFT_WINDOWS,
        periods: tuple[int, ...] = PERIODS,
        stft_channels: int = STFT_CHANNELS,
        period_channels: tuple[int, ...] = PERIOD_CHANNELS,
    ):
        super().__init__()
        self.subs = nn.ModuleList(
            [STFTDiscriminator(w, stft_channels) for w in windows]
            + [PeriodDiscriminator(p, period_channels) for p in periods]
        )

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """audio [B, 1, N] -> (logits of each sub-discriminator, feature maps of each)."""
        outs = [d(audio) for d in self.subs]
        return [logits for logits, _ in outs], [fmaps for _, fmaps in outs]
