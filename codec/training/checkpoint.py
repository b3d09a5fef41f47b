"""Training checkpoints: model, optimizers and step in one file, written atomically, so a run killed
at any moment resumes from its last checkpoint (``checkpoint.pt`` in the run folder)."""

from __future__ import annotations

from pathlib import Path

import torch

from mcodec.codec.atomic_write import atomic_output


def save_checkpoint(path: Path, model, optimizers: dict, step: int) -> None:
    state = {"model": model.state_dict(), "step": step, **{k: o.state_dict() for k, o in optimizers.items()}}
    with atomic_output(Path(path), force=True) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model, optimizers: dict, lrs: dict, device: str) -> int:
    """Restore everything from ``path``; returns the step. ``lrs`` (same keys as ``optimizers``) replace
    the saved learning rates, so a resumed run may change them."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(ckpt["model"])
    for key, opt in optimizers.items():
        opt.load_state_dict(ckpt[key])
        for group in opt.param_groups:
            group["lr"] = lrs[key]
    return int(ckpt["step"])
