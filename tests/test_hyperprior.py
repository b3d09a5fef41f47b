"""Hyperprior codecs (ours and compressai zoo checkpoints): round trips, the cpu-f64 entropy-parameter
path, and its mismatch check."""

import subprocess
import sys

import pytest
import torch
from compressai.models import MeanScaleHyperprior, ScaleHyperprior
from conftest import random_image
from safetensors.torch import save_file

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.image.hyperprior import VARIANTS
from mcodec.codec.image.hyperprior_model import GainedHyperprior
from mcodec.codec.training.export import export_hyperprior_model
from mcodec.entropy import read_container, write_container

CHUNKS = {
    "hyperprior": ["ZLAT", "YLAT"],
    "meanscale": ["ZLAT", "YLAT"],
    "checkerboard": ["ZLAT", "YLAT", "YCTX"],
}


def with_busy_context(model: GainedHyperprior) -> GainedHyperprior:
    """A checkerboard model whose context moves means and scales (a fresh one is zero: plain meanscale)."""
    if model.context is not None:
        for p in model.context.mix[-1].parameters():
            torch.nn.init.normal_(p, std=0.05)
    return model


@pytest.fixture(scope="module", params=list(VARIANTS))
def ours(request, tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("hp") / f"{request.param}.safetensors"
    model = with_busy_context(GainedHyperprior(VARIANTS[request.param], 12, 16))
    export_hyperprior_model(model, path, f"{request.param}-test")
    return request.param, path


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 65, 70), (1, 30, 20)])
def test_roundtrip_any_size(ours, shape):
    codec, weights = ours
    image = random_image(*shape)
    data = encode_bytes(image, "image", codec, 2.5, weights=weights)
    header, decoded = decode_bytes(data, weights=weights)
    assert decoded.shape == image.shape
    assert header.header.profile == "cpu-f64"
    # an untrained model's pictures are off in their slow colours: the low-frequency correction pays
    assert [t for t, _ in header.chunks] == CHUNKS[codec] + ["LFCR"] * (shape[1] > 1)


