"""Bjontegaard metrics: exact identities, an analytic known value, input validation."""

from __future__ import annotations

import math

import pytest

from mcodec.evaluation.bdrate import bd_quality, bd_rate, front_bd_rate, pareto_front

RATES = [100.0, 180.0, 330.0, 600.0]
PSNR = [30.1, 32.6, 35.2, 37.4]


def test_scaled_rates_give_exact_percentage():
    assert bd_rate(RATES, PSNR, [0.8 * r for r in RATES], PSNR) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(RATES, PSNR, [1.25 * r for r in RATES], PSNR) == pytest.approx(25.0, abs=1e-9)


def test_equal_curves_give_zero():
    assert bd_rate(RATES, PSNR, RATES, PSNR) == 0.0
    assert bd_quality(RATES, PSNR, RATES, PSNR) == 0.0


def test_quality_shift_at_equal_rates():
    assert bd_quality(RATES, PSNR, RATES, [q + 1.0 for q in PSNR]) == pytest.approx(1.0, abs=1e-9)


def test_swapping_inverts_ratio():
    test_r, test_q = [90.0, 150.0, 290.0, 540.0, 900.0], [30.5, 32.4, 35.0, 37.2, 39.0]
    a = bd_rate(RATES, PSNR, test_r, test_q) / 100.0
    b = bd_rate(test_r, test_q, RATES, PSNR) / 100.0
    assert a != 0.0
    assert b == pytest.approx(1.0 / (1.0 + a) - 1.0, abs=1e-12)
    assert bd_quality(test_r, test_q, RATES, PSNR) == pytest.approx(-bd_quality(RATES, PSNR, test_r, test_q))


def test_point_order_does_not_matter():
    test_r, test_q = [90.0, 150.0, 290.0, 540.0], [30.5, 32.4, 35.0, 37.2]
    expected = bd_rate(RATES, PSNR, test_r, test_q)
    shuffled = bd_rate(
        RATES[::-1], PSNR[::-1], [test_r[i] for i in (2, 0, 3, 1)], [test_q[i] for i in (2, 0, 3, 1)]
    )
    assert shuffled == pytest.approx(expected, abs=1e-12)


def test_known_value_on_straight_lines():
    # pchip through collinear points is the line itself (all slope estimates equal), so the integrals are
    # analytic. With L = ln(rate):
    #   anchor: L = ln 100 + 0.20 (q - 30), q in {30, 33, 36, 39}
    #   test:   L = ln  80 + 0.15 (q - 32), q in {32, 35, 38, 41}
    # BD-rate: overlap q in [32, 39]; the difference is linear in q, so its mean is its value at the
    # midpoint q = 35.5: ln 0.8 + 0.15 * 3.5 - 0.20 * 5.5 = ln 0.8 - 0.575,
    # so BD-rate = (0.8 exp(-0.575) - 1) * 100 = -54.98...%.
    qa, qt = [30.0, 33.0, 36.0, 39.0], [32.0, 35.0, 38.0, 41.0]
    ra = [100.0 * math.exp(0.20 * (q - 30.0)) for q in qa]
    rt = [80.0 * math.exp(0.15 * (q - 32.0)) for q in qt]
    expected_rate = (0.8 * math.exp(-0.575) - 1.0) * 100.0
    assert expected_rate == pytest.approx(-54.98, abs=0.01)
    assert bd_rate(ra, qa, rt, qt) == pytest.approx(expected_rate, abs=1e-9)
    # BD-quality: q_anchor(L) = 30 + (L - ln 100) / 0.20 on L in [ln 100, ln 100 + 1.8],
    # q_test(L) = 32 + (L - ln 80) / 0.15 on L in [ln 80, ln 80 + 1.35]. Overlap [ln 100, ln 80 + 1.35];
    # again the mean difference is the difference at the midpoint m.
    m = (math.log(100.0) + math.log(80.0) + 1.35) / 2.0
    expected_quality = (32.0 + (m - math.log(80.0)) / 0.15) - (30.0 + (m - math.log(100.0)) / 0.20)
    assert bd_quality(ra, qa, rt, qt) == pytest.approx(expected_quality, abs=1e-9)


@pytest.mark.parametrize(
    "anchor, test, message",
    [
        (([100.0], [30.0]), (RATES, PSNR), "at least 2"),
        (([100.0, 0.0], [30.0, 28.0]), (RATES, PSNR), "positive"),
        (([100.0, -5.0], [30.0, 28.0]), (RATES, PSNR), "positive"),
        (([100.0, 200.0], [30.0, math.nan]), (RATES, PSNR), "finite"),
        (([100.0, math.inf], [30.0, 33.0]), (RATES, PSNR), "finite"),
        (([100.0, 200.0, 400.0], [30.0, 33.0, 32.0]), (RATES, PSNR), "increase strictly"),
        (([100.0, 100.0, 400.0], [30.0, 33.0, 36.0]), (RATES, PSNR), "increase strictly"),
        (([100.0, 200.0], [30.0, 33.0, 36.0]), (RATES, PSNR), "equal length"),
        ((RATES, PSNR), ([1000.0, 2000.0], [40.0, 42.0]), "overlap"),
    ],
)
def test_invalid_input_raises(anchor, test, message):
    with pytest.raises(ValueError, match=message):
        bd_rate(*anchor, *test)


def test_no_log_rate_overlap_raises():
    # Quality ranges overlap but the rate ranges do not.
    with pytest.raises(ValueError, match="log-rate ranges .* do not overlap"):
        bd_quality([10.0, 20.0], [30.0, 40.0], [100.0, 200.0], [35.0, 45.0])


def test_front_leaves_out_dominated_points_and_counts_them():
    """A point that costs more than a better-looking one is dropped from the front (bd_rate itself
    refuses such a curve); fronts that do not overlap give NaN, not an error."""
    test_r, test_q = [90.0, 85.0, 165.0, 300.0], [30.5, 31.0, 33.0, 36.0]
    assert pareto_front(test_r, test_q) == [1, 2, 3]  # 90 costs more than 85 and looks worse
    with pytest.raises(ValueError):
        bd_rate(RATES, PSNR, test_r, test_q)
    value, dropped = front_bd_rate(RATES, PSNR, test_r, test_q)
    assert dropped == 1 and value == pytest.approx(bd_rate(RATES, PSNR, test_r[1:], test_q[1:]))
    assert front_bd_rate(RATES, PSNR, RATES, PSNR) == (0.0, 0)
    value, dropped = front_bd_rate(RATES, PSNR, [1.0, 2.0], [50.0, 51.0])
    assert math.isnan(value) and dropped == 0
