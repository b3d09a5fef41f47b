"""mcodec: neural media codecs with real rANS bitstreams in a versioned container.

Python API: ``encode_file``, ``decode_file``, ``describe`` (files) and ``encode_bytes``, ``decode_bytes``
(tensors), ``encode_stream`` (one stream of a file of several, as a movie's sound); errors a user can
cause are instances of ``USER_ERRORS``.
"""

__version__ = "0.1.0"

from .compress import (  # noqa: E402
    USER_ERRORS,
    decode_bytes,
    decode_file,
    describe,
    encode_bytes,
    encode_file,
    encode_stream,
)

__all__ = [
    "USER_ERRORS",
    "decode_bytes",
    "decode_file",
    "describe",
    "encode_bytes",
    "encode_file",
    "encode_stream",
]
