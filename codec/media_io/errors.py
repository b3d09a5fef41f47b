"""The error media reading and writing raise."""

from __future__ import annotations

from mcodec.codec.base import CodecError


class MediaError(CodecError):
    """A media file cannot be read or written."""
