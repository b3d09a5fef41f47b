"""What the image codecs share around their networks: uint8 images to transform inputs and back, and
the schema of an image file's header fields."""

from __future__ import annotations

import torch

from mcodec.codec.base import CodecError, CodecInfo, Payload
from mcodec.codec.determinism import thread_independent
from mcodec.codec.schema import Field, Number, OneOf, Schema, media_fields

from . import tiling
from .conv_gemm import compile_transform
from .padding import pad_to_multiple

LUMA = (0.299, 0.587, 0.114)  # BT.601, to return grayscale sources as grayscale


def to_input(image: torch.Tensor, stride: int, codec_id: str) -> torch.Tensor:
    """uint8 [C, H, W] (C = 1 or 3) -> float [1, 3, H', W'] in [0, 1], padded to the stride."""
    c, h, w = image.shape
    if c not in (1, 3):
        raise CodecError(f"{codec_id} codes 1- or 3-channel images, got {c} channels")
    return pad_to_multiple(image.expand(3, h, w)[None].float().div(255), stride)


def image_schema(info: CodecInfo, **extra: Field) -> Schema:
    """The HEAD params an image decoder reads: the size, a source of 1 or 3 channels, the quality in the
    codec's range, and the codec's ``extra`` fields."""
    lo, hi = info.qualities
    fields = {**media_fields("image"), "channels": OneOf((1, 3)), "quality": Number(lo, hi), **extra}
    return Schema(f"{info.id} params", fields)


def check_chunks(payload: Payload, types: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """The file holds exactly these chunks, one of each, and at most one of each ``optional`` one (an
    unknown critical chunk is refused)."""
    found = sorted(t for t, _ in payload.chunks)
    if sorted(t for t in found if t not in optional or found.count(t) > 1) != sorted(types):
        expected = ", ".join(types) + "".join(f" (and {t})" for t in optional)
        raise CodecError(f"expected chunks {expected}; found {', '.join(found) or 'none'}")


def to_image(x_hat: torch.Tensor, height: int, width: int, channels: int) -> torch.Tensor:
    """Synthesis output [1, 3, H', W'] -> uint8 [channels, height, width] (cropped, clamped, rounded)."""
    x = x_hat[0, :, :height, :width].clamp(0, 1).cpu()
    if channels == 1:
        x = sum(wt * x[i] for i, wt in enumerate(LUMA))[None]
    return x.mul_(255).round_().to(torch.uint8)  # in place: a 1024-pixel tile's copies are 12 MB each


def synthesize(model, y_hat: torch.Tensor, quality: float, params: dict, device: str) -> torch.Tensor:
    """A decoded latent [M, h, w] (a codec's ``latent``) -> the uint8 image its checked ``params`` describe:
    the float32 synthesis on ``device`` (on the CPU through ``conv_gemm``), thread-count independent,
    in tiles of ``tiling.TILE`` latents (an image of one tile is synthesized whole), each tile turned into
    8 bits as it is made."""
    model, channels = model.to(device), params["channels"]
    q = torch.tensor([quality], device=device)
    transform = None
    if str(device).startswith("cpu"):
        run, inv_gain = compile_transform(tiling.synthesis_layers(model)), model.gains(q)[1].detach()
        transform = lambda t: run(t * inv_gain)  # noqa: E731  model.synthesis, as GEMMs
    with thread_independent(device):
        image = tiling.synthesis(
            model,
            y_hat.float()[None].to(device),
            q,
            post=lambda x: to_image(x, x.shape[-2], x.shape[-1], channels),
            transform=transform,
        )
    return image[:, : params["height"], : params["width"]].contiguous()
