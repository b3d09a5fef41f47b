"""The codec interface every medium implements, and the errors codecs raise.

A codec turns media into a ``Payload`` (header parameters plus typed chunks of coded bytes) and back;
the container, the CLI and evaluation only ever see this interface.
Media: images are uint8 tensors [C, H, W] (C = 1 or 3), video uint8 [T, 3, H, W] plus frame rate,
audio float32 [C, N] plus sample rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class CodecError(ValueError):
    """A codec cannot do what was asked (bad input, wrong weights, unknown codec); one-line message."""


@dataclass
class Payload:
    params: dict  # JSON-able header fields: media sizes, quality, codec settings
    chunks: list[tuple[str, bytes]] = field(default_factory=list)

    def chunk(self, ctype: str) -> bytes:
        """The one chunk of this type; CodecError if it is missing or repeated."""
        found = [p for t, p in self.chunks if t == ctype]
        if len(found) != 1:
            raise CodecError(f"expected one {ctype} chunk, found {len(found)}")
        return found[0]


@dataclass(frozen=True)
class CodecInfo:
    id: str
    media: str
    qualities: tuple[float, float]  # the accepted range of the rate knob
    default_quality: float
    description: str
    points: tuple[float, ...] = ()  # the usual rate points (evaluation); default: integers of the range
    unit: str = "quality"  # what the knob is: "quality" (a level) or "kbps" (a bitrate)
    presets: tuple[str, ...] = ()  # encoder effort settings (--preset), fastest first; () where none
    default_preset: str | None = None

    def rate_points(self) -> list[float]:
        lo, hi = self.qualities
        return list(self.points) or list(range(int(lo), int(hi) + 1))


class Codec(ABC):
    info: CodecInfo
    model_id: str = ""
    profile: str = "none"  # determinism profile written into the file (FORMAT.md)
    weights_hash: bytes = bytes(32)  # sha256 of the model file; zeros for codecs without one
    tables_hash: bytes = bytes(32)  # sha256 of the frozen entropy tables (set once: they never change)
    schema = None  # a schema.Schema of the HEAD params its decoder reads (schema imports this module)

    @abstractmethod
    def encode(self, media, quality: float, device: str = "cpu", **options) -> Payload:
        """``options``: codec-specific settings (video: preset, progress); others ignore them."""

    @abstractmethod
    def decode(self, payload: Payload, device: str = "cpu", **options):
        """``options``: codec-specific settings (video: frames=(first, end))."""

    def check_params(self, params: dict) -> None:
        """Refuse a file's HEAD params that break the codec's schema (CodecError naming the field). The
        API calls this on every decode before the codec reads a number; ``decode`` then trusts them."""
        if self.schema is not None:
            self.schema.check(params)

    def check_preset(self, preset: str) -> None:
        """Refuse an encoder preset this codec does not have (the Python API reaches encode unchecked)."""
        if preset not in self.info.presets:
            known = ", ".join(self.info.presets)
            raise CodecError(f"{self.info.id} has no preset {preset!r} (presets: {known})")

    def reduce_rate(
        self, payload: Payload, excess: int | None = None, aim: int | None = None
    ) -> Payload | None:
        """The same media coded at a lower rate, or None where there is none. Rate control for bitrate
        (``kbps``) codecs: the caller sheds rate this way until the file meets the request; ``excess``:
        by how many bytes the file is over it, tolerance included (None: unknown), so a codec may pick the
        cut; ``aim``: by how many it is over the request itself, for a codec that can cut to measure."""
        return None
