"""Codecs and their registry. Importing this package registers every built-in codec."""

from . import registry
from .base import Codec, CodecError, CodecInfo, Payload
from .factorized import INFO as _FACTORIZED
from .factorized import FactorizedCodec

registry.register(_FACTORIZED, FactorizedCodec, default=True)

__all__ = ["Codec", "CodecError", "CodecInfo", "Payload", "registry"]
