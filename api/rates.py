"""Rates of coded media, computed in one place: bits per pixel for images and video, kbit/s for audio.

Used by ``mcodec encode``'s summary, ``mcodec eval``'s records and ``mcodec demo``'s table, so the three
agree to the last bit.
"""

from __future__ import annotations


def bits_per_pixel(nbytes: int, pixels: int) -> float:
    """Bits per pixel of ``nbytes`` over ``pixels`` (per frame times frames for video)."""
    return 8 * nbytes / pixels


def kbit_per_second(nbytes: int, seconds: float) -> float:
    """kbit/s (1000 bits) of ``nbytes`` over ``seconds``."""
    return 8 * nbytes / 1000 / seconds


def coded_rate(nbytes: int, media: str, params: dict) -> tuple[float, str]:
    """(value, unit) of a coded file from its media kind and header params: "bpp" over width x height
    (images) or frames x width x height (video); "kbit/s" over samples / sample_rate seconds (audio)."""
    if media == "image":
        return bits_per_pixel(nbytes, params["width"] * params["height"]), "bpp"
    if media == "video":
        return bits_per_pixel(nbytes, params["width"] * params["height"] * params["frames"]), "bpp"
    if media == "audio":
        return kbit_per_second(nbytes, params["samples"] / params["sample_rate"]), "kbit/s"
    raise ValueError(f"no rate for media {media!r}")
