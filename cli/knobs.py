"""The rate knobs of the command line: ``--quality`` for quality-level codecs, ``--bitrate`` (kbit/s) for
bitrate codecs (``CodecInfo.unit``). A knob given to a codec that does not take it is an error: read as
the other knob, a bitrate of 6 would silently become quality level 6."""

from __future__ import annotations

from mcodec.codec import CodecError
from mcodec.codec.base import CodecInfo

FLAGS = {"quality": "--quality", "kbps": "--bitrate"}
_WHAT = {"quality": "a quality level", "kbps": "kbit/s"}


def wrong_knob(unit: str, infos: list[CodecInfo]) -> CodecError:
    """The one-line error for a knob of ``unit`` that none of ``infos`` takes."""
    takes = ", ".join(
        f"{i.id} takes {FLAGS[i.unit]} ({_WHAT[i.unit]} {i.qualities[0]:g}..{i.qualities[1]:g})"
        for i in infos
    )
    return CodecError(f"{FLAGS[unit]} does not apply here: {takes}")


def check_knobs(infos: list[CodecInfo], quality: bool, bitrate: bool) -> None:
    """Refuse --quality (``quality``: given) or --bitrate where none of these codecs takes it."""
    for unit, given in (("quality", quality), ("kbps", bitrate)):
        if given and infos and all(i.unit != unit for i in infos):
            raise wrong_knob(unit, infos)
