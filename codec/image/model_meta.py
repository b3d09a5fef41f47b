"""What an image model file declares beside its tensors: the network's sizes (checked before a network
is built from them) and which of compressai's buffers it leaves out (the model computes them)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mcodec.codec.model_file import Weights

MAX_CHANNELS = 1024  # n and m: the widest compressai configuration is 320; this bounds a file's claim
MAX_QUALITIES = 64


def sizes(w: Weights) -> tuple[int, int, int]:
    """(n, m, qualities) from the file's metadata."""
    return (
        w.int_meta("n", 1, MAX_CHANNELS),
        w.int_meta("m", 1, MAX_CHANNELS),
        w.int_meta("qualities", 1, MAX_QUALITIES),
    )


def synthesis_width(w: Weights, n: int) -> int:
    """The hidden channels of a hyperprior's synthesis (metadata ``ns``; files without it: n)."""
    return w.int_meta("ns", 1, MAX_CHANNELS, default=n)


def derived_buffers(model: nn.Module) -> Callable[[str], bool]:
    """Keys of ``model``'s state a model file does not hold: compressai's dynamic CDF buffers (``._``
    names) and empty placeholders (the Gaussian conditional's scale table)."""
    empty = {k for k, v in model.state_dict().items() if v.numel() == 0}
    return lambda key: "._" in key or key in empty


def exported_state(model: nn.Module) -> dict:
    """The tensors of ``model`` a model file holds (the complement of ``derived_buffers``)."""
    return {k: v for k, v in model.state_dict().items() if "._" not in k and v.numel()}
