"""The CPU decoder's transforms as GEMMs (codec/image/conv_gemm.py): the same functions as compressai's
layers up to float rounding, the same bytes for any thread count, and the ones the decoder runs."""

import copy

import pytest
import torch
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from conftest import SAMPLE

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.determinism import thread_independent
from mcodec.codec.image import conv_gemm
from mcodec.codec.image.hyperprior_model import GainedHyperprior
from mcodec.codec.media_io import read_image


def inverse_gdn(channels: int) -> GDN:
    gdn = GDN(channels, inverse=True)
    with torch.no_grad():  # GDN starts as the identity: make its channel mixing count
        gdn.gamma.add_(0.05 * torch.rand_like(gdn.gamma))
        gdn.beta.add_(0.2 * torch.rand_like(gdn.beta))
    return gdn


@pytest.mark.parametrize("cin,cout,h,w,band", [(12, 8, 9, 13, 2048), (8, 16, 11, 7, 20), (16, 8, 1, 1, 5)])
def test_shifted_gemms_equal_the_layers(monkeypatch, cin, cout, h, w, band):
    """A deconv with and without the GDN after it, and a 3x3 convolution, on odd sizes, in bands of a few
    rows (the last one shorter) or of one row; in float64 too (the hyper-synthesis)."""
    monkeypatch.setattr(conv_gemm, "BAND_COLUMNS", band)
    torch.manual_seed(0)
    up, gdn, same = deconv(cin, cout), inverse_gdn(cout), conv(cin, cout, 3, 1)
    x = torch.randn(1, cin, h, w)
    with thread_independent():
        assert (conv_gemm.ShiftedGemms(up)(x) - up(x)).abs().max() < 1e-5
        assert (conv_gemm.ShiftedGemms(up, gdn)(x) - gdn(up(x))).abs().max() < 1e-5
        assert (conv_gemm.ShiftedGemms(same)(x) - same(x)).abs().max() < 1e-5
        x64, up64 = x.double(), up.double()
        out64 = conv_gemm.ShiftedGemms(up64)(x64)
        assert out64.dtype == torch.float64 and (out64 - up64(x64)).abs().max() < 1e-12
        # a wrong tap or phase is seen: the kernels are not symmetric (a 1-pixel input sees one tap of a 3x3)
        for layer in (up, same) if w > 1 else (up,):
            flipped = copy.deepcopy(layer).double()
            flipped.weight.data = flipped.weight.data.flip(-1)
            assert (conv_gemm.ShiftedGemms(flipped)(x64) - layer.double()(x64)).abs().max() > 1e-3


def test_the_transforms_are_compiled_but_for_thin_layers():
    torch.manual_seed(3)
    model = GainedHyperprior("mean-scale-hyperprior", 8, 12).eval()
    steps = [type(s).__name__ for s in conv_gemm.plan(model.net.g_s)]
    assert steps == ["ShiftedGemms"] * 3 + ["ConvTranspose2d"]
    steps = [type(s).__name__ for s in conv_gemm.plan(model.net.h_s)]
    assert steps == ["ShiftedGemms", "LeakyReLU", "ShiftedGemms", "LeakyReLU", "ShiftedGemms"]
    y, z = torch.round(3 * torch.randn(1, 12, 5, 6)), torch.round(3 * torch.randn(1, 8, 3, 2))
    with thread_independent():
        assert (conv_gemm.compile_transform(model.net.g_s)(y) - model.net.g_s(y)).abs().max() < 1e-5
        run = conv_gemm.compile_transform(model.net.h_s)
        first = run(z)
        assert (first - model.net.h_s(z)).abs().max() < 1e-5
        # its output is fresh: a second call (its buffers reused) leaves the first result alone
        kept = first.clone()
        run(torch.zeros_like(z))
        assert torch.equal(first, kept)


def test_a_layers_layout_is_kept_until_its_tensors_change():
    """A layer's weights are laid out once (a video's key pictures decode the same layers again and again),
    and again when they change: in place (training), or replaced (.data, .double())."""
    torch.manual_seed(5)
    up, gdn = deconv(8, 8), inverse_gdn(8)
    x = torch.randn(1, 8, 4, 5)
    with thread_independent():
        first = conv_gemm.ShiftedGemms(up, gdn)
        assert conv_gemm.ShiftedGemms(up, gdn).phases is first.phases  # laid out once
        assert conv_gemm.ShiftedGemms(up).gdn is None  # without the GDN: another layout
        with torch.no_grad():
            up.weight.mul_(2)
            gdn.gamma.add_(0.1)
        assert (conv_gemm.ShiftedGemms(up, gdn)(x) - gdn(up(x))).abs().max() < 1e-5
        up.weight.data = up.weight.data.flip(-1)
        assert (conv_gemm.ShiftedGemms(up)(x) - up(x)).abs().max() < 1e-5
        up64 = copy.deepcopy(up).double()
        assert (conv_gemm.ShiftedGemms(up64)(x.double()) - up64(x.double())).abs().max() < 1e-12


def test_the_same_bytes_for_any_thread_count(monkeypatch):
    monkeypatch.setattr(conv_gemm, "BAND_COLUMNS", 64)  # several bands, so that threads share the work
    model = GainedHyperprior("mean-scale-hyperprior", 16, 16).eval()
    runs = [conv_gemm.compile_transform(model.net.g_s), conv_gemm.compile_transform(model.net.h_s.double())]
    torch.manual_seed(4)
    inputs = [torch.round(3 * torch.randn(1, 16, 9, 11)), torch.round(3 * torch.randn(1, 16, 5, 6)).double()]
    threads, outs = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            with thread_independent():
                outs.append([run(x) for run, x in zip(runs, inputs, strict=True)])
    finally:
        torch.set_num_threads(threads)
    for other in outs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(outs[0], other, strict=True))


def test_the_decoder_runs_them(monkeypatch):
    """The hyper-synthesis (3 convolutions, at encode and decode) and the synthesis (3 of its 4)."""
    calls = []
    call = conv_gemm.ShiftedGemms.__call__

    def counted(self, x):
        calls.append(x.dtype)
        return call(self, x)

    image = read_image(SAMPLE)[:, :64, :96]
    monkeypatch.setattr(conv_gemm.ShiftedGemms, "__call__", counted)
    # without the low-frequency correction and the restoration filter, whose fits synthesize the file's
    # picture (the decoder's calls)
    data = encode_bytes(image, "image", "meanscale", quality=2, low_frequency=False, restoration_filter=False)
    assert calls == [torch.float64] * 3
    _, decoded = decode_bytes(data)
    assert calls == [torch.float64] * 6 + [torch.float32] * 3 and decoded.shape == image.shape
