"""Training the RVQ audio codec: a warm start keeps the codebooks, dead codes are only the really unused
ones, non-finite steps are skipped and unreadable training files reported."""

from __future__ import annotations

import math
import random
from importlib.resources import files
from pathlib import Path

import torch

from mcodec.codec.audio.model import ARCH, RVQAutoencoder, sizes
from mcodec.codec.audio.rvq import EMACodebook
from mcodec.codec.audio.si_sdr import si_sdr_db
from mcodec.codec.media_io import read_audio
from mcodec.codec.model_file import MODELS_DIR, load_weights
from mcodec.codec.training import distributed
from mcodec.codec.training.audio_task import AudioTask, AudioTrainConfig, init_state_from

SAMPLE = Path(str(files("mcodec") / "samples" / "goforward_16k.flac"))


def _clip() -> torch.Tensor:
    import torchaudio

    audio, rate = read_audio(SAMPLE)
    mono = torchaudio.functional.resample(audio.mean(0), rate, 24000)
    return mono[: 320 * 150][None, None]  # 2 s


def _decoded_si_sdr(model: RVQAutoencoder, clip: torch.Tensor, n_q: int = 8) -> float:
    model.eval()
    with torch.no_grad():
        out = model.decode(model.encode(clip, n_q))
    return float(si_sdr_db(out[0, 0].double(), clip[0, 0].double()))


def test_first_step_after_init_keeps_the_shipped_codebooks(tmp_path):
    """The shipped file holds no EMA statistics; a model started from it (``--init``) must not wipe its
    codebooks on the first update. It did: every used codeword fell to ~1% of its norm and the rest were
    restarted, and the clip's decoded SI-SDR went from 5.2 to -6.6 dB."""
    w = load_weights(MODELS_DIR / "rvq.safetensors", ARCH)
    model = RVQAutoencoder(*sizes(w))
    model.load_state_dict(init_state_from(w), strict=False)
    clip = _clip()
    before = _decoded_si_sdr(model, clip)
    books = [cb.embedding.clone() for cb in model.quantizer.codebooks]
    # one training forward (the EMA update) on other audio than the clip measured: tones. Codes restarted on
    # the measured clip's own vectors would fit it, whatever became of the codebook.
    t = torch.arange(320 * 75) / 24000
    tones = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220, 330, 440, 660)])[:, None]
    model.train()
    with torch.no_grad():
        model(tones, model.n_q)
    drift = max(
        float((cb.embedding - old).norm() / old.norm())
        for cb, old in zip(model.quantizer.codebooks, books, strict=True)
    )
    after = _decoded_si_sdr(model, clip)
    assert drift < 0.05, drift
    assert after > before - 0.5, (before, after)


def test_dead_codes_are_the_unused_ones_over_many_steps():
    torch.manual_seed(0)
    cb = EMACodebook(dim=2, size=4)
    cb.train()
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    cb(centres.repeat(8, 1))  # k-means start: one code per centre
    rare = centres[3]
    for step in range(600):
        x = centres[:3].repeat(8, 1)
        if step % 10 == 0:
            x = torch.cat([x, rare[None]])  # the fourth code is used once every 10 steps
        cb(x)
    assert torch.allclose(cb.embedding[cb.encode(rare[None])], rare, atol=0.5)  # kept, not restarted
    for _ in range(1500):
        cb(centres[:3].repeat(8, 1))  # now unused for 1,500 steps: restarted on a batch vector
    code = cb.encode(rare[None])
    assert not torch.allclose(cb.embedding[code], rare, atol=1.0)


def test_non_finite_steps_are_skipped_and_unreadable_files_reported(tmp_path):
    data = tmp_path / "speech"
    data.mkdir()
    (data / "a.flac").write_bytes(SAMPLE.read_bytes())
    (data / "broken.wav").write_bytes(b"RIFF not really")
    torch.manual_seed(0)
    model = RVQAutoencoder(base=2, dim=8, n_q=2, codebook_size=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    task = AudioTask(model, tmp_path, AudioTrainConfig(batch=2, seconds=0.1), opt)
    about = task.setup(distributed.init("cpu"))
    assert "skipped 1 unreadable file" in about and "broken.wav" in about
    model.train()
    weights = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        model.encoder.net[0].bias.fill_(float("nan"))  # every output NaN: the gradient too
    weights[1] = model.encoder.net[0].bias.detach().clone()
    metrics = task.step(model, random.Random(0))
    assert metrics["skipped"] == 1.0
    assert all(
        torch.equal(p, q) or (torch.isnan(p).all() and torch.isnan(q).all())
        for p, q in zip(model.parameters(), weights, strict=True)
    )


def test_loading_without_ema_state_rebuilds_it_and_a_checkpoint_keeps_its_own():
    embedding = torch.randn(5, 3)
    cb = EMACodebook(dim=3, size=5)
    cb.load_state_dict({"embedding": embedding, "initialized": torch.tensor(True)}, strict=False)
    assert torch.equal(cb.ema_sum, embedding) and torch.equal(cb.ema_count, torch.ones(5))
    saved = {"embedding": embedding, "ema_sum": 2 * embedding, "ema_count": torch.full((5,), 2.0)}
    cb.load_state_dict({**saved, "initialized": torch.tensor(True)})  # a training checkpoint: as saved
    assert torch.equal(cb.ema_sum, 2 * embedding) and torch.equal(cb.ema_count, torch.full((5,), 2.0))


def test_code_histograms_share_the_seconds_between_groups_and_search_as_the_encoder(tmp_path):
    """The priors come from every group (here 1 s each of 2 s, though the first group alone holds 12 s),
    with codes searched as the codec's encoder searches them (its default beam)."""
    from mcodec.codec.audio.codec import BEAM, INFO
    from mcodec.codec.media_io import write_audio
    from mcodec.codec.training.audio_task import code_histograms, training_signal

    torch.manual_seed(0)
    model = RVQAutoencoder(base=4, dim=16, n_q=4)
    model.train()
    model(torch.randn(2, 1, 320 * 40) * 0.1, 4)  # k-means initialisation of the codebooks
    model.eval()
    noise = torch.randn(1, 12 * 24000) * 0.1
    tone = 0.3 * torch.sin(2 * math.pi * 330 * torch.arange(3 * 24000) / 24000)[None]
    for group, audio in (("a", noise), ("b", tone)):
        (tmp_path / "all" / group).mkdir(parents=True)
        (tmp_path / group).mkdir()
        write_audio(tmp_path / "all" / group / "x.wav", audio, 24000)
        write_audio(tmp_path / group / "x.wav", audio, 24000)
    both = code_histograms(model, tmp_path / "all", max_seconds=2)
    assert both.sum(1).tolist() == [150.0] * 4  # 2 s of 75 frames a second, every stage
    alone = code_histograms(model, tmp_path / "a", max_seconds=1) + code_histograms(model, tmp_path / "b", 1)
    assert torch.equal(both, alone)
    clip = training_signal(read_audio(tmp_path / "b" / "x.wav")[0], 24000)  # read back, as trained on
    codes = model.encode(clip[None, None, :24000], 4, BEAM[INFO.default_preset])
    expected = torch.stack([torch.bincount(c.reshape(-1), minlength=1024) for c in codes]).double()
    assert torch.equal(code_histograms(model, tmp_path / "b", max_seconds=1), expected)
