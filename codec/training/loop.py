"""The training loop both learned codecs share: torchrun (DDP) or a single process, resume from
run_dir/checkpoint.pt or start from ``init_state``, stop on steps or wall clock (``TrainClock``) with the
learning rate decayed at the end, progress lines, atomic checkpoints. What one step does (data, loss,
optimizer steps) is the medium's ``TrainTask``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Protocol

import torch

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .clock import TrainClock, set_lr, speed_up_cuda


class TrainTask(Protocol):
    def setup(self, d: distributed.Dist) -> str:
        """Load the data for this process (device ``d.device``); returns a description for the log."""

    def step(self, net: torch.nn.Module, rng: random.Random, step: int = 0) -> dict[str, float]:
        """One optimisation step through ``net`` (the model, DDP-wrapped under torchrun): forward,
        backward, optimizer steps. ``step``: the steps done before this one, resumes included. Returns the
        metrics to log (the same keys every step: the log averages them)."""


def train_loop(
    model: torch.nn.Module,
    task: TrainTask,
    optimizers: dict[str, torch.optim.Optimizer],
    run_dir: Path,
    cfg,
    device: str = "cpu",
    init_state: dict | None = None,
    log=None,
    modules: dict[str, torch.nn.Module] | None = None,
) -> bool:
    """Train until ``cfg.steps`` total steps or ``cfg.max_seconds`` in this run. ``cfg`` has steps, seed,
    ckpt_every, log_every and max_seconds; each optimizer's learning rate as created is its base rate.
    ``modules``: training-only networks the task steps itself (discriminators), moved to the device and
    kept in the checkpoint beside the model. Returns whether this is the main process (the one that
    should export), torchrun or not."""
    log = log or sys.stderr
    d = distributed.init(device)
    ckpt_path = run_dir / "checkpoint.pt"
    model.to(d.device)
    modules = modules or {}
    for m in modules.values():
        m.to(d.device)
    base_lrs = {
        k: o.param_groups[0]["lr"] / o.param_groups[0].get("lr_factor", 1.0) for k, o in optimizers.items()
    }
    step, warmup_from = 0, None
    if ckpt_path.exists():
        step, fresh = load_checkpoint(ckpt_path, model, optimizers, base_lrs, d.device, modules)
        if d.main:
            new = f" ({', '.join(fresh)}: not in the checkpoint, fresh)" if fresh else ""
            print(f"resuming from step {step}{new}", file=log, flush=True)
    elif init_state is not None:
        model.load_state_dict(init_state, strict=False)
        warmup_from = step  # trained weights, fresh optimizers
    rng = random.Random(cfg.seed * 1_000_003 + step + 7919 * d.rank)
    torch.manual_seed(cfg.seed * 7919 + step + d.rank)
    about = task.setup(d)
    run_dir.mkdir(parents=True, exist_ok=True)  # after setup: a data mistake leaves no empty run behind
    if d.main:
        params = sum(p.numel() for p in model.parameters())
        extra = "".join(f" + {sum(p.numel() for p in m.parameters())} ({k})" for k, m in modules.items())
        print(f"{about}, {params} parameters{extra}, {d.world} process(es)", file=log, flush=True)
    net = distributed.wrap(model, d)
    for m in modules.values():
        distributed.broadcast_module(m, d)  # fresh ones were initialised differently on each rank
        m.train()
    model.train()
    speed_up_cuda(d.device)
    clock = TrainClock(cfg.steps, cfg.max_seconds, warmup_from)
    t0, sums, logged, saved = time.time(), {}, 0, step
    while True:
        done, lr_scale = distributed.agree(d, clock.done(step), clock.lr_scale(step))
        if done:
            break
        for key, opt in optimizers.items():
            set_lr(opt, base_lrs[key], lr_scale)
        for key, value in task.step(net, rng, step).items():
            sums[key] = sums.get(key, 0.0) + value
        step, logged = step + 1, logged + 1
        if d.main and step % cfg.log_every == 0:
            shown = " ".join(f"{key} {value / logged:.4f}" for key, value in sums.items())
            rate = (time.time() - t0) / logged
            print(f"step {step}/{cfg.steps} {shown} {rate:.2f} s/step", file=log, flush=True)
            t0, sums, logged = time.time(), {}, 0
        if d.main and clock.should_save(step, cfg.ckpt_every):
            save_checkpoint(ckpt_path, model, optimizers, saved := step, modules)
    if d.main and saved != step:
        save_checkpoint(ckpt_path, model, optimizers, step, modules)
    # DDP's reducer must go while its process group lives: torn down after destroy_process_group (when
    # this function returned) it hung a worker about 1 run in 20 on this CPU, and in CI (stop 13)
    del net
    distributed.finish(d)
    return d.main
