"""Block motion (nerv/blocks.py, FORMAT.md 6.4.4): a group drawn over one of its frames, moved block by
block for each picture."""

import struct

import pytest
import torch
from conftest import run_cli
from test_video_motion import header, texture, with_header

from mcodec.codec import CodecError
from mcodec.codec.base import Payload
from mcodec.nerv import blocks
from mcodec.nerv import codec as nerv_codec
from mcodec.nerv.codec import NervCodec
from mcodec.nerv.keypicture import decode_key


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
    """The 6-frame slide with a network over the moved key (the keys-alone coding of a VBLK, which the
    encoder prefers for so plain a clip, left out), and without block motion."""
    frames = moving()
    codec = NervCodec("hnerv")
    mp = pytest.MonkeyPatch()
    mp.setattr(nerv_codec, "BARE_BLOCKS", False)
    try:
        on = codec.encode((frames, 25), 2, progress=False, epochs=(20, 4))
    finally:
        mp.undo()
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
    refused(
        [("VKEY", key), ("VGOP", with_header(group, gaussian))],
        "the block vectors' and theirs only",
    )
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


def test_pictures_between_keys_take_the_key_before_after_or_their_mean():
    """Keys at pictures 1 and 4 of 6: a key picture is its own base; a picture equal to the key after it
    moved takes mode 1 where the shift pays; pictures outside the keys take the nearest key alone (mode 0)."""
    first, second = picture(48, 64, seed=5), picture(48, 64, seed=6)
    shift = torch.tensor([2, -3]).expand(3, 4, 2)
    pictures = torch.stack([first, first, second, blocks.warp(second, shift), second, second])
    vectors, modes, bases = blocks.between_keys([first, second], [1, 4], pictures)
    assert blocks.key_positions(48) == [6, 18, 30, 42] and blocks.key_positions(8) == [4]
    assert [blocks.references(p, [1, 4]) for p in range(6)] == [
        (0, 0),
        (0, 0),
        (0, 1),
        (0, 1),
        (1, 1),
        (1, 1),
    ]
    assert vectors.shape == (6, 3, 4, 4) and modes.shape == (6, 3, 4)
    assert torch.equal(bases[1], first) and torch.equal(bases[4], second)
    # the first two rows of blocks (the last, smoother, keeps the previous vector: cheaper than the shift)
    assert torch.equal(bases[3, :, :32], pictures[3, :, :32])
    assert (modes[3, :2] == 1).all() and (modes[[0, 1, 4, 5]] == 0).all()
    assert torch.equal(vectors[3, :2, :, 2:], shift[:2])
    motion = blocks.Blocks(vectors, modes, [1, 4])
    assert all(torch.equal(motion.base([first, second], p), bases[p]) for p in range(6))
    mean = blocks.predict(first, second, torch.zeros(3, 4, 4, dtype=torch.long), torch.full((3, 4), 2))
    assert torch.equal(mean, ((first.int() + second.int() + 1) // 2).to(torch.uint8))


@pytest.fixture(scope="module")
def several():
    """A 16-frame slide drawn from keys alone (a VBLK, the encoder's choice forced), keys 4 and 12."""
    frames = moving(t=16)
    codec = NervCodec("hnerv")
    mp = pytest.MonkeyPatch()
    mp.setattr(nerv_codec, "_cheaper", lambda fitted, bare, lam, pixels: bare[0])
    try:
        on = codec.encode((frames, 25), 2, progress=False, epochs=(2, 1))
    finally:
        mp.undo()
    return frames, codec, on


def test_a_group_drawn_from_keys_alone_round_trips(several):
    frames, codec, on = several
    assert [c for c, _ in on.chunks] == ["VKEY", "VKEY", "VBLK"]
    head = header(on.chunks[-1][1])
    b = head["blocks"]
    # modes for the pictures between the keys (5..11), a dy and a dx for each vector a mode uses
    assert b["keys"] == [4, 12] and sum(b["modes"]) == 7 * 3 * 4
    assert 14 * 3 * 4 <= sum(b["dy"]["counts"]) == sum(sum(h["counts"]) for h in b["dx"]) <= 21 * 3 * 4
    decoded = codec.decode(on)[0]
    # exactly the bases the encoder built from the decoded keys
    keys = [decode_key(k, 48, 64) for _, k in on.chunks[:2]]
    assert torch.equal(decoded, blocks.between_keys(keys, [4, 12], frames)[2])
    assert torch.equal(codec.decode(on, frames=(9, 14))[0], decoded[9:14])


def test_bare_groups_decode_their_keys_in_parallel_and_only_those_a_range_takes(several, monkeypatch):
    frames, codec, on = several
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.decode(on)[0]
        torch.set_num_threads(2)
        assert torch.equal(codec.decode(on)[0], one)  # the same pictures, a key on each thread
    finally:
        torch.set_num_threads(before)
    taken = []
    monkeypatch.setattr(nerv_codec, "decode_key", lambda k, h, w: taken.append(k) or decode_key(k, h, w))
    assert torch.equal(codec.decode(on, frames=(1, 4))[0], one[1:4])  # before the first key: it alone
    assert taken == [on.chunks[0][1]]


def test_the_file_carries_only_the_modes_and_vectors_a_reader_cannot_infer():
    keys, (by, bx) = [2, 5], (2, 3)
    assert blocks.coded_pictures(keys, 8).tolist() == [False, False, False, True, True, False, False, False]
    modes = torch.zeros(8, by, bx, dtype=torch.long)
    modes[3] = torch.tensor([[0, 1, 2], [2, 2, 0]])
    modes[4] = torch.tensor([[1, 1, 2], [0, 2, 0]])
    used = blocks.used_vectors(modes.numpy(), keys)
    assert used[[2, 5]].sum() == 0 and used[[0, 1, 6, 7], 0].all() and used[[0, 1, 6, 7], 1].sum() == 0
    assert used[3, 0].tolist() == [[True, False, True], [True, True, True]]
    assert used[3, 1].tolist() == [[False, True, True], [True, True, False]]
    # each picture's unused vectors are the previous picture's
    vectors = torch.zeros(8, by, bx, 4, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    for p in [0, 1, 3, 4, 6, 7]:  # a key picture's are 0
        prev = vectors[p - 1] if p else torch.zeros(by, bx, 4, dtype=torch.long)
        fresh = torch.randint(-9, 10, (by, bx, 4), generator=gen)
        mask = torch.from_numpy(used[p]).permute(1, 2, 0).repeat_interleave(2, -1)
        vectors[p] = torch.where(mask, fresh, prev)
    changes, dy, dx = blocks.bare_symbols(vectors, modes, keys)
    assert changes.shape == (2, by, bx) and changes[1].tolist() == [
        [1, 0, 0],
        [1, 0, 0],
    ]  # (m - previous) % 3
    assert dy.size == dx.size == used.sum()
    back = blocks.bare_modes(changes, keys, 8, by, bx)
    assert torch.equal(torch.from_numpy(back), modes)
    assert torch.equal(blocks.bare_vectors(dy, dx, used, keys), vectors)
    for p, b, c in [(2, 0, 0), (6, 1, 2), (3, 0, 3)]:  # a key's, a one-reference picture's B, a mode 0's B
        moved = vectors.clone()
        moved[p, b, 0, c] += 1
        with pytest.raises(ValueError, match="unused vector"):
            blocks.bare_symbols(moved, modes, keys)


def test_modes_and_vectors_are_priced_by_their_rough_bits():
    assert blocks.vector_bits(torch.tensor([[0, 0], [1, 0], [0, -4], [3, 5]])).tolist() == [0.5, 4, 8, 10]
    change = torch.zeros(1, 2, 4, dtype=torch.long)
    change[0, 1, 2:] = torch.tensor([2, 2])  # the second block's vector from the key after moved
    bits = blocks._mode_bits(change, torch.tensor([[1, 0]]))
    # block 0 keeps mode 1 cheapest; block 1's moved second vector makes modes 1 and 2 dearer than 0
    assert bits[:, 0, 0].argmin() == 1 and bits[:, 0, 1].argmin() == 0
    assert bits[2, 0, 1].item() == pytest.approx(0.5 + 8 + 3.5) and bits[0, 0, 1].item() == pytest.approx(0.8)


def test_the_encoder_keeps_the_cheaper_coding():
    """MSE of 0..1 samples + lambda x bits per pixel: fewer bytes win at equal error, less error at equal
    bytes."""
    small, large = [("VKEY", b"x" * 10)], [("VKEY", b"x" * 1000)]
    pixels, unit = 1000, 255**2 * 3 * 1000
    assert nerv_codec._cheaper((large, 0.0), (small, 0.0), 0.01, pixels) is small
    assert (
        nerv_codec._cheaper((small, 0.5 * unit), (large, 0.1 * unit), 0.01, pixels) is large
    )  # 0.5 > 0.1 + 0.08
    assert nerv_codec._cheaper((small, 0.1 * unit), (large, 0.1 * unit), 0.01, pixels) is small


def test_bare_groups_are_checked(several):
    _, codec, on = several
    k0, k1, (_, group) = on.chunks
    head = header(group)

    def refused(chunks, match):
        with pytest.raises(CodecError, match=match):
            codec.decode(Payload(on.params, chunks))

    def blocks_with(**fields):
        return ("VBLK", with_header(group, {**head, "blocks": {**head["blocks"], **fields}}))

    refused([k0, ("VBLK", group)], "1 video key pictures .VKEY. for a group that takes 2")
    refused([k0, k1, k1, ("VBLK", group)], "3 video key pictures")
    refused([("VBLK", group)], "block motion has no key picture")
    refused([k0, k1, blocks_with(keys=[12, 4])], "not increasing")
    refused([k0, k1, blocks_with(keys=[4, 16])], "not increasing")
    refused([k0, k1, blocks_with(modes=[1, 2])], "modes")
    refused([k0, k1, blocks_with(dx=[head["blocks"]["dy"]])], "dx")
    at = 4 + struct.unpack_from("<I", group)[0]  # the streams' lengths follow the header
    lengths = struct.unpack_from("<II", group, at)
    cut = group[:at] + struct.pack("<II", lengths[0], len(group)) + group[at + 8 :]
    refused([k0, k1, ("VBLK", cut)], "truncated video group .its streams.")
    refused([k0, k1, ("VBLK", group[: at + 4])], "truncated video group")
    refused([k0, k1, ("VBLK", with_header(group, {**head, "count": 15}))], "cover 15 of the clip's 16")
    refused([k0, k1, ("VDIF", group)], "VGOP header")  # a VBLK payload is no VGOP's
    with pytest.raises(ValueError, match="multiple of 4"):  # the entropy decoder's one-line error
        codec.decode(Payload(on.params, [k0, k1, ("VBLK", group[:-3])]))
