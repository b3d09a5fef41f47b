"""The low-frequency correction (chunk LFCR, FORMAT.md 6.2.2): its interpolation is the specified one,
its fit, its coding, the encoder's choice by the quality's loss, and a decoder's checks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import quality_loss

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.image import lowfreq
from mcodec.codec.image.lambdas import LAMBDAS
from mcodec.entropy import Container, read_container, write_container


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (48, 64), (100, 37)])
@pytest.mark.parametrize("cells", [(1, 1), (2, 3), (4, 4)])
def test_upsample_is_bilinear_with_half_pixel_centres(size, cells):
    """The interpolation FORMAT.md specifies is torch's bilinear resize (align_corners=False), and a band
    of rows is those rows of the whole."""
    grid = torch.randn(3, *cells)
    whole = lowfreq.upsample(grid, *size)
    expected = F.interpolate(grid[None], size=size, mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(whole, expected, atol=1e-5, rtol=0)
    band = slice(size[0] // 3, size[0] // 3 + 2)
    torch.testing.assert_close(lowfreq.upsample(grid, *size, band), whole[:, band], atol=1e-6, rtol=0)


def test_fit_finds_an_interpolated_grid_beats_block_means_and_knows_its_error():
    torch.manual_seed(0)
    grid = torch.randn(3, 4, 5) * 4
    error = lowfreq.upsample(grid, 100, 150)  # blocks of 32: 4 x 5 cells, the last ones partial
    torch.testing.assert_close(lowfreq.fit(error, 32), grid, atol=1e-3, rtol=0)
    noisy = error + torch.randn_like(error)
    means = F.adaptive_avg_pool2d(noisy[None], (4, 5))[0]
    f = lowfreq.Fit(noisy, 32)
    left = [float(((noisy - lowfreq.upsample(g, 100, 150)) ** 2).mean()) for g in (means, f.grid.float())]
    assert left[1] < left[0]
    for g in (means, f.grid.float(), torch.round(f.grid.float())):
        direct = float(((noisy.double() - lowfreq.upsample(g, 100, 150).double()) ** 2).mean())
        assert f.mse(g.double()) == pytest.approx(direct, rel=1e-4)


def test_payload_round_trip_and_damaged_headers():
    symbols = np.array([[[0, 1, -2], [3, 0, 0]], [[0, 0, 0], [0, 0, 0]], [[9, -9, 40], [0, 1, 2]]])
    payload = lowfreq.pack(6, 6, symbols)  # blocks of 64, step 1.5
    assert payload[:2] == bytes([6, 6]) and all(i < 64 for i in payload[2:5])
    grid, step = lowfreq.unpack(payload, 3, 100, 150)
    assert step == 1.5
    torch.testing.assert_close(grid, torch.from_numpy(symbols).float() * 1.5)
    for bad in (
        payload[:4],
        bytes([2]) + payload[1:],
        payload[:1] + b"\0" + payload[2:],
        payload[:2] + b"\x40" + payload[3:],
    ):
        with pytest.raises(CodecError, match="LFCR"):
            lowfreq.unpack(bad, 3, 100, 150)


def test_apply_in_bands_is_apply_whole(monkeypatch):
    torch.manual_seed(2)
    picture = torch.randint(0, 256, (3, 70, 40), dtype=torch.uint8)
    grid = torch.randn(3, 3, 2) * 5
    whole = lowfreq.apply(picture.clone(), grid)
    monkeypatch.setattr(lowfreq, "BAND_ROWS", 16)
    assert torch.equal(lowfreq.apply(picture.clone(), grid), whole)
    expected = (picture.float() + lowfreq.upsample(grid, 70, 40)).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(whole, expected)


def test_choice_pays_for_itself():
    """No chunk for an exact picture; for a picture off by a slow drift, a chunk that lowers lambda * MSE
    + bpp with its bytes counted, and none when lambda makes the bytes too dear."""
    torch.manual_seed(3)
    source = torch.randint(40, 200, (3, 96, 128), dtype=torch.uint8)
    assert lowfreq.choose(source, source.clone(), 0.01) is None
    drift = lowfreq.upsample(torch.randn(3, 2, 3) * 3, 96, 128)
    decoded = (source.float() + drift).round().clamp(0, 255).to(torch.uint8)
    payload = lowfreq.choose(source, decoded, 0.01)
    assert payload is not None
    grid, _ = lowfreq.unpack(payload, 3, 96, 128)
    corrected = lowfreq.apply(decoded.clone(), grid)
    mse = [float(((source.float() - p.float()) ** 2).mean()) for p in (decoded, corrected)]
    bits = (len(payload) + lowfreq.CHUNK_OVERHEAD) * 8 / (96 * 128)
    lmbda = 0.01 * lowfreq.LAMBDA_SCALE
    assert lmbda * mse[1] + bits < lmbda * mse[0]
    assert lowfreq.choose(source, decoded, 1e-6) is None


NO_FILTER = {"restoration_filter": False}  # the restoration filter (test_wiener) left out


def test_codec_adds_the_chunk_where_it_pays_and_decoders_check_it(tiny_meanscale):
    """An untrained model's pictures are far off in their slow colours: the encoder adds LFCR, and the
    file costs less by the quality's own loss than the file without it (real bytes, decoded pixels)."""
    yy, xx = torch.meshgrid(torch.arange(80), torch.arange(120), indexing="ij")
    image = torch.stack([xx * 2, yy * 3, 255 - xx - yy]).clamp(0, 255).to(torch.uint8)
    plain = encode_bytes(
        image, "image", "meanscale", 4, weights=tiny_meanscale, low_frequency=False, **NO_FILTER
    )
    data = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale, **NO_FILTER)
    assert [t for t, _ in read_container(plain).chunks] == ["ZLAT", "YLAT"]
    assert [t for t, _ in read_container(data).chunks] == ["ZLAT", "YLAT", "LFCR"]
    lmbda = lowfreq.LAMBDA_SCALE * LAMBDAS[3]
    assert quality_loss(data, image, tiny_meanscale, lmbda) < quality_loss(
        plain, image, tiny_meanscale, lmbda
    )

    c = read_container(data)
    lf = dict(c.chunks)["LFCR"]
    for chunks, message in (
        (c.chunks + [("LFCR", lf)], "expected chunks"),
        ([*c.chunks[:2], ("LFCR", lf[:3])], "LFCR"),
        ([*c.chunks[:2], ("LFCR", bytes([12]) + lf[1:])], "LFCR"),
    ):
        bad = write_container(Container(c.header, chunks))
        with pytest.raises(CodecError, match=message):
            decode_bytes(bad, weights=tiny_meanscale)


