"""Image transforms tile by tile (codec/image/tiling.py): tiles join without seams, an image of one tile
takes the untiled path, and the codecs round-trip with tiles forced small."""

import pytest
import torch
from conftest import SAMPLE
from torch import nn

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import registry
from mcodec.codec.image import latent_refine, tiling
from mcodec.codec.image.factorized_model import GainedFactorizedPrior
from mcodec.codec.image.hyperprior_model import GainedHyperprior
from mcodec.codec.media_io import read_image


def tiny_models():
    torch.manual_seed(0)
    return [GainedFactorizedPrior(8, 8).eval(), GainedHyperprior("mean-scale-hyperprior", 8, 8).eval()]


def test_margin_follows_the_architecture():
    for model in tiny_models():
        g_a, g_s = tiling.analysis_layers(model), tiling.synthesis_layers(model)
        # 4 stride-2 5x5 convolutions reach 2 latents left and 1 right of a cut; the deconvolutions
        # 15 pixels left and 30 right
        assert tiling.context(g_a, 1) == 2 and tiling.context(g_s, 16) == 2
    one = nn.Sequential(nn.Conv2d(3, 3, 5, 2, 2))
    assert tiling.context(one, 1) == 1
    wide = nn.Sequential(nn.Conv2d(3, 3, 9, 1, 4), nn.Conv2d(3, 3, 9, 1, 4))
    assert tiling.context(wide, 1) == 8
    with pytest.raises(TypeError, match="MaxPool2d"):
        tiling.context(nn.Sequential(nn.MaxPool2d(2)), 1)


@pytest.mark.parametrize("index", [0, 1])
def test_tiles_join_without_seams(index):
    """On an image of 4 x 5 tiles of 3 latents (the last ones smaller), the tiled analysis and synthesis
    equal the whole-image ones up to float rounding; a margin one latent short shows the seams."""
    model = tiny_models()[index]
    torch.manual_seed(1)
    x, q = torch.rand(1, 3, 16 * 11, 16 * 14), torch.tensor([4.0])
    with torch.no_grad():
        y = model.analysis(x, q)
        y_tiled = tiling.analysis(model, x, q, tile=3)
        assert (y_tiled - y).abs().max() < 1e-5
        assert torch.equal(torch.round(y_tiled), torch.round(y))
        y_hat = torch.round(3 * torch.randn(y.shape))  # an untrained model's y rounds to nearly all 0
        x_hat = model.synthesis(y_hat, q)
        assert (tiling.synthesis(model, y_hat, q, tile=3) - x_hat).abs().max() < 1e-5
        short = tiling.run_tiled(lambda t: model.synthesis(t, q), y_hat, y_hat.shape[-2:], 1, 16, 1, 3)
        assert (short - x_hat).abs().max() > 1e-3
        short = tiling.run_tiled(lambda t: model.analysis(t, q), x, y.shape[-2:], 16, 1, 1, 3)
        assert (short - y).abs().max() > 1e-3


def test_post_converts_each_tile():
    model = tiny_models()[0]
    y, q = torch.randn(1, 8, 7, 9), torch.tensor([2.0])
    with torch.no_grad():
        whole = model.synthesis(y, q).mul(100).round()
        tiled = tiling.synthesis(model, y, q, tile=4, post=lambda t: t.mul(100).round().to(torch.int32))
    assert tiled.dtype == torch.int32 and torch.equal(tiled, whole.to(torch.int32))


