"""Starting an image training run from a model file (``mcodec train image --init``).

A file of the same architecture gives every learned parameter. A factorized model can also start a
hyperprior of the same width: compressai's hyperprior transforms (``net.g_a``, ``net.g_s``) are layer for
layer the factorized ones, and the gains mean the same, so only the hyperprior itself (``h_a``, ``h_s``,
the z bottleneck) starts from scratch. That turns hours of CPU training of the transforms into minutes of
training the small hyper networks (a warm start). The same holds between the two hyperprior variants
(scale and mean-scale): their transforms and gains are alike, their hyper networks are not. A
mean-scale model starts a checkerboard model whole: only the context is new, and it starts at zero.
"""

from __future__ import annotations

import torch

from mcodec.codec.base import CodecError
from mcodec.codec.image.model_meta import sizes, synthesis_width
from mcodec.codec.model_file import Weights

from .image_widen import widen_state, widen_synthesis

# variant of a file -> the variant a model built on it adds to (everything the file has carries over)
EXTENDS = {"mean-scale-hyperprior": "mean-scale-checkerboard"}
# What a hyperprior of the other variant hands over: the transforms and the gains.
TRANSFORM_PREFIXES = ("net.g_a.", "net.g_s.", "log_gain", "log_inv_gain")

# Transplanted transforms stay frozen this many steps while the new hyperprior learns: random scales at
# first put a large rate gradient on the analysis that would undo its training.
WARM_START_FROZEN_STEPS = 500


def init_state(model, w: Weights) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(state to load, names of the transplanted parameters to freeze at first) for ``model`` from the
    model file ``w``.

    Parameters only: a file's buffers are fp16 copies of constants, and fp16 turns compressai's likelihood
    bound (1e-9) and GDN's pedestal (2^-36) into 0. A zero likelihood bound gives infinite rates, so
    training from such a start went NaN within steps."""
    learned = dict(model.named_parameters())
    if hasattr(model, "m") and w.metadata.get("variant") == model.arch and sizes(w)[1] < model.m:
        return widen_state(model, w.tensors, sizes(w)[1]), []
    if hasattr(model, "ns") and w.metadata.get("variant") == model.arch:
        ns = synthesis_width(w, sizes(w)[0])
        if ns < model.ns:
            return widen_synthesis(model, w.tensors, ns), []
    from_factorized = hasattr(model, "net") and not any(k.startswith("net.") for k in w.tensors)
    variant = w.metadata.get("variant", getattr(model, "arch", None))
    other_variant = hasattr(model, "arch") and variant != model.arch and EXTENDS.get(variant) != model.arch
    transplant = from_factorized or other_variant
    state = {}
    for key, value in w.tensors.items():
        if from_factorized and key.startswith("entropy_bottleneck"):
            continue  # the factorized prior of y; a hyperprior's bottleneck models z
        if other_variant and not key.startswith(TRANSFORM_PREFIXES):
            continue  # the other variant's hyper networks: other shapes, other meaning
        name = f"net.{key}" if from_factorized and not key.startswith("log_") else key
        if name not in learned:
            continue
        if learned[name].shape != value.shape:
            raise CodecError(
                f"{w.path.name}: {key} has shape {tuple(value.shape)} where the model wants "
                f"{tuple(learned[name].shape)}"
            )
        state[name] = value.float()
    if not state:
        raise CodecError(f"{w.path.name}: no parameter of this model in the {w.metadata.get('arch')} file")
    return state, sorted(state) if transplant else []
