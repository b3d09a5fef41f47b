"""Exporting a trained image model to the shipped form: fp16 safetensors with frozen integer tables.

Order matters for determinism: the weights are rounded to fp16 first and the tables are built from the
rounded model in float64, so the tables describe exactly the model a decoder loads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from mcodec.entropy import TableSet, gaussian_tables

from .eb_tables import factorized_tables
from .factorized import ARCH as FACTORIZED_ARCH
from .factorized_model import GainedFactorizedPrior
from .image_training import LAMBDAS


def export_checkpoint(model, checkpoint: Path, out: Path, model_id: str) -> None:
    """Export a training checkpoint (image_training.train's checkpoint.pt) of ``model``'s architecture."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"], strict=False)
    extra = {"steps": str(ckpt.get("step", 0))}
    if isinstance(model, GainedFactorizedPrior):
        export_factorized_model(model, out, model_id, extra)
    else:
        export_hyperprior_model(model, out, model_id, extra)


def export_factorized_model(
    model: GainedFactorizedPrior, out: Path, model_id: str, extra: dict | None = None
) -> TableSet:
    """Write ``model`` as fp16 safetensors with its frozen tables; returns the tables."""
    model = copy.deepcopy(model).cpu().eval()
    model.half().float()  # the decoder sees fp16-rounded weights
    eb = model.entropy_bottleneck
    eb._update_quantiles()  # exact tail quantiles by bisection instead of the aux loss's estimate
    eb.quantiles.data = eb.quantiles.data.half().float()
    tables = factorized_tables(eb)
    tensors = {
        k: v.half().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith("entropy_bottleneck._") or k.endswith("quantiles")
    }
    tensors.update(
        {
            f"tables.{k}": torch.from_numpy(np.ascontiguousarray(v))
            for k, v in (("freqs", tables.freqs), ("offsets", tables.offsets), ("lengths", tables.lengths))
        }
    )
    meta = {
        "arch": FACTORIZED_ARCH,
        "model_id": model_id,
        "n": str(model.n),
        "m": str(model.m),
        "qualities": str(model.qualities),
        "lambdas": json.dumps(LAMBDAS),
        **(extra or {}),
    }
    _save_atomic(tensors, Path(out), meta)
    return tables


def export_hyperprior_model(
    model, out: Path, model_id: str, extra: dict | None = None
) -> tuple[TableSet, TableSet]:
    """Write a GainedHyperprior as fp16 safetensors with frozen z (factorized) and y (Gaussian) tables."""
    from .hyperprior import ARCH as HYPERPRIOR_ARCH

    model = copy.deepcopy(model).cpu().eval()
    model.half().float()
    eb = model.entropy_bottleneck
    eb._update_quantiles()
    eb.quantiles.data = eb.quantiles.data.half().float()
    ztables, ytables = factorized_tables(eb), gaussian_tables()
    tensors = {k: v.half().contiguous() for k, v in model.state_dict().items() if "._" not in k and v.numel()}
    for prefix, tables in (("ztables", ztables), ("ytables", ytables)):
        tensors.update(
            {
                f"{prefix}.{k}": torch.from_numpy(np.ascontiguousarray(v))
                for k, v in (
                    ("freqs", tables.freqs),
                    ("offsets", tables.offsets),
                    ("lengths", tables.lengths),
                )
            }
        )
    meta = {
        "arch": HYPERPRIOR_ARCH,
        "variant": model.arch,
        "model_id": model_id,
        "n": str(model.n),
        "m": str(model.m),
        "qualities": str(model.qualities),
        "lambdas": json.dumps(LAMBDAS),
        **(extra or {}),
    }
    _save_atomic(tensors, Path(out), meta)
    return ztables, ytables


def _save_atomic(tensors: dict, out: Path, meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, tmp, metadata=meta)
    tmp.replace(out)
