"""The codecs mcodec ships, and each medium's default: what the registry loads on first use.

This module only lists them; ``registry`` registers them, so neither the interface package nor any codec
imports another codec's module (the video codecs live in ``mcodec.nerv``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from mcodec.nerv.codec import INFOS as NERV_INFOS
from mcodec.nerv.codec import NervCodec

from .audio.codec import INFO as RVQ_INFO
from .audio.codec import RVQAudioCodec
from .base import Codec, CodecInfo
from .image.factorized import INFO as FACTORIZED_INFO
from .image.factorized import FactorizedCodec
from .image.hyperprior import INFOS as HYPERPRIOR_INFOS
from .image.hyperprior import load_ours
from .image.zoo import INFOS as ZOO_INFOS
from .image.zoo import load_zoo

DEFAULTS = {"image": "meanscale", "video": "hnerv", "audio": "rvq"}


def builtin_codecs() -> list[tuple[CodecInfo, Callable[[Path | None], Codec]]]:
    """(info, factory taking an optional weights file) of every shipped codec."""
    return [
        (FACTORIZED_INFO, FactorizedCodec),
        *((info, partial(load_ours, cid)) for cid, info in HYPERPRIOR_INFOS.items()),
        *((info, partial(load_zoo, cid)) for cid, info in ZOO_INFOS.items()),
        *((info, partial(NervCodec, cid)) for cid, info in NERV_INFOS.items()),
        (RVQ_INFO, RVQAudioCodec),
    ]
