"""Codec registry: ids (the strings written into files) -> codec factories.

Codecs are built lazily (loading weights costs time), once per (id, weights file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import Codec, CodecError, CodecInfo

_FACTORIES: dict[str, tuple[CodecInfo, Callable[[Path | None], Codec]]] = {}
_DEFAULTS: dict[str, str] = {}
_CACHE: dict[tuple[str, str | None], Codec] = {}


def register(info: CodecInfo, factory: Callable[[Path | None], Codec], default: bool = False) -> None:
    _FACTORIES[info.id] = (info, factory)
    if default or info.media not in _DEFAULTS:
        _DEFAULTS[info.media] = info.id


def available() -> list[CodecInfo]:
    return [info for info, _ in _FACTORIES.values()]


def info(codec_id: str) -> CodecInfo:
    if codec_id not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise CodecError(f"unknown codec {codec_id!r} (known: {known})")
    return _FACTORIES[codec_id][0]


def has_codec_for(media: str) -> bool:
    return media in _DEFAULTS


def default_for(media: str) -> str:
    if media not in _DEFAULTS:
        raise CodecError(f"no codec for {media} yet")
    return _DEFAULTS[media]


def get(codec_id: str, weights: Path | None = None) -> Codec:
    """The codec with this id, with its default weights or the given weights file."""
    info(codec_id)
    key = (codec_id, None if weights is None else str(Path(weights).resolve()))
    if key not in _CACHE:
        _CACHE[key] = _FACTORIES[codec_id][1](weights)
    return _CACHE[key]
