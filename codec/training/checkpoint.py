"""Training checkpoints: model, optimizers, step and any training-only modules (the audio task's
discriminators) in one file, written atomically, so a run killed at any moment resumes from its last
checkpoint (``checkpoint.pt`` in the run folder)."""

from __future__ import annotations

from pathlib import Path

import torch

from mcodec.codec.atomic_write import atomic_output

from .clock import set_lr


def save_checkpoint(path: Path, model, optimizers: dict, step: int, modules: dict | None = None) -> None:
    """``modules``: training-only networks by name (saved under "modules"; the model file never has them)."""
    state = {"model": model.state_dict(), "step": step, **{k: o.state_dict() for k, o in optimizers.items()}}
    if modules:
        state["modules"] = {k: m.state_dict() for k, m in modules.items()}
    with atomic_output(Path(path), force=True) as tmp:
        torch.save(state, tmp)


def load_checkpoint(
    path: Path, model, optimizers: dict, lrs: dict, device: str, modules: dict | None = None
) -> tuple[int, list[str]]:
    """Restore everything from ``path``; returns the step and the names of the optimizers and modules the
    checkpoint does not hold, which keep their fresh state (a run resumed with --adversarial newly on:
    new discriminators and their optimizer). ``lrs`` (same keys as ``optimizers``) replace the saved
    learning rates, so a resumed run may change them."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(ckpt["model"])
    fresh = []
    for key, module in (modules or {}).items():
        if key in ckpt.get("modules", {}):
            module.load_state_dict(ckpt["modules"][key])
        else:
            fresh.append(key)
    for key, opt in optimizers.items():
        if key not in ckpt:
            fresh.append(key)
            continue
        opt.load_state_dict(ckpt[key])
        set_lr(opt, lrs[key], 1.0)
    return int(ckpt["step"]), fresh
