"""The RVQ audio codec with a tiny model: any rate and channel count in and back out, segments,
bitrates, the rate guarantee of the uniform fallback, bad input."""

import math
from fractions import Fraction

import pytest
import torch

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.audio.model import RVQAutoencoder, codebooks_for
from mcodec.entropy import read_container


@pytest.fixture(scope="module")
def weights(tiny_rvq):
    return tiny_rvq


def tone(channels: int, seconds: float, rate: int) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return torch.stack([0.3 * torch.sin(2 * math.pi * (220 + 110 * c) * t) for c in range(channels)])


@pytest.mark.parametrize("channels, seconds, rate", [(2, 21.5, 44100), (1, 0.01, 16000), (1, 3.0, 24000)])
def test_roundtrip_keeps_rate_length_and_channels(weights, channels, seconds, rate):
    audio = tone(channels, seconds, rate)
    data = encode_bytes((audio, rate), "audio", "rvq", 6, weights=weights)
    container, (decoded, out_rate) = decode_bytes(data, weights=weights)
    assert out_rate == rate and decoded.shape == audio.shape and torch.isfinite(decoded).all()
    segments = math.ceil(container.header.params["model_samples"] / 240000)
    assert [t for t, _ in container.chunks] == ["ASEG"] * segments
    assert container.header.params["coded_channels"] == 1


@pytest.mark.parametrize("kbps", [1.5, 3, 6, 12])
def test_bitrates_and_real_rate_at_most_nominal(weights, kbps):
    audio = tone(1, 30.0, 24000) + 0.05 * torch.randn(1, 30 * 24000)
    data = encode_bytes((audio, 24000), "audio", "rvq", kbps, weights=weights)
    c = read_container(data)
    assert c.header.params["n_q"] == codebooks_for(kbps)  # 30 s: the container's bytes shed no stage
    payload = sum(len(p) for _, p in c.chunks)
    # the uniform fallback caps every stage at 10 bits; the segments' 0.2 s overlaps add 2%
    assert payload * 8 / 30.0 / 1000 <= kbps * 1.03
    assert len(data) * 8 / 30.0 / 1000 <= kbps * 1.1


def test_short_files_shed_stages_to_meet_the_bitrate(weights):
    """A 1 s clip at 1.5 kbit/s: the ~115 container bytes alone are 0.9 kbit/s, so stages are shed to the
    last one. The decoded clip keeps its length; ``kbps`` still says what was asked."""
    audio = tone(1, 1.0, 16000) + 0.05 * torch.randn(1, 16000)
    data = encode_bytes((audio, 16000), "audio", "rvq", 1.5, weights=weights)
    params = read_container(data).header.params
    assert params["kbps"] == 1.5 and params["n_q"] == 1
    _, (decoded, rate) = decode_bytes(data, weights=weights)
    assert rate == 16000 and decoded.shape == audio.shape
    assert len(encode_bytes((audio, 16000), "audio", "rvq", 12, weights=weights)) * 8 / 1000 <= 12 * 1.1


def test_shedding_a_stage_is_coding_with_one_stage_fewer(weights):
    from mcodec.codec.audio.codec import RVQAudioCodec

    codec = RVQAudioCodec(weights)
    item = (tone(1, 11.0, 16000), 16000)  # two segments
    # greedy search: its first k stages are exactly a k-stage code (a beam's need not be)
    shed = codec.reduce_rate(codec.encode(item, 12, preset="fast", postfilter=0))
    direct = codec.encode(item, 11.25, preset="fast", postfilter=0)
    assert shed.params == {**direct.params, "kbps": 12.0} and shed.params["n_q"] == 15
    assert shed.chunks == direct.chunks
    one = codec.encode(item, 0.75, postfilter=0)
    assert one.params["n_q"] == 1 and codec.reduce_rate(one) is None


