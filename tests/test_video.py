"""Video INR codecs on tiny clips: real bitstreams, frame ranges, shapes and rates kept, bad input."""

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