def test_checkerboard_context_in_bands_is_the_whole_latents(monkeypatch):
    """The coder's float64 context runs in bands of rows (odd starts flip the anchor parity): the same
    values as one pass over the whole latent, and the anchors keep the hyperprior's."""
    import numpy as np

    from mcodec.codec.image import checkerboard

    torch.manual_seed(2)
    context = with_busy_context(GainedHyperprior(VARIANTS["checkerboard"], 12, 16)).context.double().eval()
    rng = np.random.default_rng(0)
    anchors_at = checkerboard.anchors_of((16, 11, 9))
    y_hat = np.where(anchors_at, np.round(rng.normal(0, 3, (16, 11, 9))), 0.0)
    means, scales = rng.normal(0, 1, (16, 11, 9)), rng.uniform(0.05, 5, (16, 11, 9))
    whole = checkerboard.context_parameters(context, y_hat, scales, means)
    monkeypatch.setattr(checkerboard, "BAND_ROWS", 3)
    banded = checkerboard.context_parameters(context, y_hat, scales, means)
    for a, b in zip(whole, banded, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.array_equal(whole[1][anchors_at], means[anchors_at])
    assert np.allclose(whole[0][anchors_at], np.maximum(scales[anchors_at], checkerboard.SCALE_FLOOR))
    assert not np.allclose(whole[1][~anchors_at], means[~anchors_at])


def test_a_zero_context_codes_what_meanscale_codes(tmp_path):
    """A checkerboard model made from a meanscale file (context at zero) decodes to the same pixels."""
    from mcodec.codec.image.hyperprior_model import ARCH
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training.image_init import init_state

    torch.manual_seed(3)
    plain, cb = tmp_path / "m.safetensors", tmp_path / "c.safetensors"
    export_hyperprior_model(GainedHyperprior(VARIANTS["meanscale"], 12, 16), plain, "meanscale-test")
    model = GainedHyperprior(VARIANTS["checkerboard"], 12, 16)
    model.load_state_dict(init_state(model, load_weights(plain, (ARCH,)))[0], strict=False)
    export_hyperprior_model(model, cb, "checkerboard-test")
    image = random_image(3, 70, 90, seed=6)
    decoded = [
        decode_bytes(encode_bytes(image, "image", c, 6, weights=w), weights=w)[1]
        for c, w in (("meanscale", plain), ("checkerboard", cb))
    ]
    assert torch.equal(*decoded)


def test_entropy_parameter_mismatch_is_reported(ours):
    codec, weights = ours
    c = read_container(encode_bytes(random_image(3, 64, 64), "image", codec, 5, weights=weights))
    c.header.params["ep_crc32"] ^= 1
    with pytest.raises(CodecError, match="entropy parameters differ"):
        decode_bytes(write_container(c), weights=weights)


def test_the_correction_is_fitted_to_the_decoders_picture(ours, monkeypatch):
    """The encoder synthesizes its own y_hat rather than decode its file: the picture it fits the
    low-frequency correction to is the one a decoder makes of the file without the correction, and the
    picture it fits the restoration filter to is the decoder's without the filter."""
    from mcodec.codec.image import lowfreq, wiener

    codec, weights = ours
    seen = {}
    for module in (lowfreq, wiener):
        choose = module.choose

        def spy(source, picture, lmbda, module=module, choose=choose):
            seen[module.CHUNK] = picture.clone()
            return choose(source, picture, lmbda)

        monkeypatch.setattr(module, "choose", spy)
    image = random_image(3, 50, 70, seed=3)
    plain = encode_bytes(
        image, "image", codec, 3, weights=weights, low_frequency=False, restoration_filter=False
    )
    unfiltered = encode_bytes(image, "image", codec, 3, weights=weights, restoration_filter=False)
    seen.clear()
    encode_bytes(image, "image", codec, 3, weights=weights)
    assert torch.equal(seen["LFCR"], decode_bytes(plain, weights=weights)[1])
    assert torch.equal(seen["WFLT"], decode_bytes(unfiltered, weights=weights)[1])


DECODE = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[3]))
from pathlib import Path
from mcodec import decode_bytes
_, image = decode_bytes(open(sys.argv[1], 'rb').read(), weights=Path(sys.argv[2]))
print(hashlib.sha256(image.numpy().tobytes()).hexdigest())
"""


def test_decode_identical_across_thread_counts(ours, tmp_path):
    codec, weights = ours
    path = tmp_path / "x.mcd"
    path.write_bytes(encode_bytes(random_image(3, 96, 130, seed=4), "image", codec, 7, weights=weights))
    hashes = {
        subprocess.run(
            [sys.executable, "-c", DECODE, str(path), str(weights), str(t)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for t in (1, 2)
    }
    assert len(hashes) == 1


def test_missing_default_weights_say_so(monkeypatch, tmp_path):
    from mcodec.codec import model_file
    from mcodec.codec.image import hyperprior

    monkeypatch.setattr(model_file, "MODELS_DIR", tmp_path)  # an install without the model files
    with pytest.raises(CodecError, match="no default weights"):
        hyperprior.load_ours("hyperprior")


@pytest.mark.parametrize("codec_id", ["hyperprior", "meanscale"])
def test_shipped_models_load_as_their_variant(codec_id):
    from mcodec.codec import registry

    codec = registry.get(codec_id)
    assert codec.model.arch == VARIANTS[codec_id] and codec.model_id.startswith(codec_id)


@pytest.mark.parametrize(
    "codec, cls",
    [("compressai:bmshj2018-hyperprior", ScaleHyperprior), ("compressai:mbt2018-mean", MeanScaleHyperprior)],
)
@pytest.mark.parametrize("form", ["state_dict", "wrapped", "safetensors"])
def test_compressai_zoo_checkpoint_loads(tmp_path, codec, cls, form):
    """Zoo checkpoints are plain state dicts of compressai's classes: save one locally and code with it."""
    torch.manual_seed(0)
    net = cls(16, 24)
    net.update(force=True)
    state = net.state_dict()
    path = tmp_path / ("w.safetensors" if form == "safetensors" else "w.pth.tar")
    if form == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save({"state_dict": state} if form == "wrapped" else state, path)
    image = random_image(3, 40, 50)
    data = encode_bytes(image, "image", codec, 1, weights=path)
    _, decoded = decode_bytes(data, weights=path)
    assert decoded.shape == image.shape
    # the real file matches compressai's own likelihood estimate of the same latents
    x = torch.nn.functional.pad(image[None].float() / 255, (0, 14, 0, 24), mode="replicate")
    with torch.no_grad():
        out = net.eval()(x)
    estimated = sum(-torch.log2(lk).sum().item() for lk in out["likelihoods"].values()) / 8
    coded = sum(len(p) for _, p in read_container(data).chunks)
    assert coded <= estimated * 1.05 + 16


def test_zoo_checkpoint_errors(tmp_path):
    with pytest.raises(CodecError, match="needs --weights"):
        encode_bytes(random_image(3, 8, 8), "image", "compressai:mbt2018-mean", 1)
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"garbage")
    with pytest.raises(CodecError, match="not a readable checkpoint"):
        encode_bytes(random_image(3, 8, 8), "image", "compressai:mbt2018-mean", 1, weights=bad)
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(CodecError, match="not a compressai hyperprior"):
        encode_bytes(random_image(3, 8, 8), "image", "compressai:bmshj2018-hyperprior", 1, weights=bad)


def test_quantize_rounds_and_a_dead_zone_only_shrinks_magnitudes():
    import numpy as np

    from mcodec.codec.image.hyperprior import quantize

    r = np.random.default_rng(0).normal(0, 3, 10_000)
    assert np.array_equal(quantize(r), np.rint(r))
    dz = quantize(r, 0.35)
    assert np.all(np.abs(dz) <= np.abs(np.rint(r))) and np.all(np.sign(dz) * np.sign(r) >= 0)
    assert np.array_equal(quantize(np.array([-1.6, -0.6, 0.6, 1.6]), 0.35), [-1, 0, 0, 1])
    assert (dz == 0).sum() > (np.rint(r) == 0).sum()


def test_gains_extrapolate_past_the_top_quality_along_the_last_step():
    model = GainedHyperprior(VARIANTS["meanscale"], 4, 6)
    torch.nn.init.normal_(model.log_gain)
    q = torch.tensor([1.0, 4.5, 8.0, 10.0])
    clamped, extrapolated = model.gains(q)[0], model.gains(q, extrapolate=True)[0]
    assert torch.equal(clamped[:3], extrapolated[:3]) and torch.equal(clamped[3], clamped[2])
    last_step = model.log_gain[7] - model.log_gain[6]
    assert torch.allclose(extrapolated[3, :, 0, 0].log(), model.log_gain[7] + 2 * last_step, atol=1e-5)
