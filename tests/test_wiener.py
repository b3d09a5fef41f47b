"""The restoration filter (chunk WFLT, FORMAT.md 6.2.3): its arithmetic is the specified one, its fit, its
coding, the encoder's choice by the quality's loss, and a decoder's checks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import quality_loss

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.image import lowfreq, wiener
from mcodec.codec.image.lambdas import LAMBDAS
from mcodec.entropy import Container, read_container, write_container


def spec_filter(picture: torch.Tensor, weights: np.ndarray, shift: int) -> torch.Tensor:
    """FORMAT.md 6.2.3 written out pixel by pixel, in Python integers."""
    channels, height, width = picture.shape
    p = picture.tolist()

    def at(c, y, x):
        return p[c][min(max(y, 0), height - 1)][min(max(x, 0), width - 1)]

    pairs = [
        (0, 1),
        (0, 2),
        (0, 3),
        (1, -2),
        (1, -1),
        (1, 0),
        (1, 1),
        (1, 2),
        (2, -1),
        (2, 0),
        (2, 1),
        (3, 0),
    ]
    out = torch.empty_like(picture)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                centre = at(c, y, x)
                terms = [at(c, y + dy, x + dx) + at(c, y - dy, x - dx) - 2 * centre for dy, dx in pairs]
                for o in range(channels):
                    if o != c:
                        m = at(o, y, x)
                        terms += [
                            m - centre,
                            at(o, y, x + 1) + at(o, y, x - 1) - 2 * m,
                            at(o, y + 1, x) + at(o, y - 1, x) - 2 * m,
                        ]
                terms.append(1)
                total = sum(int(w) * t for w, t in zip(weights[c], terms, strict=True))
                out[c, y, x] = min(max(centre + (total + (1 << (shift - 1))) // (1 << shift), 0), 255)
    return out


@pytest.mark.parametrize("channels", [1, 3])
def test_apply_is_the_specified_integer_filter_in_bands(channels, monkeypatch):
    rng = np.random.default_rng(channels)
    picture = torch.from_numpy(rng.integers(0, 256, (channels, 11, 9), dtype=np.uint8))
    weights = rng.integers(-300, 300, (channels, wiener.weight_count(channels)))
    weights[0, 0] = wiener.MAX_WEIGHT  # the largest weight a file may hold
    expected = spec_filter(picture, weights, 8)
    assert torch.equal(wiener.apply(picture, weights, 8), expected)
    monkeypatch.setattr(wiener, "BAND_ROWS", 4)
    assert torch.equal(wiener.apply(picture, weights, 8), expected)
    assert torch.equal(wiener.apply(picture, np.zeros_like(weights), 5), picture)


def test_payload_round_trip_and_damaged_headers():
    weights = np.arange(-28, 29).reshape(3, 19)
    payload = wiener.pack(7, weights)
    got, shift = wiener.unpack(payload, 3)
    assert shift == 7 and np.array_equal(got, weights)
    beyond = weights.copy()
    beyond[1, 4] = wiener.MAX_WEIGHT + 1
    for bad in (
        b"",
        bytes([3]) + payload[1:],
        bytes([13]) + payload[1:],
        payload[:2],
        wiener.pack(7, beyond),
    ):
        with pytest.raises(CodecError, match="WFLT"):
            wiener.unpack(bad, 3)


def test_fit_finds_a_filter_and_knows_its_error():
    """A picture blurred by a box filter: the fitted weights undo much of it, and Fit.mse is the squared
    error their (unrounded) correction leaves."""
    torch.manual_seed(0)
    source = (F.avg_pool2d(torch.rand(1, 3, 72, 88) * 255, 3, 1, 1) * 0.6 + 50).round().to(torch.uint8)[0]
    picture = F.avg_pool2d(source[None].float(), 3, 1, 1, count_include_pad=False)[0].round().to(torch.uint8)
    fit = wiener.Fit(source, picture)
    before = float(((source.double() - picture.double()) ** 2).mean())
    assert fit.mse(torch.zeros_like(fit.weights)) == pytest.approx(before, rel=1e-9)
    assert fit.mse(fit.weights) < 0.5 * before
    band = wiener._band(picture, slice(0, 72), torch.float64)
    for weights in (fit.weights, fit.weights * 0.5):
        corrected = torch.stack(
            [
                band[c, 3:-3, 3:-3]
                + sum(w * t for w, t in zip(weights[c], wiener.features(band, c), strict=True))
                for c in range(3)
            ]
        )
        direct = float(((source.double() - corrected) ** 2).mean())
        assert fit.mse(weights) == pytest.approx(direct, rel=1e-6)


def test_choice_pays_for_itself():
    """No chunk for an exact picture; for a blurred one, a chunk that lowers lambda * MSE + bpp with its
    bytes counted and the filtered 8 bits measured, and none when lambda makes the bytes too dear."""
    torch.manual_seed(3)
    source = (F.avg_pool2d(torch.rand(1, 3, 96, 128) * 255, 3, 1, 1) * 0.6 + 50).round().to(torch.uint8)[0]
    assert wiener.choose(source, source.clone(), 0.01) is None
    picture = F.avg_pool2d(source[None].float(), 3, 1, 1, count_include_pad=False)[0].round().to(torch.uint8)
    payload = wiener.choose(source, picture, 0.01)
    assert payload is not None
    filtered = wiener.apply(picture, *wiener.unpack(payload, 3))
    mse = [float(((source.float() - p.float()) ** 2).mean()) for p in (picture, filtered)]
    bits = (len(payload) + lowfreq.CHUNK_OVERHEAD) * 8 / (96 * 128)
    lmbda = 0.01 * lowfreq.LAMBDA_SCALE
    assert lmbda * mse[1] + bits < lmbda * mse[0]
    assert wiener.choose(source, picture, 1e-7) is None


def textured(channels: int, height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    planes = [xx * 2 + 20 * torch.sin(yy * 0.7), yy * 3 + 25 * torch.cos(xx * 0.5), 255 - xx - yy]
    return torch.stack(planes[:channels]).clamp(0, 255).to(torch.uint8)


def test_codec_adds_the_chunk_where_it_pays_and_decoders_check_it(tiny_meanscale):
    """An untrained model's pictures are blurred and off in their colours: the encoder adds WFLT, after
    LFCR, and the file costs less by the quality's own loss than the file without it (real bytes)."""
    image = textured(3, 80, 120)
    plain = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale, restoration_filter=False)
    data = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale)
    assert [t for t, _ in read_container(plain).chunks] == ["ZLAT", "YLAT", "LFCR"]
    assert [t for t, _ in read_container(data).chunks] == ["ZLAT", "YLAT", "LFCR", "WFLT"]
    lmbda = lowfreq.LAMBDA_SCALE * LAMBDAS[3]
    assert quality_loss(data, image, tiny_meanscale, lmbda) < quality_loss(
        plain, image, tiny_meanscale, lmbda
    )

    c = read_container(data)
    chunks = dict(c.chunks)
    swapped = write_container(
        Container(c.header, [*c.chunks[:2], ("WFLT", chunks["WFLT"]), ("LFCR", chunks["LFCR"])])
    )
    assert torch.equal(
        decode_bytes(swapped, weights=tiny_meanscale)[1], decode_bytes(data, weights=tiny_meanscale)[1]
    )
    for damaged, message in (
        (c.chunks + [("WFLT", chunks["WFLT"])], "expected chunks"),
        ([*c.chunks[:3], ("WFLT", chunks["WFLT"][:2])], "WFLT"),
        ([*c.chunks[:3], ("WFLT", bytes([0]) + chunks["WFLT"][1:])], "WFLT"),
    ):
        bad = write_container(Container(c.header, damaged))
        with pytest.raises(CodecError, match=message):
            decode_bytes(bad, weights=tiny_meanscale)


