"""The rvq decoder's pitch postfilter (FORMAT.md 6.3.1): it finds the period of voiced sound, thins the noise
between its harmonics below 2 kHz, leaves unvoiced sound alone, and only files that ask for it get it."""

import math

import numpy as np
import pytest
import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.audio import postfilter as pf
from mcodec.entropy import read_container, write_container

RATE = pf.RATE


def voiced(seconds: float, f0: float = 150.0, glide: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """(a harmonic tone whose pitch glides around f0, its pitch period in samples at each sample)."""
    t = np.arange(int(seconds * RATE)) / RATE
    freq = f0 + glide * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 25)) * 0.2
    return x, RATE / freq


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * math.log10((clean**2).sum() / ((noisy - clean) ** 2).sum())


def si_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR after the best gain: the comb lifts the harmonics by sqrt(1 + g), which is no noise."""
    return snr_db(clean * (noisy @ clean) / (clean @ clean), noisy)


def lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(x.size, 1 / RATE) > cutoff] = 0
    return np.fft.irfft(spectrum, x.size)


def test_the_pitch_track_follows_a_gliding_tone_and_calls_it_voiced():
    x, period = voiced(2.0)
    centres, lag, voicing = pf.pitch_track(torch.from_numpy(x))
    true = period[centres.long().numpy()]
    inner = slice(10, -10)  # the windows of the first and last 50 ms reach past the ends
    assert np.abs(lag.numpy() - true)[inner].max() < 1.0  # samples at 24 kHz, out of 130-200
    assert voicing[inner].min().item() > 0.95


def test_noise_is_left_alone():
    noise = torch.from_numpy(np.random.default_rng(1).standard_normal(RATE) * 0.1).float()
    _, _, voicing = pf.pitch_track(noise.double())
    assert voicing.median().item() < pf.VOICED  # below the threshold: mostly no comb at all
    y = pf.pitch_postfilter(noise, 4)
    assert y.shape == noise.shape and y.dtype == torch.float32
    assert snr_db(noise.numpy(), y.numpy()) > 20  # what the comb changes in noise is small


def test_the_comb_thins_noise_between_harmonics_below_2_khz_only():
    x, _ = voiced(1.5)
    noise = np.random.default_rng(2).standard_normal(x.size) * 0.03
    noisy = torch.from_numpy(x + noise).float()
    y = pf.pitch_postfilter(noisy, 2).double().numpy()
    low_before = si_snr_db(lowpass(x, 1800), lowpass(noisy.numpy(), 1800))
    low_after = si_snr_db(lowpass(x, 1800), lowpass(y, 1800))
    assert low_after > low_before + 2  # dB: the harmonics kept, the noise between them thinned
    # the band above the comb's cut-off is untouched (away from the ends, where the FFT's low-pass wraps)
    high, high_y = (v - lowpass(v, 3000) for v in (noisy.numpy(), y))
    inner = slice(2400, -2400)
    assert snr_db(high[inner], high_y[inner]) > 30


def test_strength_zero_and_tiny_spans_are_the_identity_and_strength_scales_the_change():
    x = torch.from_numpy(voiced(0.5)[0] + np.random.default_rng(3).standard_normal(RATE // 2) * 0.03).float()
    assert torch.equal(pf.pitch_postfilter(x, 0), x)
    assert torch.equal(pf.pitch_postfilter(x[:1], 4), x[:1])
    changes = [(pf.pitch_postfilter(x, s) - x).abs().mean().item() for s in range(pf.MAX_STRENGTH + 1)]
    assert changes[0] == 0 and all(a < b for a, b in zip(changes, changes[1:], strict=False))


def test_files_carry_the_strength_and_decode_with_it(tiny_rvq):
    x, _ = voiced(3.0)  # long enough for the header's bytes to shed nothing
    audio = torch.from_numpy(x + np.random.default_rng(4).standard_normal(x.size) * 0.02).float()[None]
    default = encode_bytes((audio, RATE), "audio", "rvq", 6, weights=tiny_rvq, postfilter=2)
    off = encode_bytes((audio, RATE), "audio", "rvq", 6, weights=tiny_rvq, postfilter=0)
    c, c_off = read_container(default), read_container(off)
    assert c.header.params["postfilter"] == 2 and "postfilter" not in c_off.header.params
    assert c.chunks == c_off.chunks  # the codes are the same: the filter is the decoder's alone
    filtered, plain = decode_bytes(default, weights=tiny_rvq)[1][0], decode_bytes(off, weights=tiny_rvq)[1][0]
    assert not torch.equal(filtered, plain)
    # the same codes, the strength set to 0 in the header: the unfiltered samples
    c.header.params["postfilter"] = 0
    assert torch.equal(decode_bytes(write_container(c), weights=tiny_rvq)[1][0], plain)


def test_the_encoder_chooses_the_strength_whose_decode_is_closest_to_the_source():
    from mcodec.codec.audio.postfilter_choice import StrengthChooser

    x, _ = voiced(1.5)
    noise = np.random.default_rng(5).standard_normal(x.size) * 0.03
    clean, noisy = torch.from_numpy(x).float(), torch.from_numpy(x + noise).float()
    core = slice(2400, x.size - 2400)  # a segment's core inside its span
    # a decode that blurs a clean voice with noise: the comb brings it back, so a strong one is chosen
    blurred = StrengthChooser(default=2)
    blurred.add(clean[core], noisy, core)
    assert blurred.best() >= 3
    assert blurred.distance[blurred.best()] < blurred.distance[0]
    # the noise is the source's own and the decode has it: any comb moves away, so none is chosen
    faithful = StrengthChooser(default=2)
    faithful.add(noisy[core], noisy, core)
    assert faithful.best() == 0
    # nothing to go by (silence, nothing analysed): the default
    silent = StrengthChooser(default=2)
    silent.add(torch.zeros(1000), noisy[:3000], slice(1000, 2000))
    assert silent.best() == 2 and StrengthChooser(default=3).best() == 3


def test_by_default_the_encoder_writes_the_strength_it_chose_on_the_first_seconds(tiny_rvq, monkeypatch):
    from mcodec.codec import registry
    from mcodec.codec.audio import codec as rvq_codec

    seen = []
    monkeypatch.setattr(rvq_codec.StrengthChooser, "add", lambda self, x, *_: seen.append(x.numel()))
    codec = registry.get("rvq", tiny_rvq)
    audio = torch.from_numpy(voiced(25.0)[0]).float()[None]  # three 10 s segments
    for chosen in (3, 0):
        monkeypatch.setattr(rvq_codec.StrengthChooser, "best", lambda self, s=chosen: s)
        payload = codec.encode((audio, RATE), 1.5, preset="fast")
        assert payload.params.get("postfilter", 0) == chosen  # 0: no param, as files without the filter
        assert seen == [rvq_codec.CHOOSE_SAMPLES]  # the file's first seconds only
        seen.clear()
    assert "postfilter" not in codec.encode((audio, RATE), 1.5, preset="fast", postfilter=0).params
    assert not seen  # a strength given: nothing synthesized


@pytest.mark.parametrize("bad", [5, -1, 1.5, "2"])
def test_a_bad_strength_is_refused_by_encoder_and_decoder(tiny_rvq, bad):
    audio = torch.zeros(1, RATE // 10)
    with pytest.raises(CodecError, match="postfilter"):
        encode_bytes((audio, RATE), "audio", "rvq", 6, weights=tiny_rvq, postfilter=bad)
    c = read_container(encode_bytes((audio, RATE), "audio", "rvq", 6, weights=tiny_rvq))
    c.header.params["postfilter"] = bad
    with pytest.raises(CodecError, match="rvq params: postfilter"):
        decode_bytes(write_container(c), weights=tiny_rvq)


def test_the_reference_vector_holds_the_postfilter():
    """bitstream_spec/vectors/goforward_rvq_6k_pf.mcd (checked by test_vectors) is filtered: its strength is
    the encoder's fixed default and its samples are not those of the same codes unfiltered."""
    from pathlib import Path

    data = (Path(__file__).parents[1] / "bitstream_spec" / "vectors" / "goforward_rvq_6k_pf.mcd").read_bytes()
    c = read_container(data)
    assert c.header.params["postfilter"] == 2
    c.header.params["postfilter"] = 0
    assert not torch.equal(decode_bytes(data)[1][0], decode_bytes(write_container(c))[1][0])


