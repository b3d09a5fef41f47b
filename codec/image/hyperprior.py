"""Hyperprior image codecs: ``hyperprior`` (scale) and ``meanscale`` (mean-scale); compressai zoo
checkpoints go through the same codec (``zoo``).

Bitstream: ``ZLAT``, the hyper-latent symbols round(z - median) [N, H/64, W/64] under per-channel tables
(as the factorized codec codes y); ``YLAT``, the residuals round(y - mu) [M, H/16, W/16] under Gaussian
tables chosen by scale index. Determinism profile ``cpu-f64``: the entropy-parameter path (z symbols ->
h_s -> scale indexes and means) runs in float64 on the CPU with thread-independent kernels on both
sides, whatever device runs the transforms. The CRC-32 of the scale-index map is stored (``ep_crc32``),
so a decoder whose entropy parameters differ from the encoder's says so instead of writing garbage.
"""

from __future__ import annotations

import copy
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from mcodec.codec.base import Codec, CodecError, CodecInfo, Payload
from mcodec.codec.determinism import thread_independent
from mcodec.codec.model_file import default_weights, load_state, load_weights
from mcodec.codec.schema import Int
from mcodec.entropy import (
    TableSet,
    decode_factorized,
    decode_indexed,
    encode_factorized,
    encode_indexed,
    scale_indexes,
)
from mcodec.entropy.gaussian import SCALE_LEVELS

from . import lowfreq, tiling, wiener
from .conv_gemm import compile_transform
from .hyperprior_model import ARCH, STRIDE, GainedHyperprior
from .lambdas import LAMBDAS, lambdas_of, quality_lambda
from .latent_refine import refine_latents, total_steps
from .model_meta import derived_buffers, sizes, synthesis_width
from .tensors import check_chunks, image_schema, synthesize, to_input

VARIANTS = {
    "hyperprior": "scale-hyperprior",
    "meanscale": "mean-scale-hyperprior",
    "checkerboard": "mean-scale-checkerboard",
}
# encoder presets: gradient steps of latent refinement (latent_refine) per image; the decoder never knows
REFINE_STEPS = {"fast": 0, "medium": 20, "slow": 50}
INFOS = {
    "hyperprior": CodecInfo(
        "hyperprior",
        "image",
        (1, 8),
        4,
        "scale-hyperprior transform codec (Balle 2018), one gain-unit model for all qualities",
        presets=tuple(REFINE_STEPS),
        default_preset="fast",
    ),
    "meanscale": CodecInfo(
        "meanscale",
        "image",
        (1, 8),
        4,
        "mean-scale hyperprior codec (Minnen 2018), one gain-unit model for all qualities",
        presets=tuple(REFINE_STEPS),
        default_preset="fast",
    ),
    "checkerboard": CodecInfo(
        "checkerboard",
        "image",
        (1, 8),
        4,
        "mean-scale hyperprior with a checkerboard context (He 2021), needs --weights FILE (no model "
        "shipped: train image --codec checkerboard --init a meanscale file)",
        presets=tuple(REFINE_STEPS),
        default_preset="fast",
    ),
}


