"""One progress bar over a clip's fit, every group's optimizer steps, with the time left; it also keeps
the seconds per step of each phase, for the time-budget plan and the estimate of a slow clip."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

ESTIMATE_AFTER = 4  # steps: the first ones allocate, so the estimate waits for a few
# and times those after the first: what comes before a group's first step (reading its frames, coding its
# key pictures at the medium preset, ~15 s for a 320x240 clip's block motion) is not a step's time


class ClipProgress:
    def __init__(
        self,
        total_steps: int,
        label: str,
        enabled: bool = True,
        on_estimate: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        """on_estimate(expected seconds of the whole fit): called once, after ESTIMATE_AFTER steps."""
        self.bar = tqdm(total=total_steps, desc=label, unit="step", file=sys.stderr, disable=not enabled)
        self.on_estimate, self.clock = on_estimate, clock
        self.last = clock()
        self.first: float | None = None  # when the first step ended
        self.seconds = {"fit": 0.0, "qat": 0.0}
        self.steps = {"fit": 0, "qat": 0}
        self.mse, self.group = None, ""
        self.done, self.total = 0, total_steps  # kept here: a disabled tqdm counts nothing

    def set_total(self, total_steps: int) -> None:
        """A re-plan changed the steps still to come."""
        self.total = self.bar.total = total_steps
        self.bar.refresh()

    def on_step(self, phase: str, mse: float) -> None:
        """After each optimizer step of ``phase`` ('fit' or 'qat'); mse: the step's loss."""
        now = self.clock()
        self.seconds[phase] += now - self.last
        self.steps[phase] += 1
        self.last = now
        self.mse = mse if self.mse is None else 0.9 * self.mse + 0.1 * mse
        psnr = -10 * math.log10(max(self.mse, 1e-12))
        self.bar.set_postfix_str(f"{self.group}{phase} psnr {psnr:.2f} dB", refresh=False)
        self.bar.update()
        self.done += 1
        if self.first is None:
            self.first = now
        if self.on_estimate is not None and self.done == ESTIMATE_AFTER:
            self.on_estimate((now - self.first) / (self.done - 1) * self.total)

    def step_seconds(self) -> tuple[float, float] | None:
        """Mean seconds of a fit step and a fine-tune step so far (time between steps included: reading,
        entropy coding); None before both phases have run."""
        if not all(self.steps.values()):
            return None
        return self.seconds["fit"] / self.steps["fit"], self.seconds["qat"] / self.steps["qat"]

    def close(self) -> None:
        self.bar.close()
