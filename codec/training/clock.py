"""When a training run stops and how its learning rate decays: after ``steps`` total steps or
``max_seconds`` of wall clock in this invocation, whichever comes first. A GPU lease is measured in
minutes, not steps, so a run given a time limit still ends on a decayed learning rate and a checkpoint.
"""

from __future__ import annotations

import time

DECAY_FROM = 0.8  # last 20% of the run: learning rate falls geometrically to 1/10
# A run that starts fresh optimizers on trained weights (--init) ramps the rate up over this many steps:
# Adam's first steps move every parameter by the full rate whatever its gradient's size.
WARMUP_STEPS = 200
CHECKPOINT_SECONDS = 30.0  # checkpoints at most this often (a GPU does hundreds of steps in that time)


class TrainClock:
    def __init__(self, steps: int, max_seconds: float | None = None, warmup_from: int | None = None):
        """``warmup_from``: the step at which fresh optimizers start (None: no warm-up)."""
        self.steps, self.max_seconds, self.warmup_from = steps, max_seconds, warmup_from
        self.start = self.last_save = time.monotonic()

    def progress(self, step: int) -> float:
        by_steps = step / self.steps
        if not self.max_seconds:
            return by_steps
        return max(by_steps, (time.monotonic() - self.start) / self.max_seconds)

    def lr_scale(self, step: int) -> float:
        p = self.progress(step)
        decay = 1.0 if p < DECAY_FROM else 0.1 ** min(1.0, (p - DECAY_FROM) / (1 - DECAY_FROM))
        if self.warmup_from is None:
            return decay
        return decay * min(1.0, (step - self.warmup_from + 1) / WARMUP_STEPS)

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1.0

    def should_save(self, step: int, every: int) -> bool:
        """Every ``every`` steps but no more often than CHECKPOINT_SECONDS (the loop saves the last step)."""
        now = time.monotonic()
        if step % every == 0 and now - self.last_save >= CHECKPOINT_SECONDS:
            self.last_save = now
            return True
        return False


def set_lr(optimizer, base_lr: float, scale: float) -> None:
    """A group's own ``lr_factor`` (a new module learning faster than trained ones) multiplies the rate."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * scale * group.get("lr_factor", 1.0)


def speed_up_cuda(device: str) -> None:
    """cuDNN autotuning (crops have one size) and TF32 matmuls; no effect on CPU runs."""
    import torch

    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
