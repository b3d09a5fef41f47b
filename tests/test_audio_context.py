"""The rvq decoder's context units (`mcodec train audio --context-units`): added to a trained model they
start as the identity, they travel in the model file, and they learn at their own rate."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.audio.model import ARCH, RVQAutoencoder, sizes
from mcodec.codec.base import CodecError
from mcodec.codec.model_file import load_weights
from mcodec.codec.training.export import export_rvq_model

TINY = {"base": 2, "dim": 8, "n_q": 2, "codebook_size": 16}


def _decode(model: RVQAutoencoder, codes: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model.decode(codes)


def test_context_units_start_as_the_identity_and_travel_in_the_model_file(tmp_path):
    torch.manual_seed(0)
    plain = RVQAutoencoder(**TINY)
    codes = torch.randint(0, 16, (2, 1, 40))
    wider = RVQAutoencoder(**TINY, context=3)
    wider.load_state_dict(plain.state_dict(), strict=False)
    assert torch.equal(_decode(wider, codes), _decode(plain, codes))

    with torch.no_grad():
        for p in wider.decoder.context.parameters():
            p.add_(0.3 * torch.randn_like(p))  # trained units: the decoder's function changes
    assert not torch.allclose(_decode(wider, codes), _decode(plain, codes), atol=1e-3)
    out = tmp_path / "ctx.safetensors"
    export_rvq_model(wider, torch.ones(2, 16), out, "ctx")
    assert sizes(load_weights(out, ARCH))[4] == 3
    codec = RVQAudioCodec(out)
    assert len(codec.model.decoder.context) == 3
    wider.half().float()  # as the file holds it: fp16
    assert torch.allclose(_decode(codec.model, codes), _decode(wider, codes), atol=1e-5)


def test_a_model_file_without_the_units_its_metadata_names_is_refused(tmp_path):
    out = tmp_path / "plain.safetensors"
    export_rvq_model(RVQAutoencoder(**TINY), torch.ones(2, 16), out, "plain")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(out, "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    save_file(tensors, tmp_path / "lying.safetensors", {**meta, "context": "2"})
    with pytest.raises(CodecError, match="lacks tensors: decoder.context"):
        RVQAudioCodec(tmp_path / "lying.safetensors")


def test_context_units_added_by_init_learn_at_their_own_rate(capfd, tmp_path, speech_folder):
    common = ["train", "audio", speech_folder, "--batch", 2, "--seconds", 0.1, "--steps", 1]
    start = tmp_path / "start.safetensors"
    code, _, err = run_cli(capfd, *common, "--width", 2, 8, "--out", start)
    assert code == 0, err
    out = tmp_path / "ctx.safetensors"
    code, _, err = run_cli(
        capfd, *common, "--init", start, "--context-units", 2, "--context-lr-factor", 10, "--lr", 1e-3,
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert sizes(load_weights(out, ARCH))[4] == 2
    groups = torch.load(tmp_path / "ctx.run" / "checkpoint.pt", weights_only=True)["opt"]["param_groups"]
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    assert len(groups[1]["params"]) == 2 * 4  # two units of two convolutions, weight and bias

    code, _, err = run_cli(capfd, *common, "--init", out, "--context-units", 1, "--out", tmp_path / "x.st")
    assert code == 2 and "has 2 context units" in err, err


def test_a_decoder_only_fine_tune_keeps_the_bitstream_and_moves_the_decoder(capfd, tmp_path, speech_folder):
    """`--decoder-only`: the encoder, the codebooks and the code priors are the init file's (so every
    input codes to the same bytes) and only the decoder learns."""
    common = ["train", "audio", speech_folder, "--batch", 2, "--seconds", 0.1, "--steps", 2]
    start = tmp_path / "start.safetensors"
    code, _, err = run_cli(capfd, *common, "--width", 2, 8, "--out", start)
    assert code == 0, err
    out = tmp_path / "dec.safetensors"
    code, _, err = run_cli(capfd, *common, "--init", start, "--decoder-only", "--lr", 1e-2, "--out", out)
    assert code == 0, err
    a, b = load_weights(start, ARCH), load_weights(out, ARCH)
    assert a.tables("tables").sha256() == b.tables("tables").sha256()
    moved = {k for k in a.tensors if not torch.equal(a.tensors[k], b.tensors[k])}
    assert moved and all(k.startswith("decoder.") for k in moved), moved

    code, _, err = run_cli(capfd, *common, "--decoder-only", "--out", tmp_path / "x.st")
    assert code == 2 and "needs --init" in err, err
