"""Shared fixtures: tiny randomly initialised models (fast) and small images."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from mcodec.codec.image.factorized_model import GainedFactorizedPrior
from mcodec.codec.training.export import export_factorized_model

SAMPLE = Path(str(files("mcodec") / "samples" / "fruits_400x300.png"))


def run_cli(capfd, *args) -> tuple[int, str, str]:
    """Run the mcodec CLI in-process on ``args`` (any values, passed as strings); returns (exit code,
    stdout, stderr) as ``capfd`` captured them."""
    from mcodec.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    out, err = capfd.readouterr()
    return e.value.code, out, err


@pytest.fixture
def no_key_pictures(monkeypatch):
    """Video encodes without key pictures (FORMAT.md 6.4.2, on by default): for the tests of the other
    video features, whose files they lay out chunk by chunk; test_video_keypicture.py tests them."""
    from mcodec.nerv import codec

    monkeypatch.setattr(codec, "KEY_PICTURES", False)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """An untrained 8-channel factorized model exported like the shipped one."""
    torch.manual_seed(0)
    model = GainedFactorizedPrior(n=8, m=8, qualities=8)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    export_factorized_model(model, path, "tiny-test")
    return path


@pytest.fixture(scope="session")
def tiny_rvq(tmp_path_factory) -> Path:
    """A 16-stage rvq model (base 4, dim 16) with k-means codebooks and code priors, exported like the
    shipped one."""
    from mcodec.codec.audio.model import RVQAutoencoder
    from mcodec.codec.training.export import export_rvq_model

    torch.manual_seed(0)
    model = RVQAutoencoder(base=4, dim=16, n_q=16)
    model.train()
    model(torch.randn(4, 1, 320 * 40) * 0.1, 16)  # k-means initialisation of every codebook
    model.eval()
    codes = model.encode(torch.randn(1, 1, 320 * 200) * 0.1, 16)
    counts = torch.stack([torch.bincount(c.reshape(-1), minlength=1024) for c in codes]).double()
    path = tmp_path_factory.mktemp("rvq") / "rvq.safetensors"
    export_rvq_model(model, counts, path, "rvq-test")
    return path


@pytest.fixture(scope="session")
def tiny_meanscale(tmp_path_factory) -> Path:
    """An untrained mean-scale model (n=12, m=16) exported like the shipped one: its pictures are blurred
    and off in their slow colours, so the encoder's restoration chunks pay (test_lowfreq, test_wiener)."""
    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.training.export import export_hyperprior_model

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("meanscale") / "meanscale.safetensors"
    export_hyperprior_model(GainedHyperprior("mean-scale-hyperprior", 12, 16), path, "meanscale-test")
    return path


def quality_loss(data: bytes, image: torch.Tensor, weights: Path, lmbda: float) -> float:
    """lmbda x MSE (8-bit levels) + bpp of a file against its source, as the encoder's choices weigh them:
    real bytes, decoded pixels."""
    from mcodec import decode_bytes

    _, decoded = decode_bytes(data, weights=weights)
    mse = float(((decoded.float() - image.float()) ** 2).mean())
    return lmbda * mse + len(data) * 8 / image[0].numel()


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


def random_image(c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth-ish uint8 test image [c, h, w]."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(c, max(h // 4, 1) + 1, max(w // 4, 1) + 1)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(base)[None], size=(h, w), mode="bilinear")
    return up[0].round().clamp(0, 255).to(torch.uint8)


@pytest.fixture
def speech_folder(tmp_path) -> Path:
    """A training folder for `mcodec train audio`: one group, speech/, holding the shipped speech sample."""
    folder = tmp_path / "data" / "speech"
    folder.mkdir(parents=True)
    (folder / "a.flac").write_bytes((files("mcodec") / "samples" / "goforward_16k.flac").read_bytes())
    return folder.parent