class HyperpriorCodec(Codec):
    profile = "cpu-f64"
    chunk_types = ("ZLAT", "YLAT")
    # an encoder choice (see quantize); a dead zone measured worse (bench/README.md, finished probes)
    rounding_offset = 0.5
    # the encoder adds a low-frequency correction (lowfreq, chunk LFCR) where it lowers the quality's loss;
    # off for codecs whose lambdas are not known (compressai checkpoints) and for A/B measurements
    low_frequency = True
    # and a restoration filter (wiener, chunk WFLT) fitted to its picture, on the same terms
    restoration_filter = True

    def __init__(
        self,
        info: CodecInfo,
        model: GainedHyperprior,
        ztables: TableSet,
        ytables: TableSet,
        model_id: str,
        weights_hash: bytes,
        lambdas: tuple[float, ...] = LAMBDAS,
    ):
        """``lambdas``: the RD trade-off each quality was trained for, which latent refinement optimizes."""
        self.info, self.model, self.model_id = info, model.eval(), model_id
        self.schema = image_schema(info, ep_crc32=Int(0, 0xFFFFFFFF))
        self.lambdas = lambdas
        self.ztables, self.ytables, self.weights_hash = ztables, ytables, weights_hash
        self.tables_hash = _combined_hash(ztables, ytables)
        if ztables.num_tables != model.n:
            raise CodecError(f"{ztables.num_tables} z tables for {model.n} channels")
        if ytables.num_tables != SCALE_LEVELS:  # one per entry of the frozen scale table (FORMAT.md 6.2)
            raise CodecError(f"{ytables.num_tables} y tables for the {SCALE_LEVELS}-entry scale table")
        self.z_medians = model.entropy_bottleneck.quantiles[:, 0, 1].detach().double()
        # the entropy-parameter path: float64, CPU, never moved to another device
        self.h_s64 = copy.deepcopy(model.net.h_s).double().cpu().eval()

    def _hyper_parameters(self, z_symbols: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """z symbols [N, h, w] int64 -> (scales, means), float64 [M, 4h, 4w] (means 0: scale hyperprior)."""
        z_hat = (z_symbols.double() + self.z_medians[:, None, None])[None]
        with thread_independent("cpu"):
            params = compile_transform(self.h_s64)(z_hat)[0]
        if self.model.mean_scale:
            scales, means = params.chunk(2, 0)
            return scales.numpy(), means.numpy()
        return params.numpy(), np.zeros(params.shape)

    def _code_y(self, y: np.ndarray, scales: np.ndarray, means: np.ndarray) -> tuple[list, int, np.ndarray]:
        """y float64 [M, h, w] -> (its chunks, the CRC-32 of its scale indexes, y_hat as _decode_y returns
        it)."""
        indexes = scale_indexes(scales.reshape(-1))
        residual = quantize(y - means, self.rounding_offset)
        chunks = [("YLAT", encode_indexed(residual, indexes, self.ytables))]
        return chunks, indexes_crc(indexes), residual + means

    def _decode_y(self, payload: Payload, scales: np.ndarray, means: np.ndarray) -> np.ndarray:
        """The chunks of _code_y -> y_hat float64 [M, h, w], the scale indexes checked by ep_crc32."""
        indexes = scale_indexes(scales.reshape(-1))
        check_parameters(indexes_crc(indexes), payload.params["ep_crc32"])
        return decode_indexed(payload.chunk("YLAT"), indexes, self.ytables).reshape(means.shape) + means

    def encode(
        self,
        image: torch.Tensor,
        quality: float,
        device: str = "cpu",
        preset: str = "fast",
        progress: bool = False,
        low_frequency: bool | None = None,
        restoration_filter: bool | None = None,
        **options,
    ) -> Payload:
        """``preset``: how many latent-refinement steps the encoder spends (REFINE_STEPS); fast: none.
        ``progress``: a bar on stderr over those steps. ``low_frequency``: whether the encoder may add the
        correction chunk (default: the codec's ``low_frequency``, at the fast preset only, for pictures of at
        most lowfreq.FAST_MAX_PIXELS). ``restoration_filter``: the same for the filter chunk (default: the
        codec's ``restoration_filter``, at every preset, for pictures of at most that size)."""
        self.check_preset(preset)
        c, h, w = image.shape
        x = to_input(image, STRIDE, self.info.id).to(device)
        model = self.model.to(device)
        with torch.no_grad():
            y = tiling.analysis(model, x, torch.tensor([float(quality)], device=device))
            z = model.hyper_analysis(y)
        if REFINE_STEPS[preset]:
            y = _refine(model, x, y, z, float(quality), REFINE_STEPS[preset], h, w, progress, self.lambdas)
        z_symbols = torch.round(z[0].cpu().double() - self.z_medians[:, None, None]).to(torch.int64)
        y_chunks, crc, y_hat = self._code_y(y[0].cpu().double().numpy(), *self._hyper_parameters(z_symbols))
        params = {
            "width": w,
            "height": h,
            "channels": c,
            "quality": float(quality),
            "ep_crc32": crc,
        }
        payload = Payload(params, [("ZLAT", encode_factorized(z_symbols.numpy(), self.ztables)), *y_chunks])
        small = h * w <= lowfreq.FAST_MAX_PIXELS  # fitting either costs the encoder a synthesis
        if low_frequency is None:
            low_frequency = self.low_frequency and small and preset == "fast"
        if restoration_filter is None:
            restoration_filter = self.restoration_filter and small
        if low_frequency or restoration_filter:
            # the picture a decoder makes of this file (its y_hat is the decoder's, bit for bit), so the
            # correction and the filter fit exactly what they will be applied to
            picture = synthesize(self.model, torch.from_numpy(y_hat), float(quality), params, "cpu")
            lmbda = quality_lambda(float(quality), self.lambdas)
            correction = lowfreq.choose(image, picture, lmbda) if low_frequency else None
            if correction is not None:
                payload.chunks.append((lowfreq.CHUNK, correction))
                picture = _restore(picture, lowfreq.CHUNK, correction, params)  # what the filter applies to
            restoration = wiener.choose(image, picture, lmbda) if restoration_filter else None
            if restoration is not None:
                payload.chunks.append((wiener.CHUNK, restoration))
        return payload

    def latent(self, payload: Payload) -> tuple[torch.Tensor, float]:
        """(y_hat float64 [M, h, w], quality): entropy decoding on the cpu-f64 path, checked by ep_crc32."""
        p = payload.params  # checked by the schema
        check_chunks(payload, self.chunk_types, optional=RESTORATION_CHUNKS)
        zh, zw = -(-p["height"] // STRIDE), -(-p["width"] // STRIDE)
        z_symbols = decode_factorized(payload.chunk("ZLAT"), (self.model.n, zh, zw), self.ztables)
        y_hat = self._decode_y(payload, *self._hyper_parameters(torch.from_numpy(z_symbols).to(torch.int64)))
        return torch.from_numpy(y_hat), float(p["quality"])

    def decode(self, payload: Payload, device: str = "cpu", **options) -> torch.Tensor:
        y_hat, quality = self.latent(payload)
        picture = synthesize(self.model, y_hat, quality, payload.params, device)
        present = {t for t, _ in payload.chunks}
        for chunk_type in RESTORATION_CHUNKS:
            if chunk_type in present:
                picture = _restore(picture, chunk_type, payload.chunk(chunk_type), payload.params)
        return picture


RESTORATION_CHUNKS = (lowfreq.CHUNK, wiener.CHUNK)  # optional, applied in this order


def _restore(picture: torch.Tensor, chunk_type: str, data: bytes, params: dict) -> torch.Tensor:
    """picture uint8 [C, H, W] after one restoration chunk (FORMAT.md 6.2.2, 6.2.3)."""
    c, h, w = params["channels"], params["height"], params["width"]
    if chunk_type == lowfreq.CHUNK:
        grid, _ = lowfreq.unpack(data, c, h, w)
        return lowfreq.apply(picture, grid)
    return wiener.apply(picture, *wiener.unpack(data, c))


def _refine(
    model, x, y, z, quality: float, steps: int, h: int, w: int, progress: bool, lambdas: tuple[float, ...]
) -> torch.Tensor:
    import sys

    from tqdm import tqdm

    with tqdm(
        total=total_steps(y.shape, steps), disable=not progress, file=sys.stderr, desc="refine", unit="step"
    ) as bar:

        def tick(step: int, loss: float) -> None:
            bar.set_postfix_str(f"loss {loss:.4f}")
            bar.update(step > 0)

        return refine_latents(model, x, y, z, quality, steps, h, w, progress=tick, lambdas=lambdas)


def indexes_crc(*indexes: np.ndarray) -> int:
    """The CRC-32 of scale-index arrays (one byte each) in turn: what ``ep_crc32`` stores."""
    crc = 0
    for part in indexes:
        crc = zlib.crc32(part.tobytes(), crc)
    return crc


def check_parameters(crc: int, stored: int) -> None:
    if crc != stored:
        raise CodecError(
            "entropy parameters differ from the encoder's (determinism profile cpu-f64): "
            "the file is damaged or was made by a different model"
        )


def quantize(r: np.ndarray, offset: float = 0.5) -> np.ndarray:
    """Residuals -> integers: |r| + ``offset``, rounded down (0.5: plain rounding). An offset below 0.5 is
    a dead zone, as video encoders use: more residuals go to the mean, fewer bits, more distortion. Only
    the encoder chooses; a decoder reads the integers either way."""
    if offset == 0.5:
        return np.rint(r).astype(np.int64)
    return (np.sign(r) * np.floor(np.abs(r) + offset)).astype(np.int64)


def _combined_hash(ztables: TableSet, ytables: TableSet) -> bytes:
    return hashlib.sha256(ztables.sha256() + ytables.sha256()).digest()


def load_ours(codec_id: str, weights: Path | None = None) -> HyperpriorCodec:
    """Our gained models: fp16 safetensors with frozen z and y tables (training.export)."""
    w = load_weights(default_weights(codec_id, weights, f"mcodec train image DIR --codec {codec_id}"), ARCH)
    if w.metadata.get("variant") != VARIANTS[codec_id]:
        raise CodecError(f"{w.path} holds a {w.metadata.get('variant')!r} model, not {VARIANTS[codec_id]!r}")
    ztables, ytables = w.tables("ztables"), w.tables("ytables")
    n, m, qualities = sizes(w)
    model = GainedHyperprior(VARIANTS[codec_id], n, m, qualities, ns=synthesis_width(w, n))
    load_state(model, w, derived_buffers(model))
    lambdas = lambdas_of(w.metadata, model.qualities)
    if model.context is not None:
        from .checkerboard_codec import CheckerboardCodec as codec_class
    else:
        codec_class = HyperpriorCodec
    return codec_class(INFOS[codec_id], model, ztables, ytables, w.model_id(codec_id), w.sha256, lambdas)
