"""Block motion (nerv/blocks.py, FORMAT.md 6.4.4): a group drawn over one of its frames, moved block by
block for each picture."""

import pytest
import torch
from conftest import run_cli
from test_video_motion import header, texture, with_header

from mcodec.codec import CodecError
from mcodec.codec.base import Payload
from mcodec.nerv import blocks
from mcodec.nerv import codec as nerv_codec
from mcodec.nerv.codec import NervCodec


def picture(h: int, w: int, seed: int) -> torch.Tensor:
    return texture(h, w, seed)[0].mul(255).round().to(torch.uint8)


def moving(t: int = 6, h: int = 48, w: int = 64) -> torch.Tensor:
    """A still textured left half beside a texture sliding up 3 pixels a frame on the right (two columns of
    blocks): the median frame blurs the right half, the middle frame moved block by block keeps it."""
    frames = picture(h, w, seed=3).expand(t, 3, h, w).clone()
    tall = picture(h + 3 * t, w // 2, seed=4)
    for i in range(t):
        frames[i, :, :, w // 2 :] = tall[:, 3 * i : 3 * i + h]
    return frames


def test_warp_takes_each_block_from_its_offset_clamped_at_the_edges():
    key = torch.arange(3 * 20 * 36).view(3, 20, 36).to(torch.int32)  # 2 x 3 blocks, the last ones partial
    vectors = torch.zeros(2, 3, 2, dtype=torch.long)
    assert torch.equal(blocks.warp(key, vectors), key)
    vectors[0, 1] = torch.tensor([2, -3])
    vectors[1, 2] = torch.tensor([-100, 100])
    out = blocks.warp(key, vectors)
    assert torch.equal(out[:, :16, 16:32], key[:, 2:18, 13:29])
    assert torch.equal(out[:, 16:, 32:], key[:, :1, 35:].expand(3, 4, 4))  # clamped to row 0, column 35
    assert torch.equal(out[:, :16, :16], key[:, :16, :16]) and torch.equal(
        out[:, 16:, 16:32], key[:, 16:, 16:32]
    )


def test_search_finds_a_translation_and_the_symbols_are_differences():
    key = picture(64, 96, seed=1)
    shift = torch.tensor([3, -5]).expand(4, 6, 2)
    frame = blocks.warp(key, shift)
    found = blocks.search(key, frame)
    assert torch.equal(found, shift)
    # the previous picture's vector is charged nothing: a still block keeps it
    assert torch.equal(blocks.search(key, frame, previous=shift), shift)
    vectors = torch.stack([torch.zeros(4, 6, 2, dtype=torch.long), shift, shift, -shift])
    symbols = blocks.to_symbols(vectors)
    assert symbols.shape == (2, 4, 4, 6)
    assert (symbols[:, 0] == 0).all() and (symbols[:, 2] == 0).all() and (symbols[0, 1] == 3).all()
    assert torch.equal(blocks.from_symbols(torch.from_numpy(symbols)), vectors)


@pytest.fixture(scope="module")
def coded():
    frames = moving()
    codec = NervCodec("hnerv")
    on = codec.encode((frames, 25), 2, progress=False, epochs=(20, 4))
    off = codec.encode((frames, 25), 2, progress=False, epochs=(20, 4), block_motion=False)
    return frames, codec, on, off


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * torch.log10(255**2 / (a.float() - b.float()).square().mean()).item()


def test_a_moving_patch_is_coded_with_block_motion(coded):
    """The encoder moves the middle frame for the patch (its group header says so, the vectors come last),
    the decoded clip is closer than over the median frame, and a frame range decodes the same frames."""
    frames, codec, on, off = coded
    (ctype, key), (_, group) = on.chunks
    head = header(group)
    assert ctype == "VKEY" and head["blocks"]["size"] == blocks.BLOCK
    assert head["tensors"][-1]["name"] == "vectors" and head["tensors"][-1]["shape"] == [2, 6, 3, 4]
    assert sum(head["blocks"]["counts"]) == 2 * 6 * 3 * 4  # the histogram of the coded differences
    assert "blocks" not in header(off.chunks[1][1])
    decoded, plain = codec.decode(on)[0], codec.decode(off)[0]
    assert psnr(decoded, frames) > psnr(plain, frames) + 1.0
    assert torch.equal(codec.decode(on, frames=(2, 5))[0], decoded[2:5])


def test_block_motion_headers_are_checked(coded):
    frames, codec, on, _ = coded
    (_, key), (_, group) = on.chunks
    head = header(group)
    without = {k: v for k, v in head.items() if k != "blocks"}
    other_size = {**head, "blocks": {**head["blocks"], "size": 8}}

    def refused(chunks, match):
        with pytest.raises(CodecError, match=match):
            codec.decode(Payload(on.params, chunks))

    refused([("VKEY", key), ("VGOP", with_header(group, without))], "tensors do not match")
    refused([("VKEY", key), ("VGOP", with_header(group, other_size))], "blocks")
    refused([("VGOP", group)], "block motion has no key picture")
    gaussian = {
        **head,
        "tensors": [{**t, "idx": 3} if t["name"] == "vectors" else t for t in head["tensors"]],
    }
    refused([("VKEY", key), ("VGOP", with_header(group, gaussian))], "the block vectors' and theirs only")
    steps = torch.ones(2)
    assert torch.equal(
        nerv_codec._vectors(torch.zeros(2, 1, 1, 1, dtype=torch.long), steps), torch.zeros(1, 1, 1, 2)
    )
    with pytest.raises(CodecError, match="beyond 128 pixels"):
        nerv_codec._vectors(torch.tensor([100, 29]).view(1, 2, 1, 1).expand(2, 2, 1, 1), steps)
    with pytest.raises(CodecError, match="step other than 1"):
        nerv_codec._vectors(torch.zeros(2, 1, 1, 1, dtype=torch.long), torch.tensor([1.0, 0.5]))


def test_block_motion_is_a_video_option(tmp_path, capfd):
    from mcodec.codec import media_io

    image = tmp_path / "x.png"
    media_io.write_image(image, picture(16, 16, seed=0))
    code, _, err = run_cli(capfd, "encode", image, tmp_path / "x.mcd", "--no-block-motion")
    assert code != 0 and "--block-motion is for video codecs" in err
