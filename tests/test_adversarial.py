"""`mcodec train audio --adversarial`: discriminators on any length, their losses, the generator's terms
only from --adv-start on, their state kept in and resumed from the checkpoint, never in the model file."""

from __future__ import annotations

import copy
import io
import random
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from safetensors import safe_open

from mcodec.cli.main import main
from mcodec.codec.audio.model import RVQAutoencoder
from mcodec.codec.training import distributed
from mcodec.codec.training.adversarial import (
    Adversary,
    discriminator_loss,
    feature_matching,
    generator_loss,
)
from mcodec.codec.training.audio_task import AudioTask, AudioTrainConfig, train_audio
from mcodec.codec.training.discriminators import PERIODS, STFT_WINDOWS, Discriminators


def test_discriminators_on_odd_lengths():
    torch.manual_seed(0)
    disc = Discriminators()
    for n in (1, 333, 2401):
        real, fake = torch.randn(2, 1, n), torch.randn(2, 1, n, requires_grad=True)
        logits_r, maps_r = disc(real)
        logits_f, maps_f = disc(fake)
        assert len(logits_r) == len(maps_r) == len(STFT_WINDOWS) + len(PERIODS)
        for k, (lr, lf) in enumerate(zip(logits_r, logits_f, strict=True)):
            assert lr.shape == lf.shape and lr.shape[:2] == (2, 1) and lr.ndim == 4, n
            if k < len(STFT_WINDOWS):
                assert lr.shape[2] == 1 + n // (STFT_WINDOWS[k] // 4), n  # frames of a centred STFT
            else:
                assert lr.shape[3] == PERIODS[k - len(STFT_WINDOWS)], n
        pairs = [(a, b) for mr, mf in zip(maps_r, maps_f, strict=True) for a, b in zip(mr, mf, strict=True)]
        assert all(a.shape == b.shape for a, b in pairs)
    generator_loss(logits_f, "hinge").backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # the generator's gradient gets through


def test_adversarial_and_feature_matching_losses():
    ones, minus = [torch.ones(2, 1, 3, 4)], [-torch.ones(2, 1, 3, 4)]
    assert discriminator_loss(ones, minus, "hinge") == 0  # confident and right: nothing to learn
    assert discriminator_loss(minus, ones, "hinge") == 4
    assert discriminator_loss(ones, [torch.zeros(2, 1, 3, 4)], "ls") == 0
    assert generator_loss(ones, "hinge") == 0 and generator_loss(minus, "ls") == 4
    real = [[torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 3)]]
    fake = [[r + 0.1 * torch.randn_like(r) for r in real[0]]]
    assert feature_matching(real, real) == 0
    scaled = feature_matching([[10 * r for r in real[0]]], [[10 * f for f in fake[0]]])
    assert torch.allclose(scaled, feature_matching(real, fake))  # relative: each map's scale divides out


def _step_pair(data: Path, adv_start: int, steps: int) -> list[bool]:
    """Two copies of a tiny model, one trained plain and one --adversarial (with a large adversarial
    weight), over the same crops: whether their weights agree after each step."""
    torch.manual_seed(0)
    plain_model = RVQAutoencoder(base=2, dim=8, n_q=2, codebook_size=16)
    adv_model = copy.deepcopy(plain_model)
    common = dict(batch=2, seconds=0.1, adv_start=adv_start, adv_weight=10.0, feat_weight=10.0)
    disc = Discriminators(windows=(256,), periods=(2,))  # one of each, for speed
    disc_opt = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.9))
    tasks = [
        AudioTask(
            m,
            data,
            AudioTrainConfig(adversarial=adv, **common),
            torch.optim.Adam(m.parameters(), lr=1e-3),
            Adversary(disc, disc_opt) if adv else None,
        )
        for m, adv in ((plain_model, False), (adv_model, True))
    ]
    for task in tasks:
        task.setup(distributed.init("cpu"))
    agree = []
    for step in range(steps):
        for task in tasks:
            torch.manual_seed(step)
            metrics = task.step(task.model, random.Random(step), step)
        assert {"adv", "feat", "disc", "d_skipped"} <= metrics.keys()
        pairs = zip(plain_model.parameters(), adv_model.parameters(), strict=True)
        agree.append(all(torch.equal(p, q) for p, q in pairs))
    return agree


def test_the_generator_has_the_adversarial_terms_only_from_adv_start(speech_folder):
    assert _step_pair(speech_folder, adv_start=1, steps=2) == [True, False]


def test_a_non_finite_discriminator_step_is_skipped(speech_folder):
    torch.manual_seed(0)
    model = RVQAutoencoder(base=2, dim=8, n_q=2, codebook_size=16)
    disc = Discriminators(windows=(256, 512), periods=(2,))
    adversary = Adversary(disc, torch.optim.Adam(disc.parameters(), lr=1e-3))
    cfg = AudioTrainConfig(batch=2, seconds=0.1, adversarial=True, adv_start=5)
    task = AudioTask(model, speech_folder, cfg, torch.optim.Adam(model.parameters(), lr=1e-3), adversary)
    task.setup(distributed.init("cpu"))
    with torch.no_grad():
        disc.subs[0].convs[0].bias.fill_(float("nan"))  # that sub-discriminator's loss and gradient NaN
    others = {k: v.clone() for k, v in disc.state_dict().items() if not k.startswith("subs.0.")}
    metrics = task.step(model, random.Random(0), 0)
    assert metrics["d_skipped"] == 1.0 and metrics["skipped"] == 0.0  # before adv_start: G unaffected
    assert all(torch.equal(disc.state_dict()[k], v) for k, v in others.items())  # no Adam step


