"""Model files: the one writer and the one checked loader, for every codec that has weights."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from mcodec.codec import CodecError
from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.audio.model import RVQAutoencoder
from mcodec.codec.image.factorized import FactorizedCodec
from mcodec.codec.image.hyperprior import load_ours
from mcodec.codec.image.hyperprior_model import GainedHyperprior
from mcodec.codec.model_file import load_weights, write_model_file
from mcodec.codec.training.export import export_hyperprior_model, export_rvq_model
from mcodec.entropy import TableSet


def test_write_then_load_keeps_tensors_tables_and_metadata(tmp_path):
    tables = TableSet.from_pmfs([[1.0, 2.0, 3.0]], [-1], [1e-9])
    tensors = {"w": torch.randn(3, 2), "flag": torch.tensor(True), "n": torch.arange(4)}
    out = tmp_path / "sub" / "m.safetensors"  # a missing folder is made
    write_model_file(out, tensors, {"tables": tables}, {"arch": "test-arch", "model_id": "m-1", "n": 7})
    w = load_weights(out, "test-arch")
    assert w.tensors["w"].dtype == torch.float16 and torch.equal(w.tensors["w"], tensors["w"].half())
    assert w.tensors["flag"].dtype == torch.bool and torch.equal(w.tensors["n"], tensors["n"])
    assert w.tables("tables").sha256() == tables.sha256() and "tables.freqs" not in w.tensors
    assert w.metadata["n"] == "7" and w.model_id("fallback") == "m-1" and w.int_meta("n", 1, 8) == 7
    assert [p.name for p in out.parent.iterdir()] == ["m.safetensors"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # readable by all, as a shipped file


def test_writer_refuses_metadata_without_arch_or_model_id(tmp_path):
    with pytest.raises(ValueError, match="arch"):
        write_model_file(tmp_path / "m.safetensors", {}, {}, {"model_id": "x"})


@pytest.mark.parametrize("value", ["100000", "-1", "0", "1.5", "many", ""])
def test_absurd_sizes_in_metadata_are_refused_before_a_network_is_built(tiny_weights, tmp_path, value):
    """A factorized file claiming n = 100000 would allocate gigabytes; a bad size is one CodecError."""
    tensors = load_file(tiny_weights)
    from safetensors import safe_open

    with safe_open(tiny_weights, "pt") as f:
        meta = dict(f.metadata())
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata={**meta, "n": value})
    with pytest.raises(CodecError, match=r"metadata n=.* is not an integer in 1\.\.1024"):
        FactorizedCodec(bad)


def test_missing_metadata_field_is_a_codec_error(tiny_weights, tmp_path):
    from safetensors import safe_open

    with safe_open(tiny_weights, "pt") as f:
        meta = {k: v for k, v in f.metadata().items() if k != "qualities"}
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(tiny_weights), bad, metadata=meta)
    with pytest.raises(CodecError, match="metadata qualities=None"):
        FactorizedCodec(bad)


def test_a_file_lacking_a_tensor_says_which(tiny_weights, tmp_path):
    tensors = load_file(tiny_weights)
    from safetensors import safe_open

    with safe_open(tiny_weights, "pt") as f:
        meta = dict(f.metadata())
    del tensors["g_s.0.weight"]
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=meta)
    with pytest.raises(CodecError, match="lacks tensors: g_s.0.weight"):
        FactorizedCodec(bad)


def test_hyperprior_and_rvq_files_load_through_the_same_checks(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "hp.safetensors"
    export_hyperprior_model(GainedHyperprior("mean-scale-hyperprior", 8, 8, 2), path, "hp-test")
    codec = load_ours("meanscale", path)
    assert codec.model_id == "hp-test" and codec.model.qualities == 2
    with pytest.raises(CodecError, match="not 'scale-hyperprior'"):
        load_ours("hyperprior", path)

    model = RVQAutoencoder(base=2, dim=4, n_q=2, codebook_size=16)
    rvq_path = tmp_path / "rvq.safetensors"
    export_rvq_model(model, torch.ones(2, 16, dtype=torch.float64), rvq_path, "rvq-test")
    rvq = RVQAudioCodec(rvq_path)
    # the codebook size comes from the file: a stage under the uniform table costs log2(16) bits
    assert rvq.model.quantizer.size == 16 and rvq.bits_uniform == 4.0
    assert not any(".ema_" in k for k in load_file(rvq_path))  # training state stays out of the file
