"""Codec registry: ids (the strings written into files) -> codec factories.

The shipped codecs (``builtin``) are registered on first use; ``register`` adds others. Codecs are built
lazily (loading weights costs time), once per (id, weights file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from .base import Codec, CodecError, CodecInfo

_FACTORIES: dict[str, tuple[CodecInfo, Callable[[Path | None], Codec]]] = {}
_DEFAULTS: dict[str, str] = {}
_CACHE: dict[tuple[str, str | None], Codec] = {}
_BUILDING = threading.RLock()  # a video decoder's threads open the image codec of its keys at once
_BUILTINS_LOADED = False


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from .builtin import DEFAULTS, builtin_codecs

    for info, factory in builtin_codecs():
        _FACTORIES.setdefault(info.id, (info, factory))
    for media, codec_id in DEFAULTS.items():
        _DEFAULTS.setdefault(media, codec_id)


def register(info: CodecInfo, factory: Callable[[Path | None], Codec], default: bool = False) -> None:
    """Add a codec (or replace one with the same id); ``default``: it becomes its medium's default."""
    _load_builtins()
    _FACTORIES[info.id] = (info, factory)
    _CACHE.pop((info.id, None), None)
    if default or info.media not in _DEFAULTS:
        _DEFAULTS[info.media] = info.id


def available() -> list[CodecInfo]:
    _load_builtins()
    return [info for info, _ in _FACTORIES.values()]


def info(codec_id: str) -> CodecInfo:
    _load_builtins()
    if codec_id not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise CodecError(f"unknown codec {codec_id!r} (known: {known})")
    return _FACTORIES[codec_id][0]


def has_codec_for(media: str) -> bool:
    _load_builtins()
    return media in _DEFAULTS


def default_for(media: str) -> str:
    _load_builtins()
    if media not in _DEFAULTS:
        raise CodecError(f"no codec for {media} yet")
    return _DEFAULTS[media]


def get(codec_id: str, weights: Path | None = None) -> Codec:
    """The codec with this id, with its default weights or the given weights file."""
    info(codec_id)
    key = (codec_id, None if weights is None else str(Path(weights).resolve()))
    with _BUILDING:
        if key not in _CACHE:
            _CACHE[key] = _FACTORIES[codec_id][1](weights)
        return _CACHE[key]
