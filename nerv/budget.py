"""Planning a video encode to a time budget (``--max-minutes``): the epochs per group that make the whole
clip's fit take about the budget on the device it runs on, from the measured seconds of a fit step and a
fine-tune step (``fit.time_steps``), re-planned before each group from the steps the fit has made so far.

The bitstream does not record the epochs: a planned encode is an ordinary file, only its fit is shorter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LEAST = (1, 1)  # the fewest (fit, fine-tune) epochs a plan chooses: every frame seen once in each phase
# The share of the time left that a plan gives to optimizer steps; the rest covers reading the frames,
# entropy coding and timing noise (the first steps of a group are slower than the measured median).
SHARE = 0.9
PACE_SHARE = 0.97  # of the time left, what a group's Pacer lets its steps overrun the plan into
PACE_STEPS = 9  # steps whose median pace a Pacer projects (robust to one slow step)


@dataclass(frozen=True)
class Plan:
    epochs: tuple[int, int]  # (fit, fine-tune) per group
    seconds: float  # expected for the groups planned
    fits: bool  # within the budget; False: LEAST, over it


def plan_epochs(
    seconds: float, steps_per_epoch: int, step_s: tuple[float, float], most: tuple[float, float]
) -> Plan:
    """The longest schedule no longer than ``most`` (the preset's), scaled down at its ratio of fit to
    fine-tune epochs, whose optimizer steps take at most ``seconds``. steps_per_epoch: summed over the
    groups to plan; step_s: seconds of a fit step and of a fine-tune step."""

    def cost(fit: int, qat: int) -> float:
        return steps_per_epoch * (fit * step_s[0] + qat * step_s[1])

    top = max(LEAST[0], int(most[0]))
    for fit in range(top, LEAST[0] - 1, -1):
        qat = min(max(LEAST[1], round(fit * most[1] / most[0])), max(LEAST[1], int(most[1])))
        if cost(fit, qat) <= seconds:
            return Plan((fit, qat), cost(fit, qat), True)
    return Plan(LEAST, cost(*LEAST), False)


class Budget:
    """A deadline ``minutes`` from now for a clip's fit, and the plan for the groups still to fit."""

    def __init__(
        self, minutes: float, most: tuple[float, float], clock: Callable[[], float] = time.perf_counter
    ):
        self.minutes, self.most, self.clock = minutes, most, clock
        self.deadline = clock() + 60 * minutes

    def left(self) -> float:
        """Seconds to the deadline."""
        return self.deadline - self.clock()

    def plan(self, steps_per_epoch: int, step_s: tuple[float, float]) -> Plan:
        """The plan for the groups still to fit (``steps_per_epoch`` summed over them) in SHARE of the
        time left."""
        return plan_epochs(SHARE * max(0.0, self.left()), steps_per_epoch, step_s, self.most)

    def until(self, share: float) -> float:
        """When a group with ``share`` of the steps left should end: that share of PACE_SHARE of the time
        left (the rest is for entropy coding and writing the file)."""
        return self.clock() + PACE_SHARE * max(0.0, self.left()) * share


class Pacer:
    """Keeps one group's fit within its share of the budget when the machine slows down after the plan (a
    shared machine's load changes): at the recent pace (the median of the last PACE_STEPS steps against
    the planned step seconds) it ends the fit phase early where one more fit step and the whole fine-tune
    would overrun ``until`` (the fine-tune steps are kept), the fine-tune where its next step would. Use as
    ``fit_group``'s on_step."""

    def __init__(
        self,
        until: float,
        steps: tuple[int, int],
        step_s: tuple[float, float],
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.until, self.left, self.step_s, self.clock = until, list(steps), step_s, clock
        self.last, self.ratios, self.skipped = clock(), [], 0

    def __call__(self, phase: str, mse: float | None = None) -> bool:
        """After a step of ``phase`` ('fit' or 'qat'): True to end the phase now."""
        now, k = self.clock(), 0 if phase == "fit" else 1
        self.ratios = (self.ratios + [(now - self.last) / self.step_s[k]])[-PACE_STEPS:]
        self.last = now
        self.left[k] -= 1
        pace = sorted(self.ratios)[len(self.ratios) // 2] if len(self.ratios) >= 3 else 1.0
        rest = self.step_s[0] + self.step_s[1] * self.left[1] if k == 0 else self.step_s[1]
        if self.left[k] > 0 and now + pace * rest > self.until:
            self.skipped += self.left[k]
            self.left[k] = 0
            return True
        return False


def duration(seconds: float) -> str:
    """'40 s', '12.5 min', '3.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
