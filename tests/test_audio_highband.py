"""The rvq codec's high band (FORMAT.md 6.3.2): a source sampled above 24 kHz keeps the level of its band
above 12 kHz, which the decoder fills with noise; other files are unchanged; damaged levels are refused."""

import numpy as np
import pytest
import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError, registry
from mcodec.codec.audio import highband as hb
from mcodec.entropy import read_container, write_container

RATE = 48000


def hiss(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A low tone plus white noise whose level steps up halfway: float32 [N]."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    noise = np.random.default_rng(seed).standard_normal(n) * np.where(t < seconds / 2, 0.01, 0.05)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + noise).astype(np.float32)


def band_db(x: np.ndarray, lo: float, hi: float, rate: int = RATE) -> float:
    """The rms level in dB of x's part between lo and hi Hz."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / rate)
    spectrum[(f < lo) | (f >= hi)] = 0
    return 10 * np.log10(np.mean(np.fft.irfft(spectrum, x.size) ** 2) + 1e-30)


def levels_of(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    an = hb.Analyser(rate)
    for i in range(0, x.size, 7777):  # pieces cut anywhere
        an.push(x[i : i + 7777])
    an.push(np.zeros(0, np.float32), final=True)
    return an.levels(*hb.frame_range(0, round(x.size * 24000 / rate)), x.size)


def test_bands_follow_the_source_rate():
    assert len(hb.bands(48000)) == len(hb.bands(44100)) == 5 and hb.bands(44100)[-1] == (21000.0, 22050.0)
    assert hb.bands(32000) == [(12000.0, 14000.0), (14000.0, 16000.0)]
    assert hb.bands(24000) == []


def test_the_levels_measure_each_band_and_the_noise_restores_it():
    """White noise of variance v has v (hi - lo) / (rate / 2) in each band: the levels hold it within a
    step, the levels follow it stepping up, and the rendered noise has it back within 1.5 dB."""
    x = hiss(4.0)
    levels = levels_of(x)
    assert levels.shape == (5, 50)
    for b, (lo, hi) in enumerate(hb.bands(RATE)):
        for var, frames in ((0.01**2, slice(3, 22)), (0.05**2, slice(28, 47))):
            expect = 10 * np.log10(var * (hi - lo) / (RATE / 2))
            got = hb.FLOOR_DB + hb.STEP_DB * levels[b, frames]
            assert np.abs(got - expect).max() <= hb.STEP_DB / 2 + 0.6, (b, got, expect)
    y = hb.Synthesizer(RATE, levels).render(0, x.size)
    assert band_db(y, 0, 11800) < band_db(y, 12000, 24000) - 40  # nothing below the band
    for lo, hi in hb.bands(RATE):
        for part in (slice(RATE // 4, 7 * RATE // 4), slice(9 * RATE // 4, 15 * RATE // 4)):
            assert abs(band_db(y[part], lo, hi) - band_db(x[part], lo, hi)) < 1.5


def test_the_noise_is_the_same_however_the_output_is_cut():
    levels = levels_of(hiss(2.0))
    synth = hb.Synthesizer(RATE, levels)
    whole = synth.render(0, 2 * RATE)
    cuts = [0, 1, 500, 513, 4097, 50000, 2 * RATE]
    pieces = np.concatenate([synth.render(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    np.testing.assert_array_equal(whole, pieces)


def test_levels_pack_and_unpack():
    levels = np.random.default_rng(1).integers(0, hb.MAX_LEVEL + 1, (5, 125)).astype(np.int32)
    levels[:, 60:] = 0  # silence codes too
    np.testing.assert_array_equal(hb.unpack(hb.pack(levels), 5, 125), levels)
    with pytest.raises(CodecError, match="AHBE"):
        hb.unpack(hb.pack(levels + 1), 5, 125)  # level 23
    np.testing.assert_array_equal(
        hb.unpack(hb.pack(levels[:, :1]), 5, 1), levels[:, :1]
    )  # first levels alone
    for bad in (b"\x05", bytes(5), hb.pack(levels[:, :1]) + b"\x00"):  # short, no steps, steps for none
        with pytest.raises(CodecError, match="AHBE"):
            hb.unpack(bad, 5, 125 if len(bad) <= 5 else 1)


def test_codec_fills_the_band_of_a_48k_source_only_when_asked(tiny_rvq):
    x = hiss(3.0)
    item = (torch.from_numpy(x)[None], RATE)
    with_band = encode_bytes(item, "audio", "rvq", 12, weights=tiny_rvq)
    without = encode_bytes(item, "audio", "rvq", 12, weights=tiny_rvq, high_band=False)
    assert [t for t, _ in read_container(with_band).chunks] == ["ASEG", "AHBE"]
    assert [t for t, _ in read_container(without).chunks] == ["ASEG"]
    y_with = decode_bytes(with_band, weights=tiny_rvq)[1][0][0].numpy()
    y_without = decode_bytes(without, weights=tiny_rvq)[1][0][0].numpy()
    added, part = y_with - y_without, slice(RATE // 4, 5 * RATE // 4)  # (the tiny model's output is no clip)
    assert abs(band_db(added[part], 12000, 24000) - band_db(x[part], 12000, 24000)) < 1.5
    assert band_db(added, 0, 11800) < band_db(added, 12000, 24000) - 40  # the rest is the same samples
    assert band_db(y_without, 12500, 24000) < band_db(x, 12500, 24000) - 20


def test_sources_at_24k_or_less_have_no_band(tiny_rvq):
    x = hiss(1.0, 16000)
    data = encode_bytes((torch.from_numpy(x)[None], 16000), "audio", "rvq", 6, weights=tiny_rvq)
    assert [t for t, _ in read_container(data).chunks] == ["ASEG"]


def test_long_files_carry_one_band_chunk_per_segment(tiny_rvq):
    x = hiss(21.0, 32000)
    data = encode_bytes((torch.from_numpy(x)[None], 32000), "audio", "rvq", 3, weights=tiny_rvq)
    assert [t for t, _ in read_container(data).chunks] == ["ASEG", "AHBE"] * 3
    off = encode_bytes(
        (torch.from_numpy(x)[None], 32000), "audio", "rvq", 3, weights=tiny_rvq, high_band=False
    )
    y = (
        decode_bytes(data, weights=tiny_rvq)[1][0][0].numpy()
        - decode_bytes(off, weights=tiny_rvq)[1][0][0].numpy()
    )
    assert y.size == x.size
    for seconds in (2, 12, 19):  # the band's level holds in every segment (the noise stepped up at 10.5 s)
        part = slice(seconds * 32000, (seconds + 1) * 32000)
        assert abs(band_db(y[part], 12000, 16000, 32000) - band_db(x[part], 12000, 16000, 32000)) < 1.5


def test_damaged_band_chunks_are_refused(tiny_rvq):
    item = (torch.from_numpy(hiss(2.0))[None], RATE)
    c = read_container(encode_bytes(item, "audio", "rvq", 12, weights=tiny_rvq))
    cases = {
        "twice": [c.chunks[0], c.chunks[1], c.chunks[1]],
        "first": [c.chunks[1], c.chunks[0]],
        "bad level": [c.chunks[0], ("AHBE", hb.pack(np.full((5, 25), 30, np.int32)))],
    }
    for chunks in cases.values():
        bad = write_container(type(c)(c.header, chunks))
        with pytest.raises(CodecError, match="AHBE"):
            decode_bytes(bad, weights=tiny_rvq)
    c16 = read_container(
        encode_bytes((torch.from_numpy(hiss(1.0, 16000))[None], 16000), "audio", "rvq", 6, weights=tiny_rvq)
    )
    bad = write_container(type(c16)(c16.header, [c16.chunks[0], c.chunks[1]]))
    with pytest.raises(CodecError, match="AHBE chunks in a file sampled at 16000 Hz"):
        decode_bytes(bad, weights=tiny_rvq)


def test_a_file_over_its_bitrate_sheds_a_stage_or_its_band(tiny_rvq):
    """At 8 stages a stage goes and the band stays; at 4 the band goes where that alone meets the request,
    else a stage; at one stage the band goes, then nothing is left to shed."""
    from mcodec.codec.audio.codec import BAND_FIRST

    codec = registry.get("rvq", tiny_rvq)
    item = (torch.from_numpy(hiss(0.5))[None], RATE)
    at6 = codec.encode(item, 6.0)
    assert at6.params["n_q"] > BAND_FIRST
    lower = codec.reduce_rate(at6, 1)
    assert [t for t, _ in lower.chunks] == ["ASEG", "AHBE"] and lower.params["n_q"] == at6.params["n_q"] - 1
    at3 = codec.encode(item, 3.0)
    band = len(at3.chunk("AHBE")) + 12
    assert at3.params["n_q"] == BAND_FIRST
    for excess in (None, 1, band):  # the band alone meets the request: it goes, the stages stay
        lower = codec.reduce_rate(at3, excess)
        assert [t for t, _ in lower.chunks] == ["ASEG"] and lower.params["n_q"] == BAND_FIRST
    lower = codec.reduce_rate(at3, band + 1)  # it does not: a stage goes, the band stays
    assert [t for t, _ in lower.chunks] == ["ASEG", "AHBE"] and lower.params["n_q"] == BAND_FIRST - 1
    assert lower.chunks[1] == at3.chunks[1]
    one = codec.encode(item, 0.75)
    assert [t for t, _ in codec.reduce_rate(one, 10**6).chunks] == ["ASEG"]
    assert codec.reduce_rate(codec.reduce_rate(one, 10**6), 10**6) is None


def test_cli_turns_the_band_off_and_refuses_it_for_other_codecs(tiny_rvq, tmp_path, capfd):
    from conftest import SAMPLE, run_cli

    from mcodec.codec.media_io import write_audio

    src = tmp_path / "hiss.flac"
    write_audio(src, torch.from_numpy(hiss(2.0))[None], RATE)
    for flag, chunks in (("--high-band", ["ASEG", "AHBE"]), ("--no-high-band", ["ASEG"])):
        out = tmp_path / f"{flag}.mcd"
        code, _, err = run_cli(capfd, "encode", src, out, flag, "--bitrate", 12, "--weights", tiny_rvq)
        assert code == 0, err
        assert [t for t, _ in read_container(out.read_bytes()).chunks] == chunks
    code, _, err = run_cli(capfd, "encode", SAMPLE, tmp_path / "img.mcd", "--no-high-band")
    assert code != 0 and "--high-band is for the rvq audio codec, not meanscale" in err


def test_the_reference_vector_holds_a_high_band():
    """bitstream_spec/vectors/goforward_48k_rvq_12k_hb.mcd (checked by test_vectors): 2 s of speech at 48 kHz
    with white noise of rms 0.003, then 0.03 from 1 s: its band above 12 kHz at about -53.8 dB, then -33.8
    dB (half the noise's power in 12-24 kHz), and so is the decoded one's."""
    from pathlib import Path

    data = (
        Path(__file__).parents[1] / "bitstream_spec" / "vectors" / "goforward_48k_rvq_12k_hb.mcd"
    ).read_bytes()
    c = read_container(data)
    assert [t for t, _ in c.chunks] == ["ASEG", "AHBE"]
    y = decode_bytes(data)[1][0][0].numpy()
    for part, rms in ((slice(6000, 42000), 0.003), (slice(54000, 90000), 0.03)):
        assert abs(band_db(y[part], 12500, 23500) - 10 * np.log10(rms**2 * 11000 / 24000)) < 1.5


def test_a_source_with_nothing_above_12k_gets_no_band(tiny_rvq):
    """Noise sampled at 16 kHz and resampled to 48 kHz: every level is the resampler's residue, below
    AUDIBLE, so no AHBE is written."""
    import torchaudio

    x = torchaudio.functional.resample(torch.from_numpy(hiss(2.0, 16000))[None], 16000, RATE)
    data = encode_bytes((x, RATE), "audio", "rvq", 12, weights=tiny_rvq)
    assert [t for t, _ in read_container(data).chunks] == ["ASEG"]
