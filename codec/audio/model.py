"""A small SEANet-style convolutional audio autoencoder around residual vector quantization.

Non-causal: mcodec codes files, not live streams, and seeing both sides of each sample buys quality at
no latency cost that matters here. Strides 2, 4, 5, 8 turn 24 kHz audio into 75 latent frames per
second; each RVQ stage (1024 codes, 10 bits) then costs 0.75 kbit/s before entropy coding, so 2, 4, 8
and 16 stages give 1.5, 3, 6 and 12 kbit/s. No LSTM (unlike EnCodec): plain convolutions keep CPU
encoding and decoding well above real time.

Shapes: audio [B, 1, N] with N a multiple of ``HOP``; latents [B, D, N / HOP]; codes [n_q, B, N / HOP].
"""

from __future__ import annotations

import torch
from torch import nn

from .rvq import ResidualVQ

ARCH = "rvq-audio"  # model-file metadata 'arch'
SAMPLE_RATE = 24000
STRIDES = (2, 4, 5, 8)
HOP = 320  # product of STRIDES
FRAME_RATE = SAMPLE_RATE // HOP  # 75 latent frames per second
BITS_PER_CODE = 10  # codebook size 1024
# the decoder's context units' dilations, in turn (27 would mostly see the padding of a 1 s training crop)
CONTEXT_DILATIONS = (1, 3, 9)
MAX_CONTEXT = 16  # context units a model file may ask for


class ResidualUnit(nn.Module):
    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ELU(),
            nn.Conv1d(ch, ch // 2, 3, dilation=dilation, padding=dilation),
            nn.ELU(),
            nn.Conv1d(ch // 2, ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Encoder(nn.Module):
    def __init__(self, base: int, dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, base, 7, padding=3)]
        ch = base
        for s in STRIDES:
            layers += [
                ResidualUnit(ch, 1),
                ResidualUnit(ch, 3),
                nn.ELU(),
                nn.Conv1d(ch, 2 * ch, 2 * s, stride=s, padding=(s + 1) // 2),
            ]
            ch *= 2
        layers += [nn.ELU(), nn.Conv1d(ch, dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[..., : x.shape[-1] // HOP]


class Upsample(nn.Module):
    """Transposed convolution by ``stride`` cropped to exactly ``stride`` times the input length."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return self.conv(x)[..., s // 2 : s // 2 + x.shape[-1] * s]


class Decoder(nn.Module):
    """``context``: residual units at the latent frame rate after the first convolution, dilations 1, 3,
    9 in turn (three units see +-13 frames, +-0.17 s). Without them the decoder sees about +-3 frames
    (+-40 ms) of the quantized latent; with them it can use the phonetic context to undo quantization
    error, at the frame rate, where a unit of 2^4 x base channels costs ~3% of the decoder's arithmetic.
    Each starts as the identity (its last convolution at zero), so units added to a trained model keep
    its function."""

    def __init__(self, base: int, dim: int, context: int = 0):
        super().__init__()
        ch = top = base * 2 ** len(STRIDES)
        layers: list[nn.Module] = [nn.Conv1d(dim, ch, 7, padding=3)]
        for s in reversed(STRIDES):
            layers += [nn.ELU(), Upsample(ch, ch // 2, s), ResidualUnit(ch // 2, 1), ResidualUnit(ch // 2, 3)]
            ch //= 2
        layers += [nn.ELU(), nn.Conv1d(ch, 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)
        dilations = [CONTEXT_DILATIONS[i % len(CONTEXT_DILATIONS)] for i in range(context)]
        units = [ResidualUnit(top, d) for d in dilations]
        for unit in units:
            nn.init.zeros_(unit.block[-1].weight)
            nn.init.zeros_(unit.block[-1].bias)
        self.context = nn.Sequential(*units)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.context(self.net[0](z))
        return self.net[1:](x)


class RVQAutoencoder(nn.Module):
    def __init__(
        self, base: int = 16, dim: int = 128, n_q: int = 16, codebook_size: int = 1024, context: int = 0
    ):
        super().__init__()
        self.base, self.dim, self.context = base, dim, context
        self.encoder = Encoder(base, dim)
        self.quantizer = ResidualVQ(dim, n_q, codebook_size)
        self.decoder = Decoder(base, dim, context)

    @property
    def n_q(self) -> int:
        return self.quantizer.n_q

    def forward(self, audio: torch.Tensor, n_q: int, frozen_beam: int | None = None) -> dict:
        """Training pass: audio [B, 1, N] -> reconstruction, codes, commitment loss. With ``frozen_beam``
        the encoder and codebooks are held (no gradient, no EMA update) and the codes are the encoder's
        search with that beam, as the codec will code them: only the decoder learns."""
        if frozen_beam is not None:
            codes = self.encode(audio, n_q, frozen_beam)
            zq = self.quantizer.decode(codes)
            return {"audio_hat": self.decoder(zq), "codes": codes, "commit": zq.new_zeros(())}
        z = self.encoder(audio)
        zq, codes, commit = self.quantizer(z, n_q)
        return {"audio_hat": self.decoder(zq), "codes": codes, "commit": commit}

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, n_q: int, beam: int = 1) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(audio), n_q, beam)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))


def codebooks_for(kbps: float) -> int:
    """RVQ stages for a nominal bitrate (before entropy coding): 0.75 kbit/s per stage."""
    return int(round(kbps * 1000 / (FRAME_RATE * BITS_PER_CODE)))


def sizes(w) -> tuple[int, int, int, int, int]:
    """(base, dim, n_q, codebook size, decoder context units) from a model file's metadata
    (``model_file.Weights``), checked before a network is built from them."""
    return (
        w.int_meta("base", 1, 256),
        w.int_meta("dim", 1, 1024),
        w.int_meta("n_q", 1, 64),
        w.int_meta("codebook_size", 2, 1 << 16, default=1024),
        w.int_meta("context", 0, MAX_CONTEXT, default=0),
    )
