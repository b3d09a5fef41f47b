"""Video INR codecs on tiny clips: real bitstreams, frame ranges, shapes and rates kept, bad input."""

import struct
from fractions import Fraction

import pytest
import torch
from conftest import random_image

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import CodecError
from mcodec.codec.determinism import map_single_threaded, thread_independent
from mcodec.entropy import read_container, write_container
from mcodec.nerv.codec import group_ranges, network_for, reconstruct
from mcodec.nerv.model import Decoder, Head, plan

# files laid out chunk by chunk: without key pictures (test_video_keypicture.py)
pytestmark = pytest.mark.usefixtures("no_key_pictures")


def clip(t=6, h=40, w=52):
    base = random_image(3, h, w, seed=2).float()
    return torch.stack([base.roll(i, dims=2) for i in range(t)]).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_roundtrip_and_frame_range(kind):
    frames = clip()
    data = encode_bytes((frames, Fraction(30000, 1001)), "video", kind, 2, preset="fast", progress=False)
    container, (decoded, rate) = decode_bytes(data)
    assert decoded.shape == frames.shape and decoded.dtype == torch.uint8
    assert rate == Fraction(30000, 1001)
    assert [t for t, _ in container.chunks] == ["VGOP"]
    _, (part, _) = decode_bytes(data, frames=(1, 4))
    assert torch.equal(part, decoded[1:4])
    with pytest.raises(CodecError, match="frame range"):
        decode_bytes(data, frames=(4, 9))


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_reconstruction_is_independent_of_threads_and_range(kind):
    """With oneDNN off, torch's GELU splits its work at thread-dependent offsets and its scalar and
    vector paths differ in the last bit: batches of 8 decoded differently with 1 and 2 threads (2 of 27.6M
    pixels of a 120-frame clip). Each frame is now computed alone on one thread, so the float output
    itself is the same for any thread count, and a range gives exactly those frames of the clip."""
    torch.manual_seed(0)
    cfg = plan(kind, 240, 320, 16)
    decoder = Decoder(cfg).eval()
    inputs = torch.randn(9, cfg.embed_dim, *cfg.grid) if kind == "hnerv" else torch.arange(9) / 9
    before = torch.get_num_threads()
    floats, videos = [], []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            with thread_independent():
                floats.append(torch.cat(map_single_threaded(lambda i: decoder(inputs[i : i + 1]), range(9))))
            videos.append(reconstruct(decoder, inputs, 236, 320))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(f, floats[0]) for f in floats[1:])
    assert videos[0].shape == (9, 3, 236, 320)
    assert all(torch.equal(v, videos[0]) for v in videos[1:])
    assert torch.equal(reconstruct(decoder, inputs[3:7], 236, 320), videos[0][3:7])


@pytest.mark.parametrize("held", [0, 1 << 30])
def test_a_key_decoded_beside_the_frames_draws_the_same_frames(monkeypatch, held):
    """reconstruct(key=...) decodes the key picture on one thread while the others draw the first frames'
    logits, which wait for it (up to HELD_BYTES of them; none when 0): the frames are those drawn over
    decoder.base, at any thread count; an error of the key's decoding is raised, not lost."""
    from mcodec.nerv import codec as nerv_codec

    monkeypatch.setattr(nerv_codec, "HELD_BYTES", held)
    torch.manual_seed(0)
    cfg = plan("hnerv", 240, 320, 16)
    decoder = Decoder(cfg).eval()
    inputs = torch.randn(9, cfg.embed_dim, *cfg.grid)
    base = torch.randn(1, 3, cfg.height, cfg.width)

    def key():
        for _ in range(20):  # slow enough for frames to be drawn beside it
            torch.randn(300, 300) @ torch.randn(300, 300)
        return base

    decoder.base = base
    expected = reconstruct(decoder, inputs, 236, 320)
    decoder.base = None
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert torch.equal(reconstruct(decoder, inputs, 236, 320, key=key), expected)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)

    def broken():
        raise CodecError("video key picture: broken")

    with pytest.raises(CodecError, match="broken"):
        reconstruct(decoder, inputs, 236, 320, key=broken)


def test_fast_head_is_the_convolution():
    head = Head(12)
    x = torch.randn(2, 12, 30, 40)
    expected = torch.nn.functional.conv2d(x, head.weight, head.bias, padding=1)
    assert torch.allclose(head.eval()(x), expected, atol=1e-5)
    assert torch.equal(head.train()(x), expected)


