"""PSNR / PSNR-Y / MS-SSIM on small synthetic uint8 images."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_msssim import ms_ssim as library_ms_ssim

from mcodec.evaluation.metrics import _ms_ssim_loop, ms_ssim, ms_ssim_levels, psnr_rgb, psnr_y


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These images are tiny: with several intra-op threads on a busy machine, OpenMP synchronisation
    # dominates (seconds instead of ~0.1 s for this file), so run single-threaded and restore after.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def _noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.float() + sigma * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)


def _smooth(h: int, w: int) -> torch.Tensor:
    """A structured RGB test image (gradients + a disc) so SSIM has something to measure."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    disc = ((yy - 0.5) ** 2 + (xx - 0.4) ** 2 < 0.08).float()
    img = torch.stack([xx, yy, 0.5 * (xx + yy) * (1 - disc) + disc]) * 255
    return img.round().to(torch.uint8)


def test_identical_images():
    x = _random((3, 48, 64))
    assert psnr_rgb(x, x) == math.inf
    assert psnr_y(x, x) == math.inf
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)


def test_known_mse():
    gray = torch.full((3, 16, 16), 128, dtype=torch.uint8)
    # +1 on every sample -> MSE 1 -> 10 log10(255^2) = 48.1308 dB; a gray error is the same on luma.
    assert psnr_rgb(gray, gray + 1) == pytest.approx(48.1308, abs=1e-4)
    assert psnr_y(gray, gray + 1) == pytest.approx(psnr_rgb(gray, gray + 1), abs=1e-9)


def test_psnr_y_weights_and_single_channel():
    a = torch.zeros((3, 4, 4), dtype=torch.uint8)
    b = a.clone()
    b[1] = 10  # green error only: Y error 5.87 everywhere
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 5.87**2), abs=1e-9)
    g = _random((1, 20, 20))
    assert psnr_y(g, _noisy(g, 5.0)) == psnr_rgb(g, _noisy(g, 5.0))


def test_ms_ssim_decreases_with_noise():
    x = _smooth(64, 80)
    mild, strong = ms_ssim(x, _noisy(x, 3.0)), ms_ssim(x, _noisy(x, 20.0))
    assert 0.0 < strong < mild < 1.0


def test_full_size_uses_library_and_matches_reduced_loop():
    # One channel of the structured image keeps this 5-scale case cheap.
    x = _smooth(176, 192)[:1].unsqueeze(0).float()
    y = _noisy(_smooth(176, 192)[:1], 10.0).unsqueeze(0).float()
    assert ms_ssim_levels(176) == 5
    ref = library_ms_ssim(x, y, data_range=255, size_average=False)
    assert ms_ssim(x[0].to(torch.uint8), y[0].to(torch.uint8)) == pytest.approx(ref.item(), abs=1e-6)
    # The reduced-scale path runs the library's loop: given the library's 5 default weights (which sum
    # to 1.0001, so they are passed as is, not renormalised) it must reproduce the library's value.
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    assert _ms_ssim_loop(x, y, weights).item() == pytest.approx(ref.item(), abs=1e-6)


def test_small_images_use_fewer_scales():
    assert [ms_ssim_levels(s) for s in (10, 11, 20, 21, 30, 41, 81, 160, 161)] == [0, 1, 1, 2, 2, 3, 4, 4, 5]
    x = _smooth(30, 40)  # 40x30: 2 scales
    v = ms_ssim(x, _noisy(x, 10.0))
    assert 0.0 < v < 1.0
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    tiny = _random((3, 10, 40))
    assert math.isnan(ms_ssim(tiny, _noisy(tiny, 5.0)))


def test_video_is_mean_over_frames():
    frames = torch.stack([_smooth(32, 48), _smooth(32, 48).flip(-1)])
    noisy = torch.stack([_noisy(frames[0], 4.0), _noisy(frames[1], 15.0, seed=2)])
    per_frame = [ms_ssim(frames[t], noisy[t]) for t in range(2)]
    assert ms_ssim(frames, noisy) == pytest.approx(sum(per_frame) / 2, abs=1e-6)
    mse = sum(((frames[t].double() - noisy[t].double()) ** 2).mean().item() for t in range(2)) / 2
    assert psnr_rgb(frames, noisy) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert math.isfinite(psnr_y(frames, noisy))


def test_rejects_bad_inputs():
    x = _random((3, 16, 16))
    with pytest.raises(TypeError):
        psnr_rgb(x.float(), x.float())
    with pytest.raises(ValueError):
        psnr_rgb(x, x[:, :8])
    with pytest.raises(ValueError):
        ms_ssim(_random((2, 16, 16)), _random((2, 16, 16)))
