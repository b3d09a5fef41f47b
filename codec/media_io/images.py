"""Still images through Pillow: uint8 tensors [C, H, W], C = 1 (grayscale) or 3 (RGB)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mcodec.codec.atomic_write import atomic_output

from .errors import MediaError
from .formats import output_format
from .probe import check_readable

MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS = 16384, 1 << 26


def read_image(path: Path) -> torch.Tensor:
    """uint8 [C, H, W], C = 1 or 3. Palette and CMYK become RGB, 16-bit samples are scaled to 8 bits,
    an alpha channel is dropped when fully opaque and refused otherwise."""
    path = Path(path)
    check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if not (1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE and w * h <= MAX_IMAGE_PIXELS):
                raise MediaError(
                    f"{path}: image of {w}x{h} pixels is outside the supported size "
                    f"(at most {MAX_IMAGE_SIDE} per side, {MAX_IMAGE_PIXELS} pixels)"
                )
            arr = _to_8bit_array(im, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(f"{path}: image is outside the supported size ({e})") from None
    except UnidentifiedImageError as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None
    except OSError as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).contiguous()


def _to_8bit_array(im: Image.Image, path: Path) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.rint(np.asarray(im, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
    if im.mode == "F":
        return np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"))
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("LA" if im.mode == "LA" else "RGBA"))
        if (rgba[..., -1] != 255).any():
            raise MediaError(f"{path}: images with transparency are not supported (alpha channel)")
        return rgba[..., 0] if im.mode == "LA" else rgba[..., :3]
    return np.asarray(im.convert("RGB"))


# PNG at zlib level 3: a 13-megapixel decode wrote its PNG in 3.3 s instead of 9.1 (Pillow's default 6) for
# 13% more bytes; the PNG is the decoder's output, not the coded file.
SAVE_OPTIONS = {"PNG": {"compress_level": 3}, "WEBP": {"lossless": True}}


def write_image(path: Path, image: torch.Tensor, force: bool = False) -> None:
    """image: uint8 [C, H, W], C = 1 or 3; format from the extension (png, bmp, tiff, ppm, lossless webp)."""
    path = Path(path)
    fmt = output_format(path, "image")
    arr = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    with atomic_output(path, force) as tmp:
        pil.save(tmp, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
