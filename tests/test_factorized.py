"""The factorized image codec: any size, grayscale, rate vs estimate, determinism, weights checks."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import random_image

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.image.factorized import FactorizedCodec
from mcodec.codec.image.padding import pad_to_multiple
from mcodec.entropy import read_container


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 17, 33), (1, 20, 15), (3, 64, 48)])
def test_any_size_roundtrip(tiny_weights, shape):
    image = random_image(*shape)
    data = encode_bytes(image, "image", "factorized", 5, weights=tiny_weights)
    _, decoded = decode_bytes(data, weights=tiny_weights)
    assert decoded.shape == image.shape and decoded.dtype == torch.uint8


def test_quality_is_continuous_and_checked(tiny_weights):
    image = random_image(3, 32, 32)
    for q in (1, 2.5, 8):
        _, decoded = decode_bytes(
            encode_bytes(image, "image", "factorized", q, weights=tiny_weights), weights=tiny_weights
        )
        assert decoded.shape == image.shape
    for q in (0, 8.5):
        with pytest.raises(CodecError, match="quality"):
            encode_bytes(image, "image", "factorized", q, weights=tiny_weights)


def test_file_size_matches_estimated_rate(sample_path):
    """Real bytes of the latent chunk vs the model's own likelihoods: within 1% (+ the header)."""
    from mcodec.codec.media_io import read_image

    codec = FactorizedCodec()
    image = read_image(sample_path)
    for q in (1, 4, 8):
        data = encode_bytes(image, "image", "factorized", q)
        x = pad_to_multiple(image[None].float() / 255, 16)
        with torch.no_grad():
            out = codec.model(x, torch.tensor([float(q)]))
        estimated_bytes = -torch.log2(out["likelihoods"]["y"]).sum().item() / 8
        latent_bytes = len(dict(read_container(data).chunks)["YLAT"])
        assert abs(latent_bytes - estimated_bytes) <= 0.01 * estimated_bytes + 8
        assert len(data) - latent_bytes < 300  # header and framing


def test_other_weights_are_refused(tiny_weights, sample_path):
    from mcodec.codec.media_io import read_image

    data = encode_bytes(read_image(sample_path)[:, :32, :32], "image", "factorized", 3)
    with pytest.raises(CodecError, match="other weights"):
        decode_bytes(data, weights=tiny_weights)


def test_weights_file_must_be_a_factorized_model(tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + b" " * 14)
    with pytest.raises(CodecError):
        FactorizedCodec(bogus)
    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"\x80\x04garbage")
    with pytest.raises(CodecError, match="not a safetensors"):
        FactorizedCodec(pickle)
    with pytest.raises(CodecError, match="cannot read"):
        FactorizedCodec(tmp_path / "missing.safetensors")


DECODE_SCRIPT = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[2]))
from mcodec import decode_bytes
_, image = decode_bytes(open(sys.argv[1], 'rb').read())
print(hashlib.sha256(image.numpy().tobytes()).hexdigest())
"""


def test_decoding_is_identical_across_runs_and_thread_counts(tmp_path, sample_path):
    from mcodec.codec.media_io import read_image

    path = tmp_path / "x.mcd"
    path.write_bytes(encode_bytes(read_image(sample_path), "image", "factorized", 6))
    hashes = {
        subprocess.run(
            [sys.executable, "-c", DECODE_SCRIPT, str(path), str(t)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for t in (1, 2, 1)
    }
    assert len(hashes) == 1


def test_encoding_is_deterministic(tiny_weights):
    image = random_image(3, 40, 56, seed=3)
    a = encode_bytes(image, "image", "factorized", 4, weights=tiny_weights)
    b = encode_bytes(image, "image", "factorized", 4, weights=tiny_weights)
    assert a == b
    assert np.frombuffer(a, np.uint8).size > 0