def test_log_lines_show_the_adversarial_losses(speech_folder, tmp_path):
    torch.manual_seed(0)
    model = RVQAutoencoder(base=2, dim=8, n_q=2, codebook_size=16)
    cfg = AudioTrainConfig(steps=2, batch=2, seconds=0.1, log_every=1, adversarial=True, adv_start=1)
    log = io.StringIO()
    train_audio(model, speech_folder, tmp_path / "run", cfg, log=log)
    lines = [line for line in log.getvalue().splitlines() if line.startswith("step ")]
    assert len(lines) == 2 and all(f" {k} " in line for k in ("adv", "feat", "disc") for line in lines)
    assert "(disc)" in log.getvalue()  # the discriminators' parameter count


def _keys(path: Path) -> set[str]:
    with safe_open(path, "pt") as f:
        return set(f.keys())


def test_adversarial_run_keeps_its_discriminators_in_the_checkpoint_not_the_model(
    capfd, tmp_path, speech_folder
):
    common = ["train", "audio", speech_folder, "--batch", 2, "--seconds", 0.1, "--width", 2, 8]
    plain, adv = tmp_path / "plain.safetensors", tmp_path / "adv.safetensors"
    code, _, err = run_cli(capfd, *common, "--out", plain, "--steps", 2)
    assert code == 0, err
    code, _, err = run_cli(capfd, *common, "--out", adv, "--steps", 2, "--adversarial", "--adv-start", 1)
    assert code == 0, err
    assert _keys(adv) == _keys(plain) and not any("disc" in k for k in _keys(adv))
    ckpt = torch.load(tmp_path / "adv.run" / "checkpoint.pt", weights_only=True)
    assert ckpt["modules"]["disc"].keys() == Discriminators().state_dict().keys()
    adam_steps = {int(s["step"]) for s in ckpt["disc_opt"]["state"].values()}
    assert adam_steps == {2}

    # resumed: the discriminators and their optimizer go on (Adam's count goes on from 2)
    code, _, err = run_cli(capfd, *common, "--out", adv, "--steps", 3, "--adversarial", "--force")
    assert code == 0 and "resuming from step 2" in err and "fresh" not in err, err
    ckpt = torch.load(tmp_path / "adv.run" / "checkpoint.pt", weights_only=True)
    assert {int(s["step"]) for s in ckpt["disc_opt"]["state"].values()} == {3}

    # a plain run resumed with --adversarial newly on: fresh discriminators
    code, _, err = run_cli(capfd, *common, "--out", plain, "--steps", 3, "--adversarial", "--force")
    assert code == 0 and "resuming from step 2 (disc, disc_opt: not in the checkpoint, fresh)" in err, err
    ckpt = torch.load(tmp_path / "plain.run" / "checkpoint.pt", weights_only=True)
    assert {int(s["step"]) for s in ckpt["disc_opt"]["state"].values()} == {1}


def test_disc_lr_sets_the_discriminators_rate_beside_the_generators(capfd, tmp_path, speech_folder):
    out = tmp_path / "adv.safetensors"
    common = ["train", "audio", speech_folder, "--batch", 2, "--seconds", 0.1, "--width", 2, 8, "--steps", 2]
    code, _, err = run_cli(capfd, *common, "--out", out, "--adversarial", "--lr", 1e-3, "--disc-lr", 4e-3)
    assert code == 0, err
    ckpt = torch.load(tmp_path / "adv.run" / "checkpoint.pt", weights_only=True)
    g, d = ckpt["opt"]["param_groups"][0]["lr"], ckpt["disc_opt"]["param_groups"][0]["lr"]
    assert d == pytest.approx(4 * g)  # one schedule scales both


def test_adversarial_options_need_adversarial(capfd, tmp_path, speech_folder):
    code, _, err = run_cli(
        capfd, "train", "audio", speech_folder, "--out", tmp_path / "m.safetensors", "--adv-start", 5
    )
    assert code == 2 and "needs --adversarial" in err


def test_the_help_shows_the_weights_the_training_uses(capfd):
    from mcodec.codec.training.audio_task import ADV_WEIGHT, FEAT_WEIGHT

    with pytest.raises(SystemExit):
        main(["train", "audio", "--help"])
    shown = " ".join(capfd.readouterr().out.split())
    shown = shown.replace("feature- matching", "feature-matching")  # click may wrap at the hyphen
    assert f"(hinge) [default: {ADV_WEIGHT:g}]" in shown, shown
    assert f"feature-matching loss [default: {FEAT_WEIGHT:g}]" in shown, shown
