"""The rate-distortion trade-off each quality of an image model was trained for: training draws a
quality's lambda per crop, the encoder's latent refinement optimizes the same loss, and the model file
records the lambdas it was trained with (metadata ``lambdas``). Loss = lambda * 255^2 * MSE + bpp."""

from __future__ import annotations

import json
import math

from mcodec.codec.base import CodecError

# MSE lambdas of compressai's zoo for qualities 1..8
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


def lambdas_of(metadata: dict[str, str], qualities: int) -> tuple[float, ...]:
    """A model file's lambda per quality (its ``lambdas`` metadata, written at export); LAMBDAS for a file
    without one."""
    if "lambdas" not in metadata:
        return LAMBDAS
    try:
        values = tuple(float(v) for v in json.loads(metadata["lambdas"]))
    except (ValueError, TypeError):
        values = ()
    if len(values) != qualities or not all(0 < v <= 100 for v in values):
        raise CodecError(f"the model's lambdas metadata is not {qualities} positive numbers")
    return values


def quality_lambda(quality: float, lambdas: tuple[float, ...] = LAMBDAS) -> float:
    """The lambda at a (fractional) quality, geometric between the integer ones, as the gains
    interpolate."""
    q = min(max(quality, 1.0), float(len(lambdas))) - 1
    lo = min(int(q), len(lambdas) - 2)
    t = q - lo
    return math.exp((1 - t) * math.log(lambdas[lo]) + t * math.log(lambdas[lo + 1]))
