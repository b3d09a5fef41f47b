"""The factorized-prior image codec (id ``factorized``): GainedFactorizedPrior + per-channel frozen tables.

Bitstream: one ``YLAT`` chunk, the latent symbols ``round(y - median_c)`` [M, ceil(H/16), ceil(W/16)]
coded channel by channel (entropy.encode_factorized). There is no entropy-parameter network, so the
determinism profile is ``tables``: decoding the symbols depends on integer tables only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mcodec.codec.base import Codec, CodecError, CodecInfo, Payload
from mcodec.codec.model_file import default_weights, load_state, load_weights
from mcodec.entropy import decode_factorized, encode_factorized

from . import tiling
from .factorized_model import ARCH, STRIDE, GainedFactorizedPrior
from .model_meta import derived_buffers, sizes
from .padding import latent_size
from .tensors import check_chunks, image_schema, synthesize, to_input

INFO = CodecInfo(
    "factorized",
    "image",
    (1, 8),
    4,
    "factorized-prior transform codec (Balle 2018), one gain-unit model for all qualities",
)


class FactorizedCodec(Codec):
    info = INFO
    profile = "tables"
    schema = image_schema(INFO)

    def __init__(self, weights: Path | None = None):
        w = load_weights(
            default_weights("factorized", weights, "mcodec train image DIR --codec factorized"), ARCH
        )
        self.tables = w.tables("tables")
        self.model = GainedFactorizedPrior(*sizes(w))
        load_state(self.model, w, derived_buffers(self.model))
        if self.tables.num_tables != self.model.m:
            raise CodecError(f"{w.path.name}: {self.tables.num_tables} tables for {self.model.m} channels")
        self.model.eval()
        self.model_id = w.model_id("factorized")
        self.weights_hash, self.tables_hash = w.sha256, self.tables.sha256()
        # medians per channel: symbols are coded around them (as compressai's EntropyBottleneck)
        self.medians = self.model.entropy_bottleneck.quantiles[:, 0, 1].detach().double()

    def encode(self, image: torch.Tensor, quality: float, device: str = "cpu", **options) -> Payload:
        """image: uint8 [C, H, W], C = 1 or 3."""
        c, h, w = image.shape
        x = to_input(image, STRIDE, self.info.id).to(device)
        model = self.model.to(device)
        with torch.no_grad():
            y = tiling.analysis(model, x, torch.tensor([float(quality)], device=device))[0]
        symbols = torch.round(y.cpu().double() - self.medians[:, None, None]).to(torch.int64)
        data = encode_factorized(symbols.numpy(), self.tables)
        params = {"width": w, "height": h, "channels": c, "quality": float(quality)}
        return Payload(params, [("YLAT", data)])

    def latent(self, payload: Payload) -> tuple[torch.Tensor, float]:
        """(y_hat float64 [M, h, w], quality): what entropy decoding gives, exactly on every machine."""
        p = payload.params  # checked by the schema
        check_chunks(payload, ("YLAT",))
        shape = (self.model.m, *latent_size(p["height"], p["width"], STRIDE))
        symbols = decode_factorized(payload.chunk("YLAT"), shape, self.tables)
        return torch.from_numpy(symbols).double() + self.medians[:, None, None], float(p["quality"])

    def decode(self, payload: Payload, device: str = "cpu", **options) -> torch.Tensor:
        y_hat, quality = self.latent(payload)
        return synthesize(self.model, y_hat, quality, payload.params, device)
