"""Declared schemas of the numbers a decoder reads: a file's HEAD params and the JSON headers inside its
chunks are checked against one schema per codec before anything is allocated or indexed.

A schema names its fields (an integer in a range, a number, one of some values, a list, a nested object)
and optional rules across fields; ``Schema.check`` raises ``CodecError`` with one line naming the field.
Keys a schema does not declare are ignored (FORMAT.md section 1: later minors may add keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .base import CodecError


class _Invalid(Exception):
    """A field's value is refused: ``path`` names it (``config.strides[2]``), ``why`` says why."""

    def __init__(self, path: str, why: str):
        self.path, self.why = path, why


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true/false are not integers


class Field:
    required: bool = True

    def validate(self, value, path: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Field):
    lo: int
    hi: int
    required: bool = True

    def validate(self, value, path: str) -> None:
        if not _is_int(value):
            raise _Invalid(path, f"= {_show(value)} is not an integer")
        if not self.lo <= value <= self.hi:
            raise _Invalid(path, f"= {_show(value)} outside {self.lo}..{self.hi}")


@dataclass(frozen=True)
class Number(Field):
    """An integer or a finite float in [lo, hi]."""

    lo: float
    hi: float
    required: bool = True

    def validate(self, value, path: str) -> None:
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise _Invalid(path, f"= {_show(value)} is not a finite number")
        if not self.lo <= value <= self.hi:
            raise _Invalid(path, f"= {_show(value)} outside {self.lo:g}..{self.hi:g}")


@dataclass(frozen=True)
class OneOf(Field):
    """One of ``values``, of the same JSON type (1 is not 1.0 and not true)."""

    values: tuple
    required: bool = True

    def validate(self, value, path: str) -> None:
        if not any(type(value) is type(v) and value == v for v in self.values):
            raise _Invalid(path, f"= {_show(value)} is not one of {', '.join(map(repr, self.values))}")


@dataclass(frozen=True)
class Text(Field):
    max_len: int = 64
    required: bool = True

    def validate(self, value, path: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise _Invalid(path, f"= {_show(value)} is not a string of at most {self.max_len} characters")


@dataclass(frozen=True)
class ListOf(Field):
    """A JSON array of min_len..max_len items, each checked by ``item``."""

    item: Field
    min_len: int
    max_len: int
    required: bool = True

    def validate(self, value, path: str) -> None:
        if not isinstance(value, list):
            raise _Invalid(path, f"= {_show(value)} is not a list")
        if not self.min_len <= len(value) <= self.max_len:
            raise _Invalid(path, f"has {len(value)} items, not {self.min_len}..{self.max_len}")
        for i, v in enumerate(value):
            self.item.validate(v, f"{path}[{i}]")


Rule = Callable[[dict], "str | None"]  # checked values -> None, or the one-line reason they are refused


@dataclass(frozen=True)
class Schema(Field):
    """A JSON object's declared fields, then ``rules`` across them (run once every field is valid)."""

    name: str  # what the object is, for messages: "rvq params", "VGOP header"
    fields: dict[str, Field]
    rules: tuple[Rule, ...] = ()
    required: bool = True

    def check(self, values) -> dict:
        """``values`` if it satisfies the schema; else CodecError("<name>: <field> <why>")."""
        try:
            self.validate(values, "")
        except _Invalid as e:
            raise CodecError(f"{self.name}: {e.path + ' ' if e.path else ''}{e.why}") from None
        return values

    def validate(self, values, path: str) -> None:
        if not isinstance(values, dict):
            raise _Invalid(path, f"= {_show(values)} is not a JSON object")
        for key, f in self.fields.items():
            sub = f"{path}.{key}" if path else key
            if key in values:
                f.validate(values[key], sub)
            elif f.required:
                raise _Invalid(sub, "is missing")
        for rule in self.rules:
            why = rule(values)
            if why:
                raise _Invalid(path, why)

    def extend(self, name: str, fields: dict[str, Field], rules: tuple[Rule, ...] = ()) -> Schema:
        """This schema with more (or replaced) fields and rules, under another name."""
        return Schema(name, {**self.fields, **fields}, self.rules + rules)


def media_fields(media: str) -> dict[str, Field]:
    """The container's required media fields (FORMAT.md section 4) as schema fields: the container has
    already checked them; a codec's schema declares them too, so it lists everything its decoder reads,
    and may narrow them."""
    from mcodec.entropy.container import MEDIA_LIMITS

    return {key: Int(lo, hi) for key, (lo, hi) in MEDIA_LIMITS[media].items()}
