"""Exporting trained models to the shipped form: fp16 safetensors with frozen integer tables, written by
``model_file.write_model_file``.

Image models: the weights are rounded to fp16 first and the tables built from the rounded model in
float64, so the tables describe exactly the model a decoder loads. Audio: one categorical table per RVQ
stage from code counts over the training data, and a last, uniform one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from mcodec.codec.audio.model import ARCH as RVQ_ARCH
from mcodec.codec.audio.model import FRAME_RATE, SAMPLE_RATE, RVQAutoencoder
from mcodec.codec.image.bottleneck_tables import factorized_tables
from mcodec.codec.image.factorized_model import ARCH as FACTORIZED_ARCH
from mcodec.codec.image.factorized_model import GainedFactorizedPrior
from mcodec.codec.image.hyperprior_model import ARCH as HYPERPRIOR_ARCH
from mcodec.codec.image.lambdas import LAMBDAS
from mcodec.codec.image.model_meta import exported_state
from mcodec.codec.model_file import write_model_file
from mcodec.entropy import TableSet, gaussian_tables


def export_checkpoint(
    model,
    checkpoint: Path,
    out: Path,
    model_id: str,
    lambdas: tuple[float, ...] = LAMBDAS,
    trained: tuple[int, ...] = (),
) -> None:
    """Export a training checkpoint (training.image_task.train's checkpoint.pt) of ``model``'s
    architecture, recording the lambda of each quality and, when the run trained only some, which
    (``trained``)."""
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
    _write_image_model(
        model, {"tables": tables}, out, {"arch": FACTORIZED_ARCH, "model_id": model_id, **(extra or {})}
    )
    return tables


def export_hyperprior_model(
    model, out: Path, model_id: str, extra: dict | None = None
) -> tuple[TableSet, TableSet]:
    """Write a GainedHyperprior as fp16 safetensors with frozen z (factorized) and y (Gaussian) tables."""
    model = _rounded_copy(model)
    ztables, ytables = factorized_tables(model.entropy_bottleneck), gaussian_tables()
    meta = {"arch": HYPERPRIOR_ARCH, "variant": model.arch, "model_id": model_id, **(extra or {})}
    _write_image_model(model, {"ztables": ztables, "ytables": ytables}, out, meta)
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


def _write_image_model(model, tables: dict[str, TableSet], out: Path, meta: dict) -> None:
    """Weights (compressai's dynamic CDF buffers and empty placeholders left out), tables, metadata."""
    meta = {"n": str(model.n), "m": str(model.m), "qualities": str(model.qualities), **meta}
    if getattr(model, "ns", model.n) != model.n:  # a wider synthesis; files without the key have ns = n
        meta["ns"] = str(model.ns)
    if model.qualities == len(LAMBDAS):  # the default lambdas fit; a model of other qualities says its own
        meta.setdefault("lambdas", json.dumps(LAMBDAS))
    write_model_file(out, exported_state(model), tables, meta)


def export_rvq_model(
    model: RVQAutoencoder,
    priors: torch.Tensor | TableSet,
    out: Path,
    model_id: str,
    extra: dict | None = None,
) -> TableSet:
    """fp16 weights (EMA statistics left out) and ``priors``: code counts [n_q, size], made one
    categorical table per stage (add-one smoothed) and a last, uniform table; or a TableSet (a decoder-only
    fine-tune, whose codes are its init model's), written as it is."""
    tables = priors
    if not isinstance(priors, TableSet):
        pmfs = [(c + 1).numpy() for c in priors] + [np.ones(priors.shape[1])]  # last: the uniform fallback
        tables = TableSet.from_pmfs(pmfs, [0] * len(pmfs), [1e-9] * len(pmfs))
    tensors = {k: v for k, v in model.state_dict().items() if ".ema_" not in k}
    meta = {
        "arch": RVQ_ARCH,
        "model_id": model_id,
        "base": str(model.base),
        "dim": str(model.dim),
        "n_q": str(model.n_q),
        "context": str(model.context),
        "sample_rate": str(SAMPLE_RATE),
        "frame_rate": str(FRAME_RATE),
        "codebook_size": json.dumps(model.quantizer.size),
        **(extra or {}),
    }
    write_model_file(out, tensors, {"tables": tables}, meta)
    return tables
