"""Key pictures: a group's temporal median frame (a motion group's: its median canvas), coded by the image
codec, that the network's output is drawn over (FORMAT.md 6.4.2).

A static camera's background, or any content that stays put, then costs one still picture per group
instead of network weights relearning it: the decoder adds the picture's logit to its head before the
sigmoid, so a network whose head outputs zero reproduces the key picture and the fit codes only what
differs from it (the moving parts, the picture's coding error). The picture travels as a complete mcodec
image file (its own model id, hashes and checks) in a `VKEY` chunk before its group's chunk. A pan or a
zoom likewise costs one picture of its canvas (the scene the frames are sampled from, motion.py), the
network coding what the still scene does not hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mcodec.codec.base import CodecError

from .motion import Motion, median_canvas

KEY_CODEC = "meanscale"  # the image codec of the key pictures mcodec writes (a reader takes any image codec)
KEY_STEP = 3  # key picture quality = the video quality + KEY_STEP, at most the image codec's top quality
# The image encoder's preset: medium refines each key's latents for its own rate-distortion loss (20 steps,
# ~3 s for a 360 x 264 picture on one core, against minutes of fitting). megamind's first 48 frames drawn
# from keys alone (FORMAT.md 6.4.5), q1-q4: BD-rate -3.0% against fast.
KEY_PRESET = "medium"


def key_quality(quality: float, top: float, step: float = KEY_STEP) -> float:
    """The image quality of a group's key picture at this video quality: higher qualities lean on a
    sharper picture, and one picture is cheap against a group's network (tree.avi, 24 frames: image
    quality 6 gave +0.4 dB over 4 for +3% bytes). A higher step does not pay where the picture is
    texture: on the held-out object clip (a patch crossing a photo of rocks and foliage, 96 frames, q2) the
    key at image quality 8 instead of 5 gave 0.0788 bpp / 27.15 dB against 0.0726 / 26.83, farther from
    x264 (-4.16 dB against -3.95). The picture itself is the limit there: meanscale-v8 draws that median
    frame at 26.8 dB at q5 and 27.4 at q8, and no finer quantization takes it past 27.5 dB
    (bench/image_ceiling.py), where x264 reaches 30.8 dB over the whole clip at the same rate."""
    return min(top, quality + step)


def median_picture(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [3, H, W], each sample the median over the frames (the lower middle
    one for an even count): the still background of a static camera, without what crosses it."""
    return frames.median(dim=0).values


def canvas_picture(frames: torch.Tensor, motion: Motion) -> torch.Tensor:
    """uint8 [T, 3, H, W] of a motion group -> uint8 [3, CH, CW]: its canvas (motion.median_canvas)."""
    return median_canvas(frames.float(), motion).round().clamp(0, 255).to(torch.uint8)


def encode_key(picture: torch.Tensor, quality: float, step: float = KEY_STEP) -> bytes:
    """A key picture (uint8 [3, H, W]) -> the bytes of an mcodec image file of it, at image quality
    ``quality + step`` (key_quality), encoder preset KEY_PRESET."""
    from mcodec.codec import registry
    from mcodec.compress import encode_bytes  # the api imports the codecs: not at module level

    top = registry.info(KEY_CODEC).qualities[1]
    return encode_bytes(picture, "image", KEY_CODEC, key_quality(quality, top, step), preset=KEY_PRESET)


def decode_key(data: bytes, height: int, width: int) -> torch.Tensor:
    """A VKEY payload -> its picture, uint8 [3, height, width]; a one-line CodecError (or the container's
    error) unless it is an image file of one RGB picture of that size (the clip's; a motion group's: its
    canvas), read with every check of an image file (the picture's size is checked before it is decoded)."""
    from mcodec.compress import open_stream
    from mcodec.entropy import ContainerError, read_container

    try:
        container = read_container(data)
    except ContainerError as e:
        raise CodecError(f"video key picture: {e}") from None
    if len(container.streams) != 1:
        raise CodecError("video key picture: a file of several streams")
    codec, payload = open_stream(container.streams[0])
    if codec.info.media != "image":
        raise CodecError(f"video key picture: the file holds {codec.info.media}, not an image")
    p = payload.params
    if (p["width"], p["height"], p["channels"]) != (width, height, 3):
        raise CodecError(
            f"video key picture: {p['width']}x{p['height']}x{p['channels']} samples, not the "
            f"{width}x{height} RGB its group is drawn over"
        )
    picture = codec.decode(payload)
    if picture.shape != (3, height, width) or picture.dtype != torch.uint8:
        raise CodecError(f"video key picture: not an RGB picture of {width}x{height}")
    return picture


def base_logits(picture: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A key picture (uint8 [3, h, w], or a batch [B, 3, h, w]) -> the float32 logits [1 or B, 3, height,
    width] added to the decoder's head: ln(p / (1 - p)) with p = (v + 1/2) / 256 (never 0 or 1), the
    picture's last row and column repeated to the padded size."""
    p = (picture.float() + 0.5) / 256
    logits = torch.log(p) - torch.log1p(-p)
    logits = logits[None] if logits.dim() == 3 else logits
    h, w = picture.shape[-2:]
    return F.pad(logits, (0, width - w, 0, height - h), mode="replicate")