def test_fitting_learns_the_clip():
    """The fitted network reproduces the clip far better than its mean frame would."""
    frames = clip(t=4)
    _, (decoded, _) = decode_bytes(
        encode_bytes((frames, 25), "video", "hnerv", 4, preset="fast", progress=False)
    )
    mse = ((decoded.float() - frames.float()) ** 2).mean()
    baseline = (
        (frames.float() - frames.float().mean(0, keepdim=True).mean((2, 3), keepdim=True)) ** 2
    ).mean()
    assert mse < 0.5 * baseline


def test_corrupt_group_is_refused():
    frames = clip(t=2, h=32, w=32)
    c = read_container(encode_bytes((frames, 25), "video", "nerv", 1, preset="fast", progress=False))
    c.chunks[0] = ("VGOP", c.chunks[0][1][:3])
    with pytest.raises(CodecError, match="truncated"):
        decode_bytes(write_container(c))
    c.chunks[0] = ("VGOP", b"\x05\x00\x00\x00{bad}")
    with pytest.raises(CodecError, match="JSON"):
        decode_bytes(write_container(c))
    c.chunks[0] = ("VGOP", struct.pack("<I", 4000) + b"[" * 2000 + b"]" * 2000)  # a RecursionError
    with pytest.raises(CodecError, match="JSON"):
        decode_bytes(write_container(c))


def test_sizing_follows_quality_and_pixels():
    small = network_for("hnerv", 240, 320, 60, 2)
    large = network_for("hnerv", 240, 320, 60, 5)
    assert large.channels[0] > small.channels[0]
    assert plan("hnerv", 240, 320, 32).grid == (3, 4)
    assert group_ranges(444, 240, 320) == [(0, 111), (111, 222), (222, 333), (333, 444)]


def test_cli_video(tmp_path, capfd):
    from mcodec.cli.main import main
    from mcodec.codec.media_io import read_video, write_video

    write_video(tmp_path / "in.mkv", clip(t=3, h=32, w=48), Fraction(12))

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        return e.value.code, capfd.readouterr().err

    assert run("encode", tmp_path / "in.mkv", tmp_path / "v.mcd", "--preset", "fast", "--quality", 1)[0] == 0
    assert run("decode", tmp_path / "v.mcd", tmp_path / "out.mkv", "--frames", "1:3")[0] == 0
    frames, rate = read_video(tmp_path / "out.mkv")
    assert frames.shape == (2, 3, 32, 48) and rate == 12
    code, err = run("decode", tmp_path / "v.mcd", tmp_path / "x.mkv", "--frames", "abc")
    assert code == 2 and "Traceback" not in err
    code, err = run(
        "encode", tmp_path / "in.mkv", tmp_path / "w.mcd", "--codec", "factorized", "--preset", "fast"
    )
    assert code == 2


def test_audio_only_file_has_no_video(tmp_path, capfd):
    from mcodec.cli.main import main
    from mcodec.codec.media_io import write_audio

    write_audio(tmp_path / "a.wav", torch.zeros(1, 800), 8000)
    with pytest.raises(SystemExit) as e:
        main(["encode", str(tmp_path / "a.wav"), str(tmp_path / "a.mcd"), "--codec", "hnerv"])
    assert e.value.code == 1 and "no video stream" in capfd.readouterr().err


def test_frames_that_skip_slots_are_repeated(tmp_path):
    """A stream whose timestamps skip slots (AVI drop frames: tree.avi has 68 coded frames over 444
    slots) reads as the constant-rate clip a player shows: each frame repeated over its slots."""
    import av
    import numpy as np

    from mcodec.codec.media_io import read_video

    path = tmp_path / "gaps.mkv"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("ffv1", rate=15)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "bgr0"
        stream.codec_context.time_base = Fraction(1, 15)
        for value, pts in ((10, 0), (120, 2), (240, 5)):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), value, np.uint8), format="rgb24")
            frame = frame.reformat(format="bgr0")
            frame.pts, frame.time_base = pts, Fraction(1, 15)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    frames, rate = read_video(path)
    assert rate == 15
    assert [int(f[0, 0, 0]) for f in frames] == [10, 10, 120, 120, 120, 240]
    assert read_video(path, max_frames=4)[0].shape[0] == 4


