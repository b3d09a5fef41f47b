"""Bjontegaard delta metrics between two rate-distortion curves.

``bd_rate`` is the average rate difference (percent) of the test codec against the anchor at equal
quality; negative means the test codec needs fewer bits. ``bd_quality`` (BD-PSNR when quality is PSNR)
is the average quality difference at equal rate, in the unit of the input quality.

Method, as in current JVET CTC and AOM/AVM tools (not the original 2001 cubic polyfit): each curve is
interpolated with a piecewise cubic Hermite (pchip) spline -- log(rate) as a function of quality for
BD-rate, quality as a function of log(rate) for BD-quality -- and both splines are integrated over the
interval where the two curves overlap. The mean log-rate difference ``d`` gives ``(exp(d) - 1) * 100``.
Rates may be in any unit (bits, bpp, kbit/s) as long as both curves use the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

__all__ = ["bd_rate", "bd_quality", "pareto_front", "front_bd_rate"]


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one RD curve and return (log rate, quality), sorted by increasing rate."""
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.ndim != 1 or q.ndim != 1 or r.shape != q.shape:
        raise ValueError(f"{name}: rate and quality must be 1-D sequences of equal length")
    if r.size < 2:
        raise ValueError(f"{name}: need at least 2 rate-distortion points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"{name}: rates and qualities must be finite")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be positive")
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    # Both interpolation directions need a strictly monotonic curve; a non-monotonic point is an
    # encoder or measurement problem the caller should see, so nothing is silently dropped.
    if np.any(np.diff(r) <= 0) or np.any(np.diff(q) <= 0):
        raise ValueError(f"{name}: quality must increase strictly with rate (no repeated rates or qualities)")
    return np.log(r), q


def _mean_gap(x_a: np.ndarray, y_a: np.ndarray, x_t: np.ndarray, y_t: np.ndarray, what: str) -> float:
    """Mean of pchip(test) - pchip(anchor) over the overlap of the two x ranges (x increasing)."""
    lo, hi = max(x_a[0], x_t[0]), min(x_a[-1], x_t[-1])
    if not hi > lo:
        raise ValueError(f"the {what} ranges of the anchor and test curves do not overlap")
    area_a = PchipInterpolator(x_a, y_a).integrate(lo, hi)
    area_t = PchipInterpolator(x_t, y_t).integrate(lo, hi)
    return float((area_t - area_a) / (hi - lo))


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float:
    """Bjontegaard delta rate in percent: average rate change of test vs anchor at equal quality.

    Each argument is a sequence of >= 2 values (one per RD point, any order); rates > 0 in a common
    unit, quality in any unit where higher is better (e.g. PSNR dB). -20.0 means the test codec
    needs 20% fewer bits on average over the shared quality range.
    """
    la, qa = _curve(anchor_rate, anchor_quality, "anchor")
    lt, qt = _curve(test_rate, test_quality, "test")
    return (float(np.exp(_mean_gap(qa, la, qt, lt, "quality"))) - 1.0) * 100.0


def bd_quality(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float:
    """Bjontegaard delta quality (BD-PSNR for PSNR input): average quality gain of test vs anchor.

    Same inputs as ``bd_rate``; the result is in the unit of the quality values (e.g. dB), averaged
    over the shared log-rate range. Positive means the test codec is better at equal rate.
    """
    la, qa = _curve(anchor_rate, anchor_quality, "anchor")
    lt, qt = _curve(test_rate, test_quality, "test")
    return _mean_gap(la, qa, lt, qt, "log-rate")


def pareto_front(rate: Sequence[float], quality: Sequence[float]) -> list[int]:
    """Indexes of the points no other point beats, by increasing rate: a point that costs more than a
    better-looking one (a non-monotonic curve, such as one file's lowest quality on a nearly flat
    gradient) is one nobody would pick."""
    keep: list[int] = []
    for i in sorted(range(len(rate)), key=lambda i: (rate[i], -quality[i])):
        if not keep or quality[i] > quality[keep[-1]]:
            keep.append(i)
    return keep


def front_bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> tuple[float, int]:
    """``bd_rate`` on each curve's ``pareto_front``, and how many dominated points were left out; NaN
    where the fronts do not overlap (or keep fewer than 2 points). For one file's curves, which are not
    always monotonic, where ``bd_rate`` itself refuses a curve rather than drop a point silently."""
    a, t = pareto_front(anchor_rate, anchor_quality), pareto_front(test_rate, test_quality)
    dropped = len(anchor_rate) + len(test_rate) - len(a) - len(t)
    try:
        value = bd_rate(
            [anchor_rate[i] for i in a],
            [anchor_quality[i] for i in a],
            [test_rate[i] for i in t],
            [test_quality[i] for i in t],
        )
    except ValueError:
        value = float("nan")
    return value, dropped