def test_tiles_in_parallel_are_thread_count_independent():
    """The synthesis runs several tiles at once, each on one thread: the same bytes as one tile after the
    other on one thread, with 1 or 2 threads."""
    from mcodec.codec.determinism import thread_independent

    model = tiny_models()[1]
    torch.manual_seed(2)
    y, q = torch.round(3 * torch.randn(1, 8, 9, 10)), torch.tensor([3.0])
    threads = torch.get_num_threads()
    outs = []
    try:
        for n, parallel in ((1, False), (1, True), (2, True)):
            torch.set_num_threads(n)
            with thread_independent():
                fn = lambda t: model.synthesis(t, q)  # noqa: E731
                outs.append(tiling.run_tiled(fn, y, y.shape[-2:], 1, 16, 2, 4, parallel=parallel))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_one_tile_is_transformed_whole(monkeypatch):
    """An image no larger than a tile takes the untiled path: one call on the whole input."""
    calls = []
    fn = lambda t: calls.append(t.shape) or t[..., ::16, ::16]  # noqa: E731
    x = torch.zeros(1, 3, 16 * tiling.TILE, 16 * tiling.TILE)
    tiling.run_tiled(fn, x, (tiling.TILE, tiling.TILE), 16, 1, 2)
    assert calls == [x.shape]
    tiling.run_tiled(fn, torch.zeros(1, 3, 16 * 5, 16 * 5), (5, 5), 16, 1, 2, tile=4)
    assert calls[1:] == [(1, 3, 80, 80), (1, 3, 80, 48), (1, 3, 48, 80), (1, 3, 48, 48)]  # clipped margins


@pytest.mark.parametrize("codec_id", ["meanscale", "factorized"])
def test_codec_round_trip_with_small_tiles(codec_id, monkeypatch):
    """The shipped models with tiles of 4 latents (64 pixels) on a 300 x 200 crop (5 x 4 tiles): the
    same file as the whole-image encoder, decoded to the same image as the whole-image decoder."""
    image = read_image(SAMPLE)[:, :200, :300].contiguous()
    whole = encode_bytes(image, "image", codec_id, 3)
    _, decoded = decode_bytes(whole)
    monkeypatch.setattr(tiling, "TILE", 4)
    tiled = encode_bytes(image, "image", codec_id, 3)
    assert tiled == whole
    _, tiled_decoded = decode_bytes(tiled)
    assert tiled_decoded.shape == image.shape
    diff = (tiled_decoded.int() - decoded.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-4


def test_grayscale_output_is_converted_per_tile(monkeypatch):
    image = read_image(SAMPLE)[:1, :100, :140].contiguous()
    data = encode_bytes(image, "image", "factorized", 4)
    _, whole = decode_bytes(data)
    monkeypatch.setattr(tiling, "TILE", 2)
    _, tiled = decode_bytes(data)
    assert tiled.shape == whole.shape == (1, 100, 140)
    assert (tiled.int() - whole.int()).abs().max() <= 1


def test_refinement_tile_by_tile(monkeypatch):
    """Refinement in tiles of 4 latents still makes a cheaper file (by the training loss) than none,
    reports every tile's steps, and leaves the decoder as it is."""
    from test_latent_refine import _real_loss

    image = read_image(SAMPLE)[:, 64:192, 96:288].contiguous()  # 8 x 12 latents: 2 x 3 tiles
    monkeypatch.setattr(latent_refine, "REFINE_TILE", 4)
    seen = []
    real = latent_refine.refine_tiled

    def spy(*args):
        seen.append(args[2].shape)
        return real(*args)

    monkeypatch.setattr(latent_refine, "refine_tiled", spy)
    losses = {}
    for preset in ("fast", "medium"):
        data = encode_bytes(image, "image", "meanscale", 5, preset=preset)
        _, decoded = decode_bytes(data)
        losses[preset] = _real_loss(image, data, decoded, 5)
    assert seen == [(1, 192, 8, 12)]
    assert losses["medium"] < 0.995 * losses["fast"], losses
    assert latent_refine.total_steps((1, 128, 8, 12), 20) == 20 * 6
    assert latent_refine.total_steps((1, 128, 4, 4), 20) == 20


def test_refinement_progress_counts_all_tiles(monkeypatch):
    codec = registry.get("meanscale")
    image = read_image(SAMPLE)[:, :96, :80].contiguous()  # 6 x 5 latents: 2 x 2 tiles of 4
    x = image[None].float().div(255)
    q = torch.tensor([2.0])
    with torch.no_grad():
        y = codec.model.analysis(x, q)
        z = codec.model.hyper_analysis(y)
    steps = []
    latent_refine.refine_latents(
        codec.model, x, y, z, 2.0, 3, 96, 80, progress=lambda s, loss: steps.append(s), tile=4
    )
    assert steps == list(range(13)) and latent_refine.total_steps(y.shape, 3, tile=4) == 12
