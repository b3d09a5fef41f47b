"""Codecs and their registry. Importing this package registers every built-in codec."""

from functools import partial

from mcodec.nerv.codec import INFOS as _NERV_INFOS  # noqa: E402,I001 - video codecs live in mcodec.nerv
from mcodec.nerv.codec import NervCodec  # noqa: E402

from . import registry
from .audio_rvq import INFO as _RVQ
from .audio_rvq import RVQAudioCodec
from .base import Codec, CodecError, CodecInfo, Payload
from .factorized import INFO as _FACTORIZED
from .factorized import FactorizedCodec
from .hyperprior import INFOS as _HYPERPRIOR_INFOS
from .hyperprior import ZOO as _ZOO
from .hyperprior import load_ours, load_zoo

registry.register(_FACTORIZED, FactorizedCodec, default=True)
registry.register(_RVQ, RVQAudioCodec, default=True)
for _id, _info in _NERV_INFOS.items():
    registry.register(_info, partial(NervCodec, _id), default=_id == "hnerv")
for _id, _info in _HYPERPRIOR_INFOS.items():
    registry.register(_info, partial(load_zoo if _id in _ZOO else load_ours, _id), default=_id == "meanscale")

__all__ = ["Codec", "CodecError", "CodecInfo", "Payload", "registry"]
