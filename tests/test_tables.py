import numpy as np
import pytest

from mcodec.entropy import PRECISION, TableSet, quantize_pmf


def test_quantize_pmf_sums_to_total_and_keeps_every_symbol():
    pmf = np.array([0.5, 0.25, 1e-30, 0.25 - 1e-30, 0.0])
    f = quantize_pmf(pmf, tail_mass=1e-12)
    assert f.sum() == 1 << PRECISION
    assert f.min() >= 1 and f.size == pmf.size + 1
    assert abs(f[0] / (1 << PRECISION) - 0.5) < 1e-6


def test_quantize_pmf_survives_nan_and_all_zero():
    assert quantize_pmf(np.array([np.nan, np.inf, -1.0])).sum() == 1 << PRECISION
    assert quantize_pmf(np.zeros(3)).sum() == 1 << PRECISION


def test_tableset_rejects_inconsistent_tables():
    good = TableSet.from_pmfs([np.ones(3)], [0])
    with pytest.raises(ValueError):
        TableSet(good.freqs * 2, good.offsets, good.lengths)  # does not sum to 2**PRECISION
    with pytest.raises(ValueError):
        TableSet(good.freqs, good.offsets, good.lengths + 1)  # length beyond the row
    bad = good.freqs.copy()
    bad[0, 0] += bad[0, 1]
    bad[0, 1] = 0  # a zero-frequency symbol cannot be coded
    with pytest.raises(ValueError):
        TableSet(bad, good.offsets, good.lengths)


def test_hash_is_stable_and_content_sensitive():
    a = TableSet.from_pmfs([np.array([0.2, 0.8]), np.ones(5)], [0, -2])
    b = TableSet.from_pmfs([np.array([0.2, 0.8]), np.ones(5)], [0, -2])
    c = TableSet.from_pmfs([np.array([0.2, 0.8]), np.ones(5)], [0, -1])
    assert a.sha256() == b.sha256() != c.sha256()


def test_effective_frequencies_are_a_valid_model_close_to_the_stored_one():
    t = TableSet.from_pmfs([np.array([0.9, 0.05, 0.05]), np.ones(1000)], [0, 0], [1e-9, 1e-9])
    for k in range(2):
        e = t.effective_freqs(k)
        f = t.freqs[k, : t.lengths[k] + 1]
        assert e.sum() == 1 << PRECISION and e.min() >= 1 and e.size == f.size
        assert np.abs(e - f).max() <= 1 + f.size * f.max() // (1 << PRECISION) + 1