def test_gray_sources_are_corrected_in_their_one_channel(tiny_meanscale):
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(70), indexing="ij")
    image = (60 + xx + yy).to(torch.uint8)[None]
    plain = encode_bytes(
        image, "image", "meanscale", 2, weights=tiny_meanscale, low_frequency=False, **NO_FILTER
    )
    data = encode_bytes(image, "image", "meanscale", 2, weights=tiny_meanscale, **NO_FILTER)
    grid, _ = lowfreq.unpack(dict(read_container(data).chunks)["LFCR"], 1, 40, 70)
    assert grid.shape[0] == 1
    errors = [
        float(((decode_bytes(d, weights=tiny_meanscale)[1].float() - image.float()) ** 2).mean())
        for d in (plain, data)
    ]
    assert errors[1] < errors[0]


def test_the_fast_preset_fits_it_to_pictures_up_to_a_size(tiny_meanscale, monkeypatch):
    """It costs the encoder a decode: only up to FAST_MAX_PIXELS, and not after latent refinement (medium),
    unless asked for."""
    yy, xx = torch.meshgrid(torch.arange(80), torch.arange(120), indexing="ij")
    image = torch.stack([xx * 2, yy * 3, 255 - xx - yy]).clamp(0, 255).to(torch.uint8)
    monkeypatch.setattr(lowfreq, "FAST_MAX_PIXELS", 80 * 120 - 1)

    def chunks(**options):
        data = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale, **NO_FILTER, **options)
        return [t for t, _ in read_container(data).chunks]

    assert chunks() == ["ZLAT", "YLAT"]
    assert chunks(low_frequency=True) == ["ZLAT", "YLAT", "LFCR"]
    monkeypatch.setattr(lowfreq, "FAST_MAX_PIXELS", 80 * 120)
    assert chunks() == ["ZLAT", "YLAT", "LFCR"]
    assert chunks(preset="medium") == ["ZLAT", "YLAT"]