def test_a_file_over_its_bitrate_keeps_the_postfilter_as_it_sheds_a_stage(tiny_rvq):
    from mcodec.codec import registry

    codec = registry.get("rvq", tiny_rvq)
    audio = torch.from_numpy(voiced(0.5)[0]).float()[None]
    payload = codec.encode((audio, RATE), 6.0, postfilter=2)
    lower = codec.reduce_rate(payload)
    assert lower.params["postfilter"] == 2 and lower.params["n_q"] == payload.params["n_q"] - 1


def test_cli_sets_the_strength_and_refuses_it_for_other_codecs(tiny_rvq, tmp_path, capfd):
    from conftest import SAMPLE, run_cli

    from mcodec.codec.media_io import write_audio

    src = tmp_path / "voiced.wav"
    write_audio(src, torch.from_numpy(voiced(3.0)[0]).float()[None], RATE)
    for strength in (0, 3):
        out = tmp_path / f"s{strength}.mcd"
        code, _, err = run_cli(capfd, "encode", src, out, "--postfilter", strength, "--weights", tiny_rvq)
        assert code == 0, err
        assert read_container(out.read_bytes()).header.params.get("postfilter", 0) == strength
    code, _, err = run_cli(capfd, "encode", SAMPLE, tmp_path / "img.mcd", "--postfilter", 2)
    assert code != 0 and "--postfilter is for the rvq audio codec, not meanscale" in err
    code, _, err = run_cli(capfd, "encode", src, tmp_path / "x.mcd", "--postfilter", 5, "--weights", tiny_rvq)
    assert code != 0 and "--postfilter" in err
