"""`mcodec train image`: a tiny run trains, checkpoints, resumes and exports a usable model file."""

import json

import pytest
from conftest import random_image
from PIL import Image

from mcodec.cli.main import main


def run(capfd, *args):
    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    out, err = capfd.readouterr()
    return e.value.code, out, err


@pytest.mark.parametrize("codec", ["factorized", "meanscale"])
def test_train_resume_export_and_use(capfd, tmp_path, codec):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(random_image(3, 72, 80, seed=i).permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    model = tmp_path / "m.safetensors"
    common = [
        "train",
        "image",
        data,
        "--codec",
        codec,
        "--out",
        model,
        "--batch",
        2,
        "--crop",
        64,
        "--width",
        8,
        8,
    ]
    amp = ["--amp"] if codec == "meanscale" else []  # bfloat16 transforms: the CPU has autocast too
    code, _, err = run(capfd, *common, "--steps", 2, *amp)
    assert code == 0 and model.exists(), err
    code, _, err = run(capfd, *common, "--steps", 3, "--force")
    assert code == 0 and "resuming from step 2" in err, err
    code, _, err = run(capfd, *common, "--steps", 3)
    assert code == 1 and "exists" in err
    bit = tmp_path / "x.mcd"
    assert run(capfd, "encode", data / "0.png", bit, "--codec", codec, "--weights", model)[0] == 0
    assert run(capfd, "decode", bit, tmp_path / "x.png", "--weights", model)[0] == 0
    code, out, _ = run(capfd, "info", bit, "--json")
    assert code == 0 and json.loads(out)["model_id"] == f"{codec}-custom"  # --model-id's default
    code, _, err = run(capfd, "decode", bit, tmp_path / "y.png")  # default weights: refused
    assert code == 1 and ("other weights" in err or "no default weights" in err)


def test_train_in_two_processes(tmp_path):
    """DDP on the CPU (gloo): two workers train in step and rank 0 alone exports a usable file.

    The workers get the environment torchrun would give them, but the test launches them itself:
    torchrun's elastic agent once kept a finished run alive past 300 s in CI, and what is under test
    here is our process-group code, not the launcher."""
    import os
    import socket
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(random_image(3, 72, 80, seed=i).permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    model = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "mcodec", "train", "image", str(data), "--out", str(model), "--steps", "3"]
    cmd += ["--batch", "1", "--crop", "64", "--width", "8", "8"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    env["MASTER_PORT"] = str(port)
    workers = [
        subprocess.Popen(
            cmd,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = []
    try:
        for w in workers:
            results.append((w.communicate(timeout=240)[1], w.returncode))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    assert [code for _, code in results] == [0, 0], results
    assert "2 process(es)" in results[0][0] and model.exists()
    assert "wrote" not in results[1][0]  # rank 1 neither logs nor exports
    assert run_ok_encode(tmp_path, data / "0.png", model)


def run_ok_encode(tmp_path, image, model) -> bool:
    from mcodec import decode_file, encode_file

    encode_file(image, tmp_path / "x.mcd", "factorized", weights=model)
    decode_file(tmp_path / "x.mcd", tmp_path / "x.png", weights=model)
    return (tmp_path / "x.png").exists()


def test_amp_keeps_the_entropy_models_in_float32():
    """Under bfloat16 autocast (`--amp`) the transforms run in bfloat16 but the likelihoods, and so the
    rate term, stay float32 and finite; the loss matches the float32 one to autocast precision."""
    import torch

    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.training.image_task import rd_loss

    torch.manual_seed(0)
    model = GainedHyperprior("mean-scale-hyperprior", 16, 24).eval()
    x, quality = torch.rand(2, 3, 64, 64), torch.tensor([1.0, 8.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, quality)
        amp_loss, amp_bpp, _ = rd_loss(model, x, quality)
    assert all(lk.dtype == torch.float32 for lk in out["likelihoods"].values())
    assert out["x_hat"].dtype == torch.bfloat16
    loss, bpp, _ = rd_loss(model, x, quality)
    assert torch.isfinite(amp_loss) and abs(amp_loss.item() - loss.item()) < 0.05 * loss.item()
    assert abs(amp_bpp - bpp) < 0.05 * bpp


def test_quality_balance_weighs_each_crops_loss_by_its_lambda(tmp_path, capfd, monkeypatch):
    """--quality-balance A: a crop's RD loss is weighed by (lambda / G)^-A, G the lambdas' geometric mean,
    so a q1 crop's small loss counts more and a q8 crop's less; 0 leaves the plain mean."""
    import math

    import torch

    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.image.lambdas import LAMBDAS
    from mcodec.codec.training import image_task

    torch.manual_seed(0)
    model = GainedHyperprior("mean-scale-hyperprior", 16, 24).eval()  # eval: rounding, no noise
    x = torch.rand(2, 3, 64, 64)
    single = [
        image_task.rd_loss(model, x[i : i + 1], torch.tensor([q]))[0].item() for i, q in ((0, 1), (1, 8))
    ]
    plain = image_task.rd_loss(model, x, torch.tensor([1.0, 8.0]))[0].item()
    assert math.isclose(plain, sum(single) / 2, rel_tol=1e-5)
    g = math.exp(sum(map(math.log, LAMBDAS)) / len(LAMBDAS))
    weights = [(LAMBDAS[0] / g) ** -0.5, (LAMBDAS[7] / g) ** -0.5]
    assert weights[0] > 2 > 0.5 > weights[1]
    balanced = image_task.rd_loss(model, x, torch.tensor([1.0, 8.0]), balance=0.5)[0].item()
    assert math.isclose(balanced, (weights[0] * single[0] + weights[1] * single[1]) / 2, rel_tol=1e-5)

    seen = []  # the option reaches the loss
    real_rd_loss = image_task.rd_loss
    monkeypatch.setattr(image_task, "rd_loss", lambda *a, **kw: seen.append(kw) or real_rd_loss(*a, **kw))
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    args = ["train", "image", data, "--codec", "meanscale", "--batch", 2, "--crop", 64, "--width", 8, 8]
    code, _, err = run(
        capfd, *args, "--out", tmp_path / "m.safetensors", "--steps", 1, "--quality-balance", 0.25
    )
    assert code == 0, err
    assert seen == [{"balance": 0.25}]


def test_a_step_with_a_non_finite_gradient_is_skipped(tmp_path):
    """A NaN loss must not reach the weights: gradient clipping would spread it to every parameter."""
    import random

    import torch

    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.training import distributed
    from mcodec.codec.training.image_task import ImageTask, TrainConfig

    for i in range(2):
        Image.fromarray(random_image(3, 64, 64, seed=i).permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    model = GainedHyperprior("mean-scale-hyperprior", 8, 8)
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    cfg = TrainConfig(batch=2, crop=64)
    task = ImageTask(model, tmp_path, cfg, torch.optim.Adam(main), torch.optim.Adam(aux), aux)
    task.setup(distributed.init("cpu"))
    with torch.no_grad():
        model.net.g_s[-1].bias[0] = float("nan")  # the reconstruction, so the loss, becomes NaN
    before = model.net.g_a[0].weight.clone()
    metrics = task.step(model, random.Random(0))
    assert metrics["skipped"] == 1.0
    assert torch.equal(model.net.g_a[0].weight, before)


def test_init_takes_parameters_not_the_fp16_constants(capfd, tmp_path):
    """A model file stores its buffers in fp16, where compressai's likelihood bound (1e-9) is 0: a run
    started from it with --init must keep its own constants, or a zero likelihood makes the rate
    infinite (what made the first GPU resume go NaN)."""
    import torch

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--codec", "meanscale", "--batch", 2, "--crop", 64, "--width", 8, 8]
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert run(capfd, *common, "--out", first, "--steps", 1)[0] == 0
    code, _, err = run(capfd, *common, "--out", second, "--steps", 1, "--init", first)
    assert code == 0, err
    state = torch.load(tmp_path / "b.run" / "checkpoint.pt", weights_only=True)["model"]
    assert state["net.entropy_bottleneck.likelihood_lower_bound.bound"].item() == pytest.approx(1e-9)
    assert state["net.g_a.1.beta_reparam.pedestal"].item() > 0


def test_a_hyperprior_warm_starts_from_a_factorized_model(capfd, tmp_path, monkeypatch):
    """--init with a factorized file: the meanscale model takes its transforms and gains, holds them
    fixed for the first steps while its new hyperprior learns, then trains them; a meanscale file starts
    a scale hyperprior the same way."""
    import torch
    from safetensors.torch import load_file

    from mcodec.codec.training import image_init

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--batch", 2, "--crop", 64]
    factorized, warm = tmp_path / "f.safetensors", tmp_path / "w.safetensors"
    assert (
        run(capfd, *common, "--codec", "factorized", "--width", 8, 8, "--out", factorized, "--steps", 1)[0]
        == 0
    )
    source = load_file(factorized)
    monkeypatch.setattr(image_init, "WARM_START_FROZEN_STEPS", 2)

    def after(steps):
        code, _, err = run(
            capfd,
            *common,
            "--codec",
            "meanscale",
            "--init",
            factorized,
            "--out",
            warm,
            "--steps",
            steps,
            "--force",
        )
        assert code == 0, err
        return err, torch.load(tmp_path / "w.run" / "checkpoint.pt", weights_only=True)["model"]

    err, state = after(2)
    assert "warm start: " in err
    for name in ("g_a.0.weight", "g_s.6.bias", "g_a.1.beta"):
        assert torch.equal(state[f"net.{name}"], source[name].float()), name
    assert torch.equal(state["log_gain"], source["log_gain"].float())
    _, state = after(4)  # resumes at step 2: the frozen steps are over
    assert not torch.equal(state["net.g_a.0.weight"], source["g_a.0.weight"].float())
    # the other hyperprior variant hands over its transforms and gains, not its hyper networks
    ms = load_file(warm)
    code, _, err = run(
        capfd,
        *common,
        "--codec",
        "hyperprior",
        "--init",
        warm,
        "--out",
        tmp_path / "h.safetensors",
        "--steps",
        1,
    )
    assert code == 0 and "warm start: " in err and "mean-scale-hyperprior model" in err, err
    state = torch.load(tmp_path / "h.run" / "checkpoint.pt", weights_only=True)["model"]
    for name in ("net.g_a.0.weight", "net.g_s.6.bias", "log_inv_gain"):
        assert torch.equal(state[name], ms[name].float()), name
    assert state["net.h_s.4.weight"].shape[0] == 8 != ms["net.h_s.4.weight"].shape[0]  # scales only


def small_meanscale(capfd, tmp_path):
    """(the train command's common arguments on a one-image folder, a meanscale file of N = M = 8)."""
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--codec", "meanscale", "--batch", 2, "--crop", 64]
    narrow = tmp_path / "n.safetensors"
    assert run(capfd, *common, "--width", 8, 8, "--out", narrow, "--steps", 2)[0] == 0
    return common, narrow


def test_a_meanscale_model_widens_its_latent_and_computes_the_same(capfd, tmp_path):
    """--init FILE --width N M with a larger M: the wider model starts as the file's function (the same
    reconstruction and, but for the new zeros' few bits, the same rate), its new latents trainable; another
    N, a narrower M or the other variant is one line."""
    import torch

    from mcodec.codec.image.hyperprior_model import ARCH, GainedHyperprior
    from mcodec.codec.image.latent_refine import hyper_side
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training.image_init import init_state

    common, narrow = small_meanscale(capfd, tmp_path)
    wide = tmp_path / "w.safetensors"
    code, _, err = run(capfd, *common, "--width", 8, 12, "--init", narrow, "--out", wide, "--steps", 1)
    assert code == 0, err
    state = torch.load(tmp_path / "w.run" / "checkpoint.pt", weights_only=True)["model"]
    assert state["net.g_a.6.weight"].shape[0] == 12 and state["net.h_s.4.weight"].shape[0] == 24
    for width, message in (((12, 12), "a larger M"), ((8, 4), "a larger M")):
        code, _, err = run(capfd, *common, "--width", *width, "--init", narrow, "--out", tmp_path / "x.st")
        assert code != 0 and message in err and "Traceback" not in err, err
    code, _, err = run(
        capfd,
        *common[:4],
        "hyperprior",
        *common[5:],
        "--width",
        8,
        12,
        "--init",
        narrow,
        "--out",
        tmp_path / "h.st",
    )
    assert code != 0 and "where the model wants" in err and "Traceback" not in err, err

    w = load_weights(narrow, (ARCH,))
    torch.manual_seed(1)
    x = random_image(3, 64, 64, seed=3).float()[None] / 255
    out = []
    for m in (8, 12):
        model = GainedHyperprior("mean-scale-hyperprior", 8, m)
        model.load_state_dict(init_state(model, w)[0], strict=False)
        model.eval()
        with torch.no_grad():
            q = torch.tensor([5.0])
            y = model.analysis(x, q)
            z_bits, scales, means = hyper_side(model, model.hyper_analysis(y))
            y_hat = torch.round(y - means) + means
            likelihoods = model.net.gaussian_conditional._likelihood(y_hat, scales, means)
            out.append((model.synthesis(y_hat, q), z_bits, -torch.log2(likelihoods).sum().item(), y))
    (x8, z8, y8, _), (x12, z12, y12, y_wide) = out
    assert torch.equal(x8, x12) and z8 == z12
    assert torch.all(y_wide[:, 8:] == 0) and y8 <= y12 < y8 + 0.01 * y_wide[:, 8:].numel()
    # the new latents get gradients: their synthesis weights are not zero
    model.train()
    loss = model(x, torch.tensor([5.0]), rounded_synthesis=True)["x_hat"].square().mean()
    loss.backward()
    assert model.net.g_a[6].weight.grad[8:].abs().sum() > 0


def test_a_wider_synthesis_starts_as_the_files_and_its_file_decodes(capfd, tmp_path):
    """--init FILE --synthesis-width NS above the file's: the wider synthesis gives the file's
    reconstruction exactly, its new channels' outgoing weights get gradients; the exported file says ns
    and encodes and decodes; a resume keeps the width; a narrower width, the factorized codec or a
    widened latent at the same time is one line."""
    import torch

    from mcodec.codec.image.hyperprior_model import ARCH, GainedHyperprior
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training.image_init import init_state

    common, narrow = small_meanscale(capfd, tmp_path)
    wide = tmp_path / "w.safetensors"
    widen = ["--init", narrow, "--synthesis-width", 12, "--out", wide]
    code, _, err = run(capfd, *common, *widen, "--steps", 1)
    assert code == 0, err
    assert (
        load_weights(wide, (ARCH,)).metadata["ns"] == "12"
        and "ns" not in load_weights(narrow, (ARCH,)).metadata
    )
    code, _, err = run(capfd, *common, *widen, "--steps", 2, "--force")  # resumes the widened run
    assert code == 0 and "resuming from step 1" in err, err
    bit = tmp_path / "x.mcd"
    assert run(capfd, "encode", common[2] / "0.png", bit, "--codec", "meanscale", "--weights", wide)[0] == 0
    assert run(capfd, "decode", bit, tmp_path / "x.png", "--weights", wide)[0] == 0
    refusals = (
        ("--synthesis-width", 4, "--init", narrow),
        ("--synthesis-width", 12, "--width", 8, 12, "--init", narrow),
        ("--synthesis-width", 12, "--codec", "factorized"),
    )
    for extra in refusals:
        code, _, err = run(capfd, *common, *extra, "--out", tmp_path / "r.st", "--steps", 1)
        assert code != 0 and "--synthesis-width" in err and "Traceback" not in err, err

    w = load_weights(narrow, (ARCH,))
    x = random_image(3, 64, 64, seed=3).float()[None] / 255
    out = []
    for ns in (None, 12):
        torch.manual_seed(1)
        model = GainedHyperprior("mean-scale-hyperprior", 8, 8, ns=ns)
        model.load_state_dict(init_state(model, w)[0], strict=False)
        model.eval()
        with torch.no_grad():
            out.append(model(x, torch.tensor([5.0]), rounded_synthesis=True)["x_hat"])
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-6)
    model.train()
    model(x, torch.tensor([5.0]), rounded_synthesis=True)["x_hat"].square().mean().backward()
    assert model.net.g_s[6].weight.grad[8:].abs().sum() > 0  # out of the new channels (0 at the start)
    assert model.net.g_s[2].weight.grad[8:, :8].abs().sum() > 0


def test_training_runs_channels_last_and_hands_back_the_usual_layout(tmp_path):
    """Steps run on NHWC tensors (faster convolutions); the trained model leaves train() in the default
    layout, so export and the float64 entropy-parameter path see the same tensors as a loaded file."""
    import io
    import random

    import torch

    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.training import distributed
    from mcodec.codec.training.image_task import ImageTask, TrainConfig, train

    for i in range(2):
        Image.fromarray(random_image(3, 64, 64, seed=i).permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    model = GainedHyperprior("mean-scale-hyperprior", 8, 8)
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main)
    task = ImageTask(model, tmp_path, TrainConfig(batch=2, crop=64), opt, torch.optim.Adam(aux), aux)
    task.setup(distributed.init("cpu"))
    weight = model.net.g_a[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert task.step(model, random.Random(0))["skipped"] == 0.0
    assert any(p is weight for g in opt.param_groups for p in g["params"])  # same Parameter, trained
    assert opt.state[weight]["step"] == 1

    model = GainedHyperprior("mean-scale-hyperprior", 8, 8)
    cfg = TrainConfig(steps=1, batch=2, crop=64)
    assert train(model, tmp_path, tmp_path / "run", cfg, log=io.StringIO())
    assert all(t.is_contiguous() for t in model.state_dict().values())


def test_fresh_optimizers_on_trained_weights_warm_up_then_decay():
    from mcodec.codec.training.clock import DECAY_FROM, WARMUP_STEPS, TrainClock

    plain = TrainClock(steps=10_000)
    assert plain.lr_scale(0) == 1.0
    warm = TrainClock(steps=10_000, warmup_from=0)
    ramp = [warm.lr_scale(s) for s in (0, WARMUP_STEPS // 2 - 1, WARMUP_STEPS - 1, WARMUP_STEPS * 3)]
    assert ramp[0] == pytest.approx(1 / WARMUP_STEPS) and ramp[1] == pytest.approx(0.5)
    assert ramp[2] == ramp[3] == 1.0
    end = int(10_000 * DECAY_FROM) + 1_000  # half-way through the decay: 0.1 ** 0.5
    assert warm.lr_scale(end) == pytest.approx(0.1**0.5)


def test_one_quality_trains_at_its_own_lambda_and_the_model_keeps_it(capfd, tmp_path, monkeypatch):
    """--quality 4 --lambda L: every crop of the run is drawn at quality 4 with lambda L; the exported
    file records L for quality 4 (the others keep theirs), latent refinement optimizes with it, and a
    later run from that file (--init) keeps it."""
    import json

    from safetensors import safe_open

    from mcodec.codec.image.hyperprior import load_ours
    from mcodec.codec.image.lambdas import LAMBDAS
    from mcodec.codec.training import image_task

    seen = []
    real_rd_loss = image_task.rd_loss

    def spy(model, x, quality, lambdas=LAMBDAS, rounded=False, **kw):
        seen.append((set(quality.tolist()), lambdas[3]))
        return real_rd_loss(model, x, quality, lambdas, rounded, **kw)

    monkeypatch.setattr(image_task, "rd_loss", spy)
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--codec", "meanscale", "--batch", 3, "--crop", 64, "--width", 8, 8]
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    code, _, err = run(capfd, *common, "--out", first, "--steps", 2, "--quality", 4, "--lambda", 0.05)
    assert code == 0, err
    assert "training quality 4 (lambda 0.05) only" in err
    assert seen == [({4.0}, 0.05)] * 2
    with safe_open(first, "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lambdas"]) == pytest.approx([*LAMBDAS[:3], 0.05, *LAMBDAS[4:]])
    assert json.loads(meta["qualities_trained"]) == [4]
    assert load_ours("meanscale", first).lambdas[3] == pytest.approx(0.05)

    seen.clear()
    code, _, err = run(capfd, *common, "--out", second, "--steps", 1, "--quality", 4, "--init", first)
    assert code == 0, err
    assert seen == [({4.0}, pytest.approx(0.05))]
    assert load_ours("meanscale", second).lambdas[3] == pytest.approx(0.05)


def test_lambda_needs_exactly_one_quality(capfd, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    common = ["train", "image", data, "--out", tmp_path / "m.safetensors", "--lambda", 0.01]
    for extra in ([], ["--quality", 2, "--quality", 3]):
        code, _, err = run(capfd, *common, *extra)
        assert code == 1 and "--lambda needs exactly one --quality" in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.run").exists()


def test_a_model_file_with_unreadable_lambdas_is_refused():
    from mcodec.codec import CodecError
    from mcodec.codec.image.lambdas import LAMBDAS, lambdas_of

    assert lambdas_of({}, 8) == LAMBDAS  # files from before the key: compressai's
    assert lambdas_of({"lambdas": "[1, 2]"}, 2) == (1.0, 2.0)
    for bad in ("[1, 2, 3]", "[0, 1]", '["x", 1]', "{", "[1e9, 1]"):
        with pytest.raises(CodecError, match="lambdas"):
            lambdas_of({"lambdas": bad}, 2)


def test_rounded_synthesis_trains_on_what_a_decoder_sees(capfd, tmp_path, monkeypatch):
    """--rounded-synthesis: in training, x_hat is the synthesis of y rounded about the means (those of
    the noisy z, drawn first), not of y plus noise, and the gradient still reaches the analysis."""
    import torch

    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.training import image_task

    model = GainedHyperprior("mean-scale-hyperprior", 8, 8).train()
    x, q = torch.rand(1, 3, 64, 64), torch.tensor([3.0])
    torch.manual_seed(0)
    out = model(x, q, rounded_synthesis=True)
    torch.manual_seed(0)
    with torch.no_grad():
        y = model.analysis(x, q)
        z_hat, _ = model.entropy_bottleneck(model.hyper_analysis(y))
        _, means = model.entropy_parameters(z_hat)
        expected = model.synthesis(torch.round(y - means) + means, q)
        torch.manual_seed(0)
        noisy = model(x, q)["x_hat"]
    assert torch.allclose(out["x_hat"], expected, atol=1e-6)
    assert not torch.allclose(noisy, expected, atol=1e-4)
    out["x_hat"].sum().backward()
    assert model.net.g_a[0].weight.grad.abs().sum() > 0

    flags = []
    real_rd_loss = image_task.rd_loss
    monkeypatch.setattr(image_task, "rd_loss", lambda *a, **kw: flags.append(a[4]) or real_rd_loss(*a, **kw))
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--batch", 2, "--crop", 64, "--width", 8, 8, "--rounded-synthesis"]
    model_file = tmp_path / "m.safetensors"
    code, _, err = run(capfd, *common, "--codec", "meanscale", "--out", model_file, "--steps", 1)
    assert code == 0 and flags == [True], err
    code, _, err = run(capfd, *common, "--codec", "factorized", "--out", tmp_path / "f.safetensors")
    assert code == 1 and "--rounded-synthesis is for the hyperprior codecs" in err


def test_a_checkerboard_model_starts_from_a_meanscale_file_and_its_context_learns_faster(capfd, tmp_path):
    """--codec checkerboard --init MEANSCALE: every parameter of the file carries over, the context starts
    at zero (the same function), and its own optimizer group runs at CONTEXT_LR_FACTOR times the rate,
    kept on resume; the export codes and decodes as the checkerboard codec."""
    import torch

    from mcodec import decode_bytes, encode_bytes
    from mcodec.codec.image.hyperprior_model import ARCH, GainedHyperprior
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training.image_init import init_state
    from mcodec.codec.training.image_task import CONTEXT_LR_FACTOR

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    common = ["train", "image", data, "--batch", 2, "--crop", 64, "--width", 8, 8]
    plain, cb = tmp_path / "m.safetensors", tmp_path / "c.safetensors"
    assert run(capfd, *common, "--codec", "meanscale", "--out", plain, "--steps", 2)[0] == 0
    args = [*common, "--codec", "checkerboard", "--init", plain, "--out", cb, "--lr", 1e-3]
    code, _, err = run(capfd, *args, "--steps", 2)
    assert code == 0, err
    assert "frozen" not in err  # nothing transplanted: the whole model carries over
    ckpt = torch.load(tmp_path / "c.run" / "checkpoint.pt", weights_only=True)
    groups = ckpt["opt"]["param_groups"]
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(CONTEXT_LR_FACTOR * groups[0]["lr"])
    code, _, err = run(capfd, *args, "--steps", 3, "--force")  # resumes from the checkpoint
    assert code == 0 and "resuming from step 2" in err, err
    groups = torch.load(tmp_path / "c.run" / "checkpoint.pt", weights_only=True)["opt"]["param_groups"]
    assert groups[1]["lr"] == pytest.approx(CONTEXT_LR_FACTOR * groups[0]["lr"])

    w = load_weights(plain, (ARCH,))
    x = random_image(3, 64, 64, seed=3).float()[None] / 255
    out = []
    for arch in ("mean-scale-hyperprior", "mean-scale-checkerboard"):
        model = GainedHyperprior(arch, 8, 8)
        state, frozen = init_state(model, w)
        assert not frozen
        model.load_state_dict(state, strict=False)
        with torch.no_grad():
            out.append(model.eval()(x, torch.tensor([3.0]), rounded_synthesis=True))
    assert torch.equal(out[0]["x_hat"], out[1]["x_hat"])
    assert torch.equal(out[0]["likelihoods"]["y"], out[1]["likelihoods"]["y"])

    image = random_image(3, 40, 56, seed=5)
    header, decoded = decode_bytes(encode_bytes(image, "image", "checkerboard", 3, weights=cb), weights=cb)
    chunks = [t for t, _ in header.chunks]
    assert chunks[:3] == ["ZLAT", "YLAT", "YCTX"] and set(chunks[3:]) <= {"LFCR", "WFLT"}  # encoder choices
    assert decoded.shape == image.shape


def test_channel_shuffle_reorders_the_colours_of_about_that_share_of_crops(capfd, tmp_path, monkeypatch):
    """--channel-shuffle P: each crop's RGB channels are put in a random order with probability P (all six
    orders turn up), exactly (values unchanged); at 0 every crop keeps its colours."""
    import random

    import torch

    from mcodec.codec.training import image_task

    image = torch.stack([torch.full((40, 48), v, dtype=torch.uint8) for v in (10, 20, 30)])
    for p, reordered in ((0.0, (0, 0)), (0.5, (0.3, 0.55)), (1.0, (0.75, 0.92))):
        batch = image_task.random_batch([image], 600, 32, random.Random(1), channel_shuffle=p)
        orders = [tuple(round(v) for v in (crop.mean((1, 2)) * 255).tolist()) for crop in batch]
        assert all(sorted(o) == [10, 20, 30] for o in orders)
        share = sum(o != (10, 20, 30) for o in orders) / len(orders)  # 5/6 of shuffles change the order
        assert reordered[0] <= share <= reordered[1], (p, share)
        assert len(set(orders)) == (6 if p else 1)

    seen = []  # the options reach the crops
    real_batch = image_task.random_batch
    monkeypatch.setattr(image_task, "random_batch", lambda *a: seen.append(a[4:]) or real_batch(*a))
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(3, 72, 80, seed=0).permute(1, 2, 0).numpy()).save(data / "0.png")
    out = tmp_path / "m.safetensors"
    args = ["train", "image", data, "--codec", "meanscale", "--batch", 2, "--crop", 64, "--width", 8, 8]
    options = ["--channel-shuffle", 0.25, "--rescale-crops", 0.5, "--rescale-max", 1.25, "--area-power", 0.5]
    options += ["--rotate-crops", 0.75]
    code, _, err = run(capfd, *args, "--out", out, "--steps", 1, *options)
    assert code == 0, err
    assert seen == [(0.25, 0.5, 1.25, [(72 * 80) ** 0.5], 0.75)]


def test_rotate_crops_turns_about_that_share_of_crops_into_every_orientation():
    """--rotate-crops P: a crop is turned by 1-3 quarter turns with probability P, exactly; with the
    horizontal flips all 8 symmetries of the square turn up; at 0 only upright and mirrored crops."""
    import random

    import torch

    from mcodec.codec.training import image_task

    square = torch.arange(16, dtype=torch.uint8).reshape(4, 4).expand(3, 4, 4).contiguous()
    upright = [square, square.flip(-1)]
    symmetries = [s.rot90(k, (-2, -1)) for s in upright for k in range(4)]
    for p, lo, hi, kinds in ((0.0, 0, 0, 2), (0.5, 0.4, 0.6, 8), (1.0, 1, 1, 6)):
        batch = image_task.random_batch([square], 400, 4, random.Random(3), rotate_crops=p)
        found = [
            next(i for i, s in enumerate(symmetries) if torch.equal((c * 255).round().byte(), s))
            for c in batch
        ]
        share = sum(i % 4 != 0 for i in found) / len(found)  # turned by at least a quarter
        assert lo <= share <= hi, (p, share)
        assert len(set(found)) == kinds, (p, sorted(set(found)))


def test_area_power_draws_images_by_their_pixel_count():
    """--area-power P: an image gives crops in proportion to its pixels^P; 0 draws every image alike,
    with the same random numbers as before the option existed (earlier runs replay)."""
    import random

    import torch

    from mcodec.codec.training import image_task

    small = torch.zeros(3, 40, 40, dtype=torch.uint8)
    large = torch.full((3, 80, 80), 255, dtype=torch.uint8)  # 4x the pixels
    images = [small, large]
    assert image_task.draw_weights(images, 0.0) is None
    for power, lo, hi in ((0.0, 0.45, 0.55), (0.5, 0.62, 0.72), (1.0, 0.75, 0.85)):
        weights = image_task.draw_weights(images, power)
        batch = image_task.random_batch(images, 1000, 32, random.Random(4), weights=weights)
        share = (batch.mean((1, 2, 3)) > 0.5).float().mean().item()  # crops of the large image
        assert lo <= share <= hi, (power, share)  # 1/2, 2/3 and 4/5 expected

    first = images[random.Random(6).randrange(2)]  # P = 0 keeps the old draw: randrange over the images
    assert torch.equal(
        image_task.random_batch(images, 1, 32, random.Random(6))[0, :, 0, 0] * 255, first[:, 0, 0]
    )


def test_rescale_crops_cut_larger_windows_downscaled_to_the_crop():
    """--rescale-crops P: about that share of crops comes from a window larger than the crop (up to the
    image's short side, at most 1 / MIN_CROP_SCALE times), downscaled to the crop in 8 bits; the others
    are plain sub-windows. On a ramp whose value is its column, the slope across a crop is the window's
    scale."""
    import random

    import torch

    from mcodec.codec.training import image_task

    ramp = torch.arange(200, dtype=torch.uint8).expand(3, 150, 200).contiguous()
    for p, lo, hi in ((0.0, 0, 0), (0.5, 0.35, 0.65), (1.0, 0.9, 1.0)):
        batch = image_task.random_batch([ramp], 400, 40, random.Random(2), rescale_crops=p)
        assert batch.shape == (400, 3, 40, 40) and torch.equal(batch, (batch * 255).round() / 255)
        row = batch[:, 0, 20] * 255
        slope = (row[:, -1] - row[:, 0]).abs() / 39  # 1 for a plain crop, the window's scale otherwise
        assert bool(((slope > 0.99) & (slope < 150 / 40 + 0.05)).all()), (slope.min(), slope.max())
        share = (slope > 1.05).float().mean().item()
        assert lo <= share <= hi, (p, share)
    assert slope.max() > 3  # log-uniform scales reach 1 / MIN_CROP_SCALE (3.3; the short side allows 3.75)
    wide = torch.zeros(3, 40, 4000, dtype=torch.uint8)
    assert image_task.rescaled_crop(wide, 10, random.Random(0)).shape == (3, 10, 10)

    # --rescale-max 1.5: scales above 1 cut a smaller window and upscale it (slopes down to 1 / 1.5)
    batch = image_task.random_batch([ramp], 400, 40, random.Random(3), rescale_crops=1.0, rescale_max=1.5)
    row = batch[:, 0, 20] * 255
    slope = (row[:, -1] - row[:, 0]).abs() / 39
    upscaled = (slope < 0.97).float().mean().item()  # log 1.5 / (log 1.5 - log 0.3): 25% of the draws
    assert 0.17 <= upscaled <= 0.33 and slope.min() > 0.64 and slope.max() > 3, (upscaled, slope.min())