def test_beam_search_of_width_one_is_greedy_and_of_full_width_exact():
    from mcodec.codec.audio.rvq import ResidualVQ, beam_search

    torch.manual_seed(0)
    rvq = ResidualVQ(dim=4, n_q=3, size=8)
    for cb in rvq.codebooks:
        cb.embedding.normal_()
    x = torch.randn(2, 4, 50)
    flat = x.permute(0, 2, 1).reshape(-1, 4)
    books = [cb.embedding for cb in rvq.codebooks]
    residual, greedy = flat, []  # each stage's nearest code, as training quantizes
    for cb in rvq.codebooks:
        greedy.append(cb.encode(residual))
        residual = residual - cb.decode(greedy[-1])
    assert torch.equal(beam_search(flat, books, 1), torch.stack(greedy))
    # two stages, a beam as wide as a codebook: every pair is weighed, so the best pair is found
    pair = beam_search(flat, books[:2], 8)
    sums = (books[0][:, None] + books[1][None]).reshape(64, 4)
    best = torch.cdist(flat, sums).argmin(1)
    assert torch.equal(pair, torch.stack([best // 8, best % 8]))

    def error(codes):
        return (rvq.decode(codes.reshape(3, 2, 50)) - x).pow(2).sum()

    assert error(rvq.encode(x, 3, beam=4)) < error(rvq.encode(x, 3))


def test_a_rate_aware_search_trades_error_for_bits():
    from mcodec.codec.audio.rvq import beam_search

    torch.manual_seed(0)
    books = [torch.randn(16, 4) for _ in range(3)]
    bits = [torch.rand(16) * 8 + 1 for _ in range(3)]
    x = torch.randn(60, 4)
    assert torch.equal(beam_search(x, books, 4, bits, 0.0), beam_search(x, books, 4))
    # a rate weighing everything: each stage's cheapest code, whatever the error
    cheapest = beam_search(x, books, 1, bits, 1e9)
    assert all((cheapest[k] == bits[k].argmin()).all() for k in range(3))

    def cost(codes):
        error = (x - sum(b[c] for b, c in zip(books, codes, strict=True))).square().sum()
        return error.item(), sum(b[c].sum() for b, c in zip(bits, codes, strict=True)).item()

    (e0, r0), (e1, r1) = cost(beam_search(x, books, 4)), cost(beam_search(x, books, 4, bits, 0.5))
    assert e1 > e0 and r1 < r0


def test_a_file_over_its_request_keeps_its_stages_where_its_codes_can_cost_less(tmp_path):
    """Rate control re-searches a short file's codes for fewer bytes before it drops a stage, and drops
    the stage where that cannot save the bytes asked for."""
    from mcodec.codec.audio.codec import RVQAudioCodec
    from mcodec.codec.training.export import export_rvq_model

    torch.manual_seed(0)  # (the shared tiny model's later codebooks are all zero: nothing to trade)
    model = RVQAutoencoder(base=4, dim=16, n_q=4).eval()
    for k, cb in enumerate(model.quantizer.codebooks):
        cb.embedding.normal_(std=0.3 / (k + 1))
    audio = tone(1, 2.0, 24000) + 0.05 * torch.randn(1, 48000)
    codes = model.encode(audio[None], 4)  # priors fitted to the clip itself: its codes cost less than 10 bits
    counts = torch.stack([torch.bincount(c.reshape(-1), minlength=1024) for c in codes]).double()
    export_rvq_model(model, counts, tmp_path / "rvq.safetensors", "rvq-test")
    codec = RVQAudioCodec(tmp_path / "rvq.safetensors")
    payload = codec.encode((audio, 24000), 3, postfilter=0)
    size = sum(len(d) for _, d in payload.chunks)
    cheaper = codec.reduce_rate(payload, 5, 20)
    assert cheaper.params == payload.params  # the same stages
    assert sum(len(d) for _, d in cheaper.chunks) <= size - 20
    assert not (codec.codes(cheaper)[0] == codec.codes(payload)[0]).all()
    shed = codec.reduce_rate(payload, 5, size)  # no search saves every byte: a stage goes
    assert shed.params["n_q"] == payload.params["n_q"] - 1
    assert codec.reduce_rate(payload).params["n_q"] == payload.params["n_q"] - 1  # excess unknown


def test_presets_set_the_search_and_decode_alike(weights):
    from mcodec.codec.audio.codec import RVQAudioCodec

    codec = RVQAudioCodec(weights)
    item = (tone(1, 2.0, 24000) + 0.05 * torch.randn(1, 48000), 24000)
    fast, medium = (codec.encode(item, 6, preset=p) for p in ("fast", "medium"))
    assert fast.params == medium.params and fast.chunks != medium.chunks
    assert codec.decode(medium)[0].shape == (1, 48000)
    with pytest.raises(CodecError, match="no preset 'turbo'"):
        codec.encode(item, 6, preset="turbo")


def test_bad_audio_is_refused(weights):
    with pytest.raises(CodecError, match="NaN"):
        encode_bytes((torch.full((1, 100), float("nan")), 16000), "audio", "rvq", 6, weights=weights)
    with pytest.raises(CodecError, match="kbps 50 outside"):
        encode_bytes((tone(1, 1.0, 16000), 16000), "audio", "rvq", 50, weights=weights)


def test_corrupt_segment_is_refused(weights):
    from mcodec.entropy import write_container

    c = read_container(encode_bytes((tone(1, 1.0, 24000), 24000), "audio", "rvq", 3, weights=weights))
    c.chunks[0] = ("ASEG", b"\x07" + c.chunks[0][1][1:])
    with pytest.raises(CodecError, match="stage flags"):
        decode_bytes(write_container(c), weights=weights)


def test_cli_audio_roundtrip(weights, tmp_path, capfd):
    from mcodec.cli.main import main
    from mcodec.codec.media_io import read_audio, write_audio

    write_audio(tmp_path / "in.wav", tone(2, 2.0, 22050), 22050)
    for args in (
        ["encode", tmp_path / "in.wav", tmp_path / "a.mcd", "--bitrate", 3],
        ["decode", tmp_path / "a.mcd", tmp_path / "out.flac"],
    ):
        with pytest.raises(SystemExit) as e:
            main([*map(str, args), "--weights", str(weights)])
        assert e.value.code == 0, capfd.readouterr().err
    audio, rate = read_audio(tmp_path / "out.flac")
    assert rate == 22050 and audio.shape == (2, 44100)
    assert "kbit/s" in capfd.readouterr().err


def test_decoding_is_independent_of_the_thread_count(weights):
    """Each segment is synthesized on one thread: with oneDNN off, ELU's per-thread split of a tensor
    changes the last bit of the samples at its seams, so 1, 2 and 3 threads used to disagree."""
    audio = tone(1, 13.3, 22050) + 0.05 * torch.randn(1, int(13.3 * 22050))
    data = encode_bytes((audio, 22050), "audio", "rvq", 6, weights=weights)
    threads = torch.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            outs.append(decode_bytes(data, weights=weights)[1][0])
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_long_audio_streams_through_the_codec(weights):
    """A 25 s source read in small blocks: the first segment is coded once its span has arrived (not at
    the end of the file), the payload equals the one coded from the whole tensor, and decoding yields
    samples before the last segment is synthesized."""
    import numpy as np

    from mcodec.codec import Payload, registry
    from mcodec.codec.media_io import AudioStream

    rate = 16000
    audio = tone(1, 25.0, rate) + 0.05 * torch.randn(1, 25 * rate)
    codec = registry.get("rvq", weights)
    consumed, coded_at = [0], []

    def blocks():
        for i in range(0, audio.shape[1], 777):
            consumed[0] += min(777, audio.shape[1] - i)
            yield audio[:, i : i + 777].numpy()

    code_segment = codec._code_segment
    codec._code_segment = lambda codes: coded_at.append(consumed[0]) or code_segment(codes)
    streamed = codec.encode(AudioStream(rate, 1, blocks()), 6)
    codec._code_segment = code_segment
    assert len(coded_at) == 3 and coded_at[0] <= (240000 + 2400) * rate // 24000 + 777
    whole = codec.encode((audio, rate), 6)
    assert streamed.params == whole.params and streamed.chunks == whole.chunks

    out = codec.decode_stream(Payload(whole.params, whole.chunks))
    pieces = [b.copy() for b in out.blocks]
    assert 0 < pieces[0].shape[1] < audio.shape[1] and sum(b.shape[1] for b in pieces) == audio.shape[1]
    decoded, _ = codec.decode(Payload(whole.params, whole.chunks))
    assert torch.equal(decoded, torch.from_numpy(np.concatenate(pieces, axis=1)))


def test_a_header_asking_for_unbounded_padding_is_refused(weights):
    """samples = 2^36 beside a 1 s signal would have the decoder write ~a terabyte of zeros."""
    from mcodec.entropy import write_container

    c = read_container(encode_bytes((tone(1, 1.0, 24000), 24000), "audio", "rvq", 3, weights=weights))
    c.header.params["samples"] = 1 << 36
    with pytest.raises(CodecError, match="model_samples"):
        decode_bytes(write_container(c), weights=weights)


@pytest.mark.parametrize("rate_in, rate_out", [(44100, 24000), (24000, 16000), (24000, 24000)])
def test_resampling_in_pieces_equals_resampling_at_once(rate_in, rate_out):
    import numpy as np

    from mcodec.codec.audio.stream import MonoResampler

    noise = np.random.default_rng(0).normal(0, 0.01, rate_in).astype(np.float32)
    x = tone(1, 1.0, rate_in)[0].numpy() + noise
    whole = MonoResampler(rate_in, rate_out)
    once = np.concatenate([whole.push(x), whole.flush()])
    pieces = MonoResampler(rate_in, rate_out)
    cuts = [0, 1, 500, 4096, 4097, 30000, rate_in]
    parts = [pieces.push(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)] + [pieces.flush()]
    assert once.size == rate_out and np.allclose(np.concatenate(parts), once, atol=1e-6)


def test_the_high_pass_removes_dc_and_rumble_keeps_the_voice_band_and_streams():
    import numpy as np

    from mcodec.codec.audio.stream import HighPass

    rate = 24000
    t = np.arange(2 * rate) / rate
    voice, rumble = 0.2 * np.sin(2 * np.pi * 120 * t), 0.3 + 0.2 * np.sin(2 * np.pi * 5 * t)
    y = HighPass(20.0, rate).push((voice + rumble).astype(np.float32))
    assert y.dtype == np.float32 and y.shape == t.shape
    settled = slice(rate // 2, None)  # after the filter's start from rest
    left = HighPass(20.0, rate).push(rumble.astype(np.float32))[settled]
    assert np.abs(left).max() < 0.015  # DC gone, 5 Hz down 24 dB
    kept = HighPass(20.0, rate).push(voice.astype(np.float32))[settled]
    assert abs(kept.std() / voice[settled].std() - 1) < 0.01  # 120 Hz passes whole (phase-shifted a little)
    # in pieces, the state carried: as the whole
    cuts = [0, 1, 7, 4096, 30001, t.size]
    pieces = HighPass(20.0, rate)
    parts = [
        pieces.push((voice + rumble)[a:b].astype(np.float32))
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    assert np.allclose(np.concatenate(parts), y, atol=1e-6) and pieces.push(np.zeros(0)).size == 0


def test_the_encoder_codes_the_signal_high_passed(weights, monkeypatch):
    from mcodec.codec import registry

    codec = registry.get("rvq", weights)
    coded = []
    encode = codec.model.encode
    monkeypatch.setattr(codec.model, "encode", lambda x, *a: coded.append(x) or encode(x, *a))
    codec.encode((tone(1, 2.0, 24000) + 0.4, 24000), 6.0, postfilter=0)
    x = coded[0][0, 0, 12000:48000]  # past the start, before the zero padding
    assert abs(float(x.mean())) < 0.01 and float(x.std()) > 0.2  # the offset gone, the 220 Hz tone kept


def test_the_trainer_sees_the_signal_high_passed_as_the_encoder_codes_it():
    from mcodec.codec.training.audio_task import training_signal

    stereo = tone(2, 1.0, 48000) + torch.tensor([[0.3], [0.1]])  # an offset of 0.2 in the mix
    mono = training_signal(stereo, 48000)
    assert mono.dtype == torch.float32 and mono.shape == (24000,)
    assert abs(float(mono[12000:].mean())) < 0.01 and float(mono[12000:].std()) > 0.1


# Which file a training crop came from, told by the pitch of a tone each group's files hold (the trainer
# high-passes its signal, so a constant would not survive as a marker): zero crossings in a 0.1 s crop
SLOW, FAST = 500, 2000  # Hz: 100 and 400 crossings


def write_marker(path, freq: int, samples: int) -> None:
    import wave

    t = torch.arange(samples) / 24000
    pcm = (16000 * torch.sin(2 * math.pi * freq * t + 0.1)).to(torch.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(24000)
        w.writeframes(pcm.numpy().tobytes())


def slow_share(batch: torch.Tensor) -> float:
    crossings = (torch.diff(torch.sign(batch[:, 0]), dim=-1) != 0).sum(-1)
    return (crossings < 250).float().mean().item()


def test_training_crops_are_drawn_evenly_from_each_subfolder(tmp_path):
    """Three long speech files beside thirty short music samples: speech must still fill about half the
    crops (per-clip sampling gave it a tenth)."""
    import random

    from mcodec.codec.training.audio_task import load_corpus, random_batch

    for sub, count, seconds, freq in (("speech", 3, 2.0, SLOW), ("music", 30, 0.5, FAST)):
        (tmp_path / sub).mkdir()
        for i in range(count):
            write_marker(tmp_path / sub / f"{i}.wav", freq, int(seconds * 24000))
    corpus = load_corpus(tmp_path, 2400)
    assert sorted(corpus) == ["music", "speech"] and len(corpus["music"][""]) == 30
    batch = random_batch([list(s.values()) for s in corpus.values()], 400, 2400, random.Random(0))
    assert 0.4 < slow_share(batch) < 0.6


def test_training_crops_are_drawn_evenly_from_each_language_of_a_group(tmp_path):
    """klettres-like: one language with 30 recordings, one with 2, in one group: each fills about half
    the group's crops (per-clip sampling gave the small one a sixteenth)."""
    import random

    from mcodec.codec.training.audio_task import load_corpus, random_batch

    for lang, count, freq in (("de", 30, FAST), ("nl", 2, SLOW)):
        (tmp_path / "letters" / lang).mkdir(parents=True)
        for i in range(count):
            write_marker(tmp_path / "letters" / lang / f"{i}.wav", freq, 2400)
    corpus = load_corpus(tmp_path, 2400)
    assert list(corpus) == ["letters"] and sorted(corpus["letters"]) == ["de", "nl"]
    batch = random_batch([list(s.values()) for s in corpus.values()], 400, 2400, random.Random(0))
    assert 0.4 < slow_share(batch) < 0.6


def test_group_weights_set_each_groups_share_of_the_crops():
    """--group-weight: a group of weight 3 beside one of weight 1 fills about 3/4 of the crops; unnamed
    groups weigh 1; a name that is no group is refused with the groups there are."""
    import random

    from mcodec.codec.training.audio_task import group_weights, random_batch

    groups = [[[torch.full((2400,), 0.5)]], [[torch.full((2400,), -0.5)]]]
    weights = group_weights(["music", "speech"], (("music", 3.0),))
    assert weights == [3.0, 1.0] and group_weights(["music", "speech"], ()) is None
    batch = random_batch(groups, 800, 2400, random.Random(0), weights=weights)
    assert 0.70 < (batch.mean(-1) > 0).float().mean().item() < 0.80
    batch = random_batch(groups, 200, 2400, random.Random(0), weights=[0.0, 1.0])
    assert (batch.mean(-1) < 0).all()
    with pytest.raises(ValueError, match="no group klettre .*groups: music, speech"):
        group_weights(["music", "speech"], (("klettre", 2.0),))
    with pytest.raises(ValueError, match="no group to draw"):
        group_weights(["music"], (("music", 0.0),))


def test_training_data_mistakes_are_one_line_errors(capfd, tmp_path):
    """A --group-weight naming no group, and a folder without audio: a user's error, not an internal one."""
    from importlib.resources import files

    from conftest import run_cli

    (tmp_path / "data" / "speech").mkdir(parents=True)
    sample = files("mcodec") / "samples" / "goforward_16k.flac"
    (tmp_path / "data" / "speech" / "a.flac").write_bytes(sample.read_bytes())
    (tmp_path / "empty").mkdir()
    common = ["--steps", 1, "--batch", 2, "--seconds", 0.1, "--width", 2, 8]
    common += ["--out", tmp_path / "m.safetensors"]
    code, _, err = run_cli(capfd, "train", "audio", tmp_path / "data", *common, "--group-weight", "music", 2)
    assert code == 1 and err.strip() == "mcodec: error: no group music in the data (groups: speech)", err
    code, _, err = run_cli(capfd, "train", "audio", tmp_path / "empty", *common, "--force")
    assert code == 1 and err.strip() == f"mcodec: error: no readable audio in {tmp_path / 'empty'}", err
    assert not (tmp_path / "m.run").exists()  # no half-made run folder left to resume from


def test_speed_perturbation_moves_a_tones_pitch_by_the_drawn_factor(monkeypatch):
    """--speed-perturb: a 1 kHz tone comes out at the crop's speed factor x 1 kHz, crops keep their
    length, and the factors span 1 +- speed on the grid."""
    import random

    from mcodec.codec.training import audio_task

    drawn = []
    real_factor = audio_task.speed_factor
    monkeypatch.setattr(audio_task, "speed_factor", lambda *a: drawn.append(real_factor(*a)) or drawn[-1])

    rate, samples = 24000, 4800
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(audio_task.crop_source(samples, 1.1)) / rate)
    groups = [[[tone]]]
    factors = [real_factor(0.1, random.Random(seed)) for seed in range(200)]
    assert min(factors) == Fraction(36, 40) and max(factors) == Fraction(44, 40)
    for seed in range(6):
        crop = audio_task.random_batch(groups, 1, samples, random.Random(seed), speed=0.1)[0, 0]
        assert crop.shape == (samples,)
        factor = drawn[-1]
        peak_hz = torch.fft.rfft(crop * torch.hann_window(samples)).abs().argmax().item() * rate / samples
        assert abs(peak_hz - 1000 * factor) <= rate / samples, (peak_hz, factor)


def test_focused_training_draws_its_stage_count_for_about_half_the_batches():
    import random

    from mcodec.codec.training.audio_task import AudioTask, AudioTrainConfig

    model = RVQAutoencoder(base=4, dim=16, n_q=16)
    rng = random.Random(0)
    plain_task = AudioTask(model, None, AudioTrainConfig(), None)
    focused_task = AudioTask(model, None, AudioTrainConfig(focus_stages=8), None)
    plain = [plain_task.stages(rng) for _ in range(1600)]
    focused = [focused_task.stages(rng) for _ in range(1600)]
    assert set(plain) == set(focused) == set(range(1, 17))
    assert 0.04 < plain.count(8) / 1600 < 0.09 and 0.49 < focused.count(8) / 1600 < 0.58
