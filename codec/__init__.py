"""Codecs: the interface every medium implements (``base``) and the registry of ids (``registry``).

The codecs themselves live by medium: ``image/`` (factorized, hyperprior, mean-scale, compressai zoo),
``audio/`` (RVQ) and ``mcodec.nerv`` (video INRs); ``media_io/`` reads and writes media files;
``training/`` trains and exports models and is never imported by coding.
"""

from . import registry
from .base import Codec, CodecError, CodecInfo, Payload

__all__ = ["Codec", "CodecError", "CodecInfo", "Payload", "registry"]
