"""Key pictures (nerv/keypicture.py, FORMAT.md 6.4.2): a group drawn over its median frame, coded as an
image in a VKEY chunk before the group's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import random_image, run_cli
from test_video_motion import pan

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError, media_io
from mcodec.codec.fuzz import McdFile
from mcodec.nerv import codec as nerv_codec
from mcodec.nerv import motion as mo
from mcodec.nerv.keypicture import base_logits, canvas_picture, decode_key, encode_key, median_picture

VECTORS = Path(__file__).resolve().parents[1] / "bitstream_spec" / "vectors"


def still_clip(t=4, h=48, w=64):
    """A still background with a small square crossing it."""
    background = random_image(3, h, w, seed=5).float()
    background = torch.nn.functional.avg_pool2d(background[None], 5, 1, 2, count_include_pad=False)[0]
    frames = background.expand(t, 3, h, w).clone()
    for i in range(t):
        frames[i, :, 8:16, 4 + 8 * i : 12 + 8 * i] = 240.0
    return frames.round().clamp(0, 255).to(torch.uint8)


def psnr(a, b):
    return 10 * torch.log10(255**2 / (a.float() - b.float()).square().mean()).item()


def test_the_base_is_the_picture_and_the_median_its_background():
    values = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).expand(3, 16, 16)
    logits = base_logits(values, 20, 24)  # padded: the last row and column repeated
    assert logits.shape == (1, 3, 20, 24) and torch.isfinite(logits).all()
    back = torch.sigmoid(logits).mul(255).round().to(torch.uint8)[0]
    assert torch.equal(back[:, :16, :16], values)  # a head of zero gives the picture back, every level
    assert torch.equal(back[:, 16:, :16], back[:, 15:16, :16].expand(3, 4, 16))
    frames = still_clip()
    assert torch.equal(median_picture(frames)[:, 30:], frames[0, :, 30:])  # the square is gone


def test_a_clip_over_its_key_picture(monkeypatch):
    """By default each group's VKEY comes before it; the fit starts from the picture, so after a few steps
    the clip is far closer than without it; a frame range decodes the same frames. (Groups drawn from
    keys alone, FORMAT.md 6.4.5, left out: after so short a fit they cost less, and the encoder takes
    them.)"""
    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    monkeypatch.setattr(nerv_codec, "BARE_BLOCKS", False)
    frames = still_clip()

    def coded(keys: bool | None):  # None: the encoder's default (key pictures on)
        options = {} if keys is None else {"key_pictures": keys}
        data = encode_bytes((frames, 25), "video", "hnerv", 2, progress=False, epochs=(2, 1), **options)
        return data, decode_bytes(data)[1][0]

    (plain, plain_out), (keyed, keyed_out) = coded(False), coded(None)
    types = [t for t, _ in McdFile.parse(keyed).chunks]
    assert types == [b"VKEY", b"VGOP", b"VKEY", b"VDIF"]
    assert [t for t, _ in McdFile.parse(plain).chunks] == [b"VGOP", b"VDIF"]
    assert psnr(keyed_out, frames) > psnr(plain_out, frames) + 4, (
        psnr(keyed_out, frames),
        psnr(plain_out, frames),
    )
    assert torch.equal(decode_bytes(keyed, frames=(1, 3))[1][0], keyed_out[1:3])


def test_bad_key_pictures_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    frames = still_clip()
    file = McdFile.parse(
        encode_bytes(
            (frames, 25),
            "video",
            "hnerv",
            2,
            progress=False,
            epochs=(1, 1),
            key_pictures=True,
            block_motion=False,
        )
    )
    k0, g0, k1, g1 = file.chunks  # median key pictures (test_video_blocks.py: a moved one)

    def refused(chunks, message):
        with pytest.raises(CodecError, match=message):
            decode_bytes(McdFile(file.version, file.head_prefix, file.params, chunks).to_bytes())

    refused([k0, k0, g0, k1, g1], "2 video key pictures .VKEY. for a group that takes 1")
    refused([k0, g0, g1, k1], "no group after it")
    small = encode_key(frames[0, :, :32, :48], 2)
    refused([(b"VKEY", small), g0, k1, g1], "48x32x3 samples, not the 64x48 RGB its group is drawn over")
    refused(
        [(b"VKEY", k0[1][:-20]), g0, k1, g1], "video key picture: chunk [A-Z]{4} at byte .* runs past the end"
    )
    audio = encode_bytes((torch.zeros(1, 1600), 16000), "audio", "rvq", 6)
    refused([(b"VKEY", audio), g0, k1, g1], "video key picture: the file holds audio, not an image")
    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 120)  # the vector's group: 8 frames
    pan = McdFile.parse((VECTORS / "pan_64x48_hnerv_q1.mcd").read_bytes())
    with pytest.raises(CodecError, match="64x48x3 samples, not the 81x57 RGB its group is drawn over"):
        decode_bytes(McdFile(pan.version, pan.head_prefix, pan.params, [k0, *pan.chunks]).to_bytes())
    assert decode_key(k0[1], 48, 64).shape == (3, 48, 64)


def test_a_pan_over_its_canvas_picture():
    """A motion group's key picture is its canvas (the median of the frames drawn at their places): the
    VKEY holds a picture of the canvas's size, and after a few steps the pan is far closer than without."""
    frames = pan()
    moves = nerv_codec.NervCodec("hnerv")._motion(frames, 48, 64)  # the canvas padded as the encoder does
    canvas = canvas_picture(frames, moves)
    assert canvas.shape[-2:] == moves.canvas
    x = canvas.float()[None] / 255  # the frames sampled from the picture itself: what the network starts at
    again = torch.cat([mo.sample(x, moves, [i], 48, 64) for i in range(8)]).mul(255).round()
    assert psnr(again, frames) > 35, psnr(again, frames)

    def coded(keys: bool):
        data = encode_bytes(
            (frames, 25), "video", "hnerv", 2, progress=False, epochs=(2, 1), key_pictures=keys
        )
        return data, decode_bytes(data)[1][0]

    (_, plain_out), (keyed, keyed_out) = coded(False), coded(True)
    chunks = McdFile.parse(keyed).chunks
    assert [t for t, _ in chunks] == [b"VKEY", b"VGOP"]
    ch, cw = moves.canvas
    assert decode_key(chunks[0][1], ch, cw).shape == (3, ch, cw)
    assert psnr(keyed_out, frames) > psnr(plain_out, frames) + 4, (
        psnr(keyed_out, frames),
        psnr(plain_out, frames),
    )
    assert torch.equal(decode_bytes(keyed, frames=(2, 5))[1][0], keyed_out[2:5])


def test_cli_key_pictures(tmp_path, capfd):
    image = tmp_path / "a.png"
    media_io.write_image(image, random_image(3, 16, 16, seed=1))
    code, _, err = run_cli(capfd, "encode", str(image), str(tmp_path / "a.mcd"), "--key-pictures")
    assert code == 2 and "--key-pictures is for video codecs" in err
