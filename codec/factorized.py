"""The factorized-prior image codec (id ``factorized``): GainedFactorizedPrior + per-channel frozen tables.

Bitstream: one ``YLAT`` chunk, the latent symbols ``round(y - median_c)`` [M, ceil(H/16), ceil(W/16)]
coded channel by channel (entropy.encode_factorized). There is no entropy-parameter network, so the
determinism profile is ``tables``: decoding the symbols depends on integer tables only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mcodec.entropy import decode_factorized, encode_factorized

from .base import Codec, CodecError, CodecInfo, Payload
from .factorized_model import STRIDE, GainedFactorizedPrior
from .image_tensors import header_fields, synthesize, to_input
from .padding import latent_size
from .weights import MODELS_DIR, load_weights

ARCH = "gained-factorized-prior"
INFO = CodecInfo(
    "factorized",
    "image",
    (1, 8),
    4,
    "factorized-prior transform codec (Balle 2018), one gain-unit model for all qualities",
)
DEFAULT_WEIGHTS = MODELS_DIR / "factorized.safetensors"


class FactorizedCodec(Codec):
    info = INFO
    profile = "tables"

    def __init__(self, weights: Path | None = None):
        w = load_weights(weights or DEFAULT_WEIGHTS, ARCH)
        self.tables = w.tables("tables")
        meta = w.metadata
        self.model = GainedFactorizedPrior(int(meta["n"]), int(meta["m"]), int(meta["qualities"]))
        state = {k: v.float() for k, v in w.tensors.items()}
        try:
            self.model.load_state_dict(state, strict=False)
            missing = set(self.model.state_dict()) - set(state) - _CDF_BUFFERS
        except RuntimeError as e:
            raise CodecError(f"{w.path.name} does not fit the factorized model: {str(e)[:200]}") from None
        if missing:
            raise CodecError(f"{w.path.name} lacks tensors: {', '.join(sorted(missing)[:3])}")
        if self.tables.num_tables != self.model.m:
            raise CodecError(f"{w.path.name}: {self.tables.num_tables} tables for {self.model.m} channels")
        self.model.eval()
        self.model_id = meta.get("model_id", "factorized")
        self.weights_hash, self.tables_hash = w.sha256, self.tables.sha256()
        # medians per channel: symbols are coded around them (as compressai's EntropyBottleneck)
        self.medians = self.model.entropy_bottleneck.quantiles[:, 0, 1].detach().double()

    def encode(self, image: torch.Tensor, quality: float, device: str = "cpu", **options) -> Payload:
        """image: uint8 [C, H, W], C = 1 or 3."""
        c, h, w = image.shape
        x = to_input(image, STRIDE, self.info.id).to(device)
        model = self.model.to(device)
        with torch.no_grad():
            y = model.analysis(x, torch.tensor([float(quality)], device=device))[0]
        symbols = torch.round(y.cpu().double() - self.medians[:, None, None]).to(torch.int64)
        data = encode_factorized(symbols.numpy(), self.tables)
        params = {"width": w, "height": h, "channels": c, "quality": float(quality)}
        return Payload(params, [("YLAT", data)])

    def latent(self, payload: Payload) -> tuple[torch.Tensor, float]:
        """(y_hat float64 [M, h, w], quality): what entropy decoding gives, exactly on every machine."""
        h, w, _, quality = header_fields(payload.params, self.info.qualities)
        shape = (self.model.m, *latent_size(h, w, STRIDE))
        symbols = decode_factorized(payload.chunk("YLAT"), shape, self.tables)
        return torch.from_numpy(symbols).double() + self.medians[:, None, None], quality

    def decode(self, payload: Payload, device: str = "cpu", **options) -> torch.Tensor:
        y_hat, quality = self.latent(payload)
        return synthesize(self.model, y_hat, quality, payload.params, device)


_CDF_BUFFERS = {f"entropy_bottleneck.{b}" for b in ("_offset", "_quantized_cdf", "_cdf_length")}
