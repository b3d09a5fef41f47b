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

from mcodec.entropy import TableSet

from .factorized import ARCH as FACTORIZED_ARCH
from .factorized_model import GainedFactorizedPrior
from .image_training import LAMBDAS

MAX_SIDE = 2048


def factorized_tables(eb) -> TableSet:
    """Per-channel tables from a compressai EntropyBottleneck, evaluated in float64 on the integer grid
    around each channel's median, between its learned tail quantiles; the tail mass goes to the escape."""
    eb = eb.double()
    q = eb.quantiles.detach()[:, 0, :]  # [C, 3]: lower tail, median, upper tail
    medians = q[:, 1]
    # supports beyond MAX_SIDE symbols would only hold tail mass: those symbols take the escape
    minima = torch.ceil(medians - q[:, 0]).clamp(0, MAX_SIDE).long()
    maxima = torch.ceil(q[:, 2] - medians).clamp(0, MAX_SIDE).long()
    pmfs, offsets, tails = [], [], []
    with torch.no_grad():
        for c in range(q.shape[0]):
            k = torch.arange(-int(minima[c]), int(maxima[c]) + 1, dtype=torch.float64)
            samples = (k + medians[c]).view(1, 1, -1).expand(q.shape[0], 1, -1)
            pmf, _, _ = eb._likelihood(samples, stop_gradient=True)
            pmf = pmf[c, 0]
            pmfs.append(pmf.numpy())
            offsets.append(-int(minima[c]))
            tails.append(max(1.0 - float(pmf.sum()), 0.0))
    eb.float()
    return TableSet.from_pmfs(pmfs, offsets, tails)


def export_factorized(checkpoint: Path, out: Path, model_id: str, extra: dict | None = None) -> TableSet:
    """Export a training checkpoint (image_training.train's checkpoint.pt)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt["model"]
    m, n = state["g_a.6.weight"].shape[:2]
    model = GainedFactorizedPrior(n, m, state["log_gain"].shape[0])
    model.load_state_dict(state, strict=False)
    return export_factorized_model(model, out, model_id, {"steps": str(ckpt.get("step", 0)), **(extra or {})})


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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, tmp, metadata=meta)
    tmp.replace(out)
    return tables