def test_gray_sources_are_filtered_in_their_one_channel(tiny_meanscale):
    image = textured(1, 40, 70)
    plain = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale, restoration_filter=False)
    data = encode_bytes(image, "image", "meanscale", 4, weights=tiny_meanscale)
    weights, _ = wiener.unpack(dict(read_container(data).chunks)["WFLT"], 1)
    assert weights.shape == (1, 13)
    errors = [
        float(((decode_bytes(d, weights=tiny_meanscale)[1].float() - image.float()) ** 2).mean())
        for d in (plain, data)
    ]
    assert errors[1] < errors[0]


def test_the_encoder_fits_it_to_pictures_up_to_a_size_at_every_preset(tiny_meanscale, monkeypatch):
    """Like the low-frequency correction, up to lowfreq.FAST_MAX_PIXELS unless asked for; unlike it, after
    latent refinement (medium) too."""
    image = textured(3, 80, 120)
    monkeypatch.setattr(lowfreq, "FAST_MAX_PIXELS", 80 * 120 - 1)

    def chunks(**options):
        data = encode_bytes(
            image, "image", "meanscale", 4, weights=tiny_meanscale, low_frequency=False, **options
        )
        return [t for t, _ in read_container(data).chunks]

    assert chunks() == ["ZLAT", "YLAT"]
    assert chunks(restoration_filter=True) == ["ZLAT", "YLAT", "WFLT"]
    monkeypatch.setattr(lowfreq, "FAST_MAX_PIXELS", 80 * 120)
    assert chunks() == ["ZLAT", "YLAT", "WFLT"]
    assert chunks(preset="medium") == ["ZLAT", "YLAT", "WFLT"]
