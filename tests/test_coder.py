"""Exactness of every entropy primitive: decode(encode(s)) == s, escapes and empty input included."""

import numpy as np
import pytest

from mcodec.entropy import (
    EntropyDecodeError,
    TableSet,
    decode_categorical,
    decode_factorized,
    decode_gaussian,
    decode_indexed,
    encode_categorical,
    encode_factorized,
    encode_gaussian,
    encode_indexed,
    gaussian_tables,
    scale_indexes,
)

RNG = np.random.default_rng(1)
EXTREMES = np.array([-(2**31), 2**31 - 1, -1000, 1000, 0], dtype=np.int64)


def small_tables(k=3):
    return TableSet.from_pmfs(
        [RNG.dirichlet(np.ones(5 + i)) for i in range(k)], offsets=[-2, 0, 3][:k], tail_masses=[1e-6] * k
    )


def test_categorical_roundtrip_with_escapes():
    t = small_tables(1)
    s = np.concatenate([RNG.integers(-2, 3, 1000), EXTREMES])
    data = encode_categorical(s, t)
    assert np.array_equal(decode_categorical(data, s.size, t), s)


def test_indexed_roundtrip_many_tables_and_escapes():
    t = small_tables(3)
    idx = RNG.integers(0, 3, 5000)
    s = t.offsets[idx] + RNG.integers(-3, 10, idx.size)  # some below/above each table's range
    s[:5] = EXTREMES
    data = encode_indexed(s, idx, t)
    assert np.array_equal(decode_indexed(data, idx, t), s)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_empty_and_tiny_inputs(n):
    t = small_tables(2)
    idx = np.arange(n) % 2
    s = np.full(n, 1, dtype=np.int64)
    data = encode_indexed(s, idx, t)
    assert np.array_equal(decode_indexed(data, idx, t), s)
    assert decode_categorical(encode_categorical(np.zeros(0, int), t), 0, t).size == 0


def test_factorized_roundtrip_keeps_shape():
    t = small_tables(3)
    s = RNG.integers(-4, 9, size=(3, 7, 5))
    out = decode_factorized(encode_factorized(s, t), s.shape, t)
    assert out.shape == s.shape and np.array_equal(out, s)
    with pytest.raises(ValueError):
        encode_factorized(s[:2], t)


def test_gaussian_roundtrip_and_rate_close_to_information_content():
    tables = gaussian_tables()
    n = 200_000
    sigma = np.exp(RNG.uniform(np.log(0.11), np.log(40), n))
    mu = RNG.normal(0, 3, n)
    y = mu + sigma * RNG.normal(0, 1, n)
    y[:3] = [1e9, -1e9, 0]  # far outside every table: escaped
    idx = scale_indexes(sigma)
    data = encode_gaussian(y, mu, idx, tables)
    y_hat = decode_gaussian(data, mu, idx, tables)
    residual = np.rint(y - mu)
    assert np.array_equal(y_hat, residual + mu)
    ideal = tables.information_bits(residual.astype(np.int64), idx.astype(np.int64))
    assert 8 * len(data) <= ideal * 1.001 + 64


def test_scale_indexes_snap_up_and_clamp():
    from mcodec.entropy import scale_table

    table = scale_table()
    idx = scale_indexes(np.array([0.0, table[0], table[3] * 1.0001, 1e9, np.nan]))
    assert list(idx) == [0, 0, 4, 63, 63]


def test_decoder_rejects_misaligned_streams_and_garbage_that_does_not_end_as_a_stream():
    """The streams no encoder writes are refused: a length that is not whole 32-bit words, a last word of
    zero (constriction's ANS state never ends in one), and words that decode their symbols without ending
    at the initial state (FORMAT.md 5.4 step 5). Garbage that does end there is a stream: every rANS
    state maps to a slot of the table and an escape reads any 32 bits, so it decodes to one int32 per
    index, the same every time, and those symbols code back to exactly the same words (the container's
    CRC is what catches such corruption)."""
    t = small_tables(2)
    idx = np.arange(100) % 2
    with pytest.raises(EntropyDecodeError, match="multiple of 4"):
        decode_indexed(b"abc", idx, t)
    with pytest.raises(EntropyDecodeError):
        decode_indexed(b"abcd" + bytes(4), idx, t)
    refused = 0
    for seed in range(40):
        junk = np.random.default_rng(seed).bytes(4 * (seed % 20))  # seed 0: no words at all
        assert junk[-4:] != bytes(4)
        try:
            out = decode_indexed(junk, idx, t)
        except EntropyDecodeError:
            refused += 1
            continue
        assert out.shape == (100,) and out.dtype == np.int32
        assert np.array_equal(decode_indexed(junk, idx, t), out)
        assert encode_indexed(out, idx, t) == junk
    assert refused >= 30, refused  # the end-state check refuses most garbage


def test_a_stream_that_does_not_end_at_the_initial_state_is_refused():
    """FORMAT.md 5.4 step 5: an encoder's stream ends at x = 0 with no words left; a stream that decodes
    its symbols but has data left over (a word appended, or fewer symbols asked for) is corrupt."""
    t = small_tables(2)
    idx = RNG.integers(0, 2, 500)
    s = RNG.integers(-2, 5, 500)
    data = encode_indexed(s, idx, t)
    assert np.array_equal(decode_indexed(data, idx, t), s)
    with pytest.raises(EntropyDecodeError, match="does not end"):
        decode_indexed(data, idx[:-40], t)
    with pytest.raises(EntropyDecodeError, match="does not end"):
        decode_indexed(data + (12345).to_bytes(4, "little"), idx, t)
    assert decode_indexed(b"", np.zeros(0, int), t).size == 0


def test_index_out_of_range_is_refused():
    t = small_tables(2)
    with pytest.raises(ValueError):
        encode_indexed(np.zeros(3, int), np.array([0, 1, 2]), t)


def test_frozen_gaussian_tables_match_their_generator():
    """The shipped tables are the generator's output (to one count in 2^24: another libm may round one
    probability differently, which is why they are frozen) and carry the hash FORMAT.md states."""
    from pathlib import Path

    from mcodec.entropy import scale_table
    from mcodec.entropy.gaussian import FROZEN_SHA256, build_gaussian_tables, build_scale_table

    frozen, built = gaussian_tables(), build_gaussian_tables()
    assert frozen.sha256().hex() == FROZEN_SHA256
    assert np.array_equal(frozen.lengths, built.lengths) and np.array_equal(frozen.offsets, built.offsets)
    assert np.abs(frozen.freqs.astype(np.int64) - built.freqs).max() <= 1
    assert np.allclose(scale_table(), build_scale_table(), rtol=1e-15, atol=0)
    spec = Path(__file__).resolve().parents[1] / "bitstream_spec" / "FORMAT.md"
    assert FROZEN_SHA256 in spec.read_text()