def test_empty_and_oversized_videos_fail_with_one_line(tmp_path, capfd, monkeypatch):
    """A video stream with no frames, and frames larger than the supported size, are refused with a
    one-line error (exit 1) before any fitting or large allocation."""
    import av

    from mcodec.cli.main import main
    from mcodec.codec import media_io

    with av.open(str(tmp_path / "empty.mkv"), mode="w") as out:
        stream = out.add_stream("ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "bgr0"
        out.start_encoding()  # the header of a video stream, then no frame
    media_io.write_video(tmp_path / "big.mkv", clip(t=1, h=32, w=48), Fraction(12))
    monkeypatch.setattr(media_io.video, "MAX_FRAME_PIXELS", 32 * 32)  # as a 16k x 16k clip would be
    import re

    for name, message in (("empty.mkv", "no frames|cannot read video"), ("big.mkv", "outside the supported")):
        with pytest.raises(SystemExit) as e:
            main(["encode", str(tmp_path / name), str(tmp_path / "v.mcd"), "--codec", "hnerv"])
        err = capfd.readouterr().err
        assert e.value.code == 1 and re.search(message, err) and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_tensor_shapes_and_parameter_count_are_the_decoders(kind):
    """The checks (and network_for) size a decoder from its config without building it."""
    from mcodec.nerv.model import parameter_count, tensor_shapes

    for cfg in (plan(kind, 48, 64, 8), plan(kind, 240, 320, 100), plan(kind, 33, 500, 256)):
        state = Decoder(cfg).state_dict()
        assert {k: tuple(v.shape) for k, v in state.items()} == tensor_shapes(cfg)
        assert list(state) == list(tensor_shapes(cfg))
        assert parameter_count(cfg) == sum(v.numel() for v in state.values())


def _vector(name):
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / "bitstream_spec" / "vectors" / name).read_bytes()


def _with_group_header(data, change):
    from mcodec.codec.fuzz import McdFile, join_json_header, split_json_header

    f = McdFile.parse(data)
    head, rest = split_json_header(f.chunks[0][1])
    change(head)
    f.chunks[0] = (b"VGOP", join_json_header(head, rest))
    return f.to_bytes()


def _set(path, value):
    def change(head):
        *keys, last = path
        for k in keys:
            head = head[k]
        head[last] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set(("config", "channels"), [100000, 12, 12]), r"config\.channels\[0\] = 100000 outside 1\.\.256"),
        (_set(("config", "strides"), [0, 4]), r"config\.strides\[0\] = 0 is not one of"),
        (lambda head: head["config"].update(strides=[4, 4, 4], channels=[8, 12, 12, 12]), "multiple of 64"),
        (_set(("config", "strides"), [3, 3]), r"strides \[3, 3\] or channels do not fit"),
        (_set(("config", "embed_dim"), 10**9), r"config\.embed_dim = 1000000000 outside 1\.\.16"),
        (_set(("config", "height"), 4800), "config size 64x4800 is not the 64x48 clip"),
        (_set(("config", "channels"), [256, 256, 256]), "a decoder of .* parameters, over the"),
        (_set(("config", "kind"), "hnerv"), "config.kind 'hnerv' in a nerv file"),
        (_set(("count",), 0), r"count = 0 outside 1\.\.120"),
        (_set(("count",), 2), "video groups cover 2 of the clip's 3 frames"),
        (_set(("first",), 1), "video group 0 starts at frame 1, not 0"),
        (_set(("bits",), 16), "bits = 16 is not one of 8"),
        (_set(("tensors", 0, "steps"), 1), "tensor stem.0.weight has 1 steps"),
        (_set(("tensors", 0, "shape"), [64, 2**40]), "tensors do not match"),
        (_set(("tensors", 0, "idx"), 65), r"tensors\[0\]\.idx = 65 outside 0\.\.64"),
        (_set(("tensors", 0, "idx"), 64), "table 64 is the block vectors. and theirs only"),
        (lambda head: head.pop("tensors"), "tensors is missing"),
    ],
)
def test_bad_group_headers_are_one_line_user_errors(change, message):
    """Every number of a VGOP header is checked before the network is built: a large channel count
    was a large allocation, a zero stride a ZeroDivisionError (an internal error, exit 3)."""
    data = _with_group_header(_vector("tree_64x48_nerv_q1.mcd"), change)
    with pytest.raises(CodecError, match=message):
        decode_bytes(data)


