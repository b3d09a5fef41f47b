"""Data-parallel training under torchrun (DDP): ``torchrun --nproc_per_node=N -m mcodec train ...``.

Every process draws its own crops (``--batch`` is per process) and DDP averages the gradients; rank 0
alone logs, checkpoints and exports. The stop decision and the learning-rate scale come from rank 0's
clock each step, so a time-limited run ends on the same step everywhere instead of deadlocking.
Without torchrun's environment all of this is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str) -> Dist:
    """Join torchrun's process group if there is one; each process gets its own GPU (LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """The module to call in the training step (DDP on several processes, else the model itself)."""
    if not d.active:
        return model
    ids = [torch.device(d.device).index] if d.device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def agree(d: Dist, done: bool, lr_scale: float) -> tuple[bool, float]:
    """Rank 0's (done, lr_scale) on every rank."""
    if not d.active:
        return done, lr_scale
    flags = torch.tensor([float(done), lr_scale], device=d.device)
    dist.broadcast(flags, 0)
    return bool(flags[0].item()), float(flags[1].item())


def average_grads(params, d: Dist) -> None:
    """Average gradients DDP does not see (compressai's auxiliary quantile loss)."""
    if not d.active:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= d.world


def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    """Rank 0's parameters and buffers on every rank (what DDP does for the module it wraps)."""
    if not d.active:
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def finish(d: Dist) -> None:
    if d.active:
        dist.barrier()
        dist.destroy_process_group()
