"""Exporting a trained image model to the shipped form: fp16 safetensors with frozen integer tables.

Order matters for determinism: the weights are rounded to fp16 first and the tables are built from the
rounded model in float64, so the tables describe exactly the model a decoder loads.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from mcodec.entropy import TableSet, gaussian_tables

from .eb_tables import factorized_tables
from .factorized import ARCH as FACTORIZED_ARCH
from .factorized_model import GainedFactorizedPrior
from .image_training import LAMBDAS


def export_checkpoint(
    model,
    checkpoint: Path,
    out: Path,
    model_id: str,
    lambdas: tuple[float, ...] = LAMBDAS,
    trained: tuple[int, ...] = (),
) -> None:
    """Export a training checkpoint (image_training.train's checkpoint.pt) of ``model``'s architecture,
    recording the lambda of each quality and, when the run trained only some, which (``trained``)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"], strict=False)
    extra = {"steps": str(ckpt.get("step", 0)), "lambdas": json.dumps(list(lambdas))}
    if trained:
        extra["qualities_trained"] = json.dumps(sorted(set(trained)))
    if isinstance(model, GainedFactorizedPrior):
        export_factorized_model(model, out, model_id, extra)
    else:
        export_hyperprior_model(model, out, model_id, extra)


def export_factorized_model(
    model: GainedFactorizedPrior, out: Path, model_id: str, extra: dict | None = None
) -> TableSet:
    """Write ``model`` as fp16 safetensors with its frozen tables; returns the tables."""
    model = _rounded_copy(model)
    tables = factorized_tables(model.entropy_bottleneck)
    _write(model, {"tables": tables}, out, {"arch": FACTORIZED_ARCH, "model_id": model_id, **(extra or {})})
    return tables


def export_hyperprior_model(
    model, out: Path, model_id: str, extra: dict | None = None
) -> tuple[TableSet, TableSet]:
    """Write a GainedHyperprior as fp16 safetensors with frozen z (factorized) and y (Gaussian) tables."""
    from .hyperprior import ARCH as HYPERPRIOR_ARCH

    model = _rounded_copy(model)
    ztables, ytables = factorized_tables(model.entropy_bottleneck), gaussian_tables()
    meta = {"arch": HYPERPRIOR_ARCH, "variant": model.arch, "model_id": model_id, **(extra or {})}
    _write(model, {"ztables": ztables, "ytables": ytables}, out, meta)
    return ztables, ytables


def _rounded_copy(model):
    """A CPU copy with fp16-rounded weights (what a decoder loads) and exact tail quantiles, found by
    bisection rather than the aux loss's estimate, themselves rounded to fp16."""
    model = copy.deepcopy(model).cpu().eval()
    model.half().float()
    eb = model.entropy_bottleneck
    eb._update_quantiles()
    eb.quantiles.data = eb.quantiles.data.half().float()
    return model


def _write(model, tables: dict[str, TableSet], out: Path, meta: dict) -> None:
    """Weights as fp16 (compressai's dynamic CDF buffers and empty placeholders left out), tables as
    int32 ``{prefix}.freqs/.offsets/.lengths``, metadata strings; written atomically."""
    tensors = {k: v.half().contiguous() for k, v in model.state_dict().items() if "._" not in k and v.numel()}
    for prefix, t in tables.items():
        for name in ("freqs", "offsets", "lengths"):
            tensors[f"{prefix}.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(t, name)))
    meta = {
        "n": str(model.n),
        "m": str(model.m),
        "qualities": str(model.qualities),
        "lambdas": json.dumps(LAMBDAS),
        **meta,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, tmp, metadata=meta)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # a shipped file, readable by all
    tmp.replace(out)