def test_groups_must_cover_the_clip_in_order(monkeypatch):
    """Missing, duplicated, swapped or overlapping groups are refused (FORMAT.md 6.4); a frame range
    checks every group's header but decodes only the groups it needs."""
    from mcodec.codec.fuzz import McdFile
    from mcodec.entropy import EntropyDecodeError
    from mcodec.nerv import codec as nerv_codec

    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    monkeypatch.setattr(nerv_codec, "DIFF_GROUPS", False)  # two VGOPs (VDIF's rules: its own test)
    frames = clip(t=4, h=32, w=32)
    data = encode_bytes((frames, 25), "video", "nerv", 1, preset="fast", progress=False)
    f = McdFile.parse(data)
    g0, g1 = f.chunks
    for chunks, message in (
        ([g0], "cover 2 of the clip's 4"),
        ([g0, g0, g1], "group 1 starts at frame 0, not 2"),
        ([g1, g0], "group 0 starts at frame 2, not 0"),
        ([g0, g1, g1], "group 2 starts at frame 2, not 4"),
    ):
        with pytest.raises(CodecError, match=message):
            decode_bytes(McdFile(f.version, f.head_prefix, f.params, chunks).to_bytes())
    _, (whole, _) = decode_bytes(data)
    broken = McdFile(f.version, f.head_prefix, f.params, [g0, (g1[0], g1[1] + b"\x01")])  # misaligned
    _, (part, _) = decode_bytes(broken.to_bytes(), frames=(0, 2))  # group 1's stream is never decoded
    assert torch.equal(part, whole[:2])
    with pytest.raises(EntropyDecodeError):
        decode_bytes(broken.to_bytes())
    f.chunks[1] = (b"VGOP", f.chunks[1][1][:8])
    with pytest.raises(CodecError, match="bad video group header length"):
        decode_bytes(f.to_bytes(), frames=(0, 2))


def test_a_dark_clip_does_not_collapse_to_black():
    """A bright square moving over black (3% of the picture, as in megamind's dark opening): the output
    starts at the clip's mean colour, so the first steps do not push every pixel into the sigmoid's flat
    tail (which had the fit stuck at 13.5 dB, worse than an all-black picture's 16.3)."""
    from mcodec.nerv.codec import BITS, network_for
    from mcodec.nerv.fit import fit_group

    t, h, w = 8, 48, 64
    frames = torch.zeros(t, 3, h, w, dtype=torch.uint8)
    for i in range(t):
        frames[i, :, 10:20, 4 + 4 * i : 14 + 4 * i] = 220
    assert fit_group(frames, network_for("hnerv", h, w, t, 3), BITS, (20, 4)).psnr > 20


def test_a_collapsed_frame_encoder_starts_again(monkeypatch):
    """HNeRV's encoder whose last GELU layer is dead for every frame gives every frame one embedding (the
    life clip's q3 fit, seed 0): the fit finds it at its next check and gives the encoder fresh weights,
    and ends far better than a fit left collapsed. A healthy fit is never touched."""
    from mcodec.nerv import fit as nerv_fit
    from mcodec.nerv.codec import BITS

    t, h, w = 8, 48, 64
    frames = torch.full((t, 3, h, w), 40, dtype=torch.uint8)
    for i in range(t):  # a square moving across: each frame needs its own embedding
        frames[i, :, 10:26, 4 + 5 * i : 20 + 5 * i] = 220
    cfg = network_for("hnerv", h, w, t, 3)
    healthy = nerv_fit.fit_group(frames, cfg, BITS, (20, 2))
    assert healthy.revivals == 0
    made = []

    def dead_first(cfg):
        encoder = nerv_fit.Encoder.__wrapped__(cfg)
        if not made:
            with torch.no_grad():
                encoder.net[-3].bias.fill_(-30.0)  # GELU(-30 + a few) = 0, its gradient 0
        made.append(encoder)
        return encoder

    dead_first.__wrapped__ = nerv_fit.Encoder
    monkeypatch.setattr(nerv_fit, "Encoder", dead_first)
    monkeypatch.setattr(nerv_fit, "CHECK_EVERY", 10)
    revived = nerv_fit.fit_group(frames, cfg, BITS, (20, 2))
    assert revived.revivals == 1 and len(made) == 2
    made.clear()
    monkeypatch.setattr(nerv_fit, "COLLAPSED", 0.0)  # the check never fires
    stuck = nerv_fit.fit_group(frames, cfg, BITS, (20, 2))
    assert stuck.revivals == 0 and revived.psnr > stuck.psnr + 2, (healthy.psnr, revived.psnr, stuck.psnr)


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_a_group_starts_from_the_previous_groups_networks(kind, monkeypatch):
    """A group whose fit starts from the previous group's networks (warm_start) is already near a fit of
    similar frames, so a short fit ends far better than one from random weights; a different
    architecture starts from scratch; and an encode whose groups start warm still decodes each group
    alone (a frame range reads only its own)."""
    from mcodec.nerv import codec as nerv_codec
    from mcodec.nerv.codec import BITS
    from mcodec.nerv.fit import fit_group, warm_start

    frames = clip(t=4, h=32, w=48)
    cfg = network_for(kind, 32, 48, 4, 3)
    first = fit_group(frames, cfg, BITS, (30, 2))
    cold = fit_group(frames.roll(1, dims=3), cfg, BITS, (1, 1))
    warm = fit_group(frames.roll(1, dims=3), cfg, BITS, (1, 1), start=first)
    assert warm.psnr > cold.psnr + 3, (warm.psnr, cold.psnr)
    assert warm_start(first, cfg) and not warm_start(first, plan(kind, 32, 48, cfg.channels[0] + 4))

    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    data = encode_bytes((frames, 25), "video", kind, 2, progress=False, epochs=(2, 1))
    _, (whole, _) = decode_bytes(data)
    _, (part, _) = decode_bytes(data, frames=(2, 4))
    assert torch.equal(part, whole[2:])


def test_the_fit_runs_in_full_float32_and_restores_the_flags():
    """TF32 convolutions (torch's default for cuDNN) are off while a group is fitted, so a GPU fits the
    float32 network the CPU decodes; the caller's flags come back afterwards, also after an error."""
    from mcodec.nerv.codec import BITS
    from mcodec.nerv.fit import fit_group

    seen = []
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        frames = clip(t=2, h=32, w=32)
        cfg = network_for("hnerv", 32, 32, 2, 1)
        fit_group(
            frames,
            cfg,
            BITS,
            (1, 1),
            on_step=lambda phase, mse: seen.append(
                (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            ),
        )
        assert seen and set(seen) == {(False, False)}
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32

        def fail(phase, mse):
            raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            fit_group(frames, cfg, BITS, (1, 1), on_step=fail)
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_groups_coded_as_differences(monkeypatch):
    """A group after the first (same architecture, not a KEY_EVERY-th) codes its decoder tensors as
    differences from the previous group's rebuilt ones (a VDIF chunk): fewer bytes for the same frames,
    and the decoder rebuilds exactly what the encoder's fine-tune quantized against (else its frames fall
    apart). A VDIF first, or after a group of another architecture, is refused in one line."""
    from mcodec.codec.fuzz import McdFile
    from mcodec.nerv import codec as nerv_codec

    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 4)
    frames = clip(t=8, h=32, w=48)

    def coded(diff: bool):
        monkeypatch.setattr(nerv_codec, "DIFF_GROUPS", diff)
        data = encode_bytes((frames, 25), "video", "hnerv", 3, progress=False, epochs=(20, 5))
        _, (decoded, _) = decode_bytes(data)
        error = (decoded[4:].float() - frames[4:].float()).square().mean()
        return McdFile.parse(data), 10 * torch.log10(255**2 / error).item()

    (key, key_psnr), (diff, diff_psnr) = coded(False), coded(True)
    assert [t for t, _ in key.chunks] == [b"VGOP", b"VGOP"] and [t for t, _ in diff.chunks] == [
        b"VGOP",
        b"VDIF",
    ]
    assert len(diff.chunks[1][1]) < 0.9 * len(key.chunks[1][1])
    assert diff_psnr > key_psnr - 0.5, (diff_psnr, key_psnr)

    def refused(chunks, message):
        with pytest.raises(CodecError, match=message):
            decode_bytes(McdFile(diff.version, diff.head_prefix, diff.params, chunks).to_bytes())

    g0, g1 = diff.chunks
    refused([(b"VDIF", g0[1]), g1], "first video group is coded as differences")
    # a wider first group (an encoder may size its groups differently; this clip is too small for
    # mcodec's to differ): the VDIF after it is refused
    monkeypatch.setattr(nerv_codec, "network_for", lambda kind, h, w, t, q, *a: plan(kind, h, w, 12))
    monkeypatch.setattr(nerv_codec, "max_parameters", lambda *a: 10**6)
    wide = McdFile.parse(
        encode_bytes((frames, 25), "video", "hnerv", 3, progress=False, epochs=(1, 1))
    ).chunks[0]
    refused([wide, g1], "differences from a previous group of another architecture")
