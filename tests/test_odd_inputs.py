"""Video as people have it: variable frame rate, odd sizes, 10-bit samples, rotation metadata, a video
stream with no frames. Each one works or fails with one line."""

import struct
from fractions import Fraction

import numpy as np
import pytest

from mcodec.cli.main import main
from mcodec.codec.media_io import MediaError, media_kind, read_video
from mcodec.codec.media_io.av_lib import load_av


def bar(i: int, w: int, h: int) -> np.ndarray:
    """A frame with a dark top third (which way is up) and a bar that moves right."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3] = 60
    img[:, (7 * i) % w : (7 * i) % w + 5] = 200
    return img


def clip(path, codec="ffv1", pix="bgr0", w=64, h=48, n=6, pts_ms=None, sound=False) -> None:
    av = load_av()
    fmt = "mp4" if path.suffix == ".mp4" else "matroska"
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = w, h, pix
        audio = out.add_stream("flac", rate=16000, layout="mono") if sound else None
        for i in range(n):
            f = av.VideoFrame.from_ndarray(bar(i, w, h), format="rgb24").reformat(format=pix)
            if pts_ms is not None:
                f.pts, f.time_base = pts_ms[i], Fraction(1, 1000)
            out.mux(s.encode(f))
        out.mux(s.encode())
        if audio is not None:
            audio.format = "s16"
            x = (np.sin(np.arange(16000) / 10) * 10000).astype(np.int16)[None]
            a = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
            a.sample_rate, a.pts = 16000, 0
            out.mux(audio.encode(a))
            out.mux(audio.encode(None))


def run(capfd, *args):
    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    out, err = capfd.readouterr()
    return e.value.code, out, err


def test_variable_frame_rate_reads_at_a_constant_rate(tmp_path):
    src = tmp_path / "vfr.mkv"
    clip(src, pts_ms=[0, 100, 150, 400, 420, 700])
    frames, rate = read_video(src)
    assert rate == 10 and frames.shape[1:] == (3, 48, 64)
    assert 6 <= frames.shape[0] <= 9  # each frame shown for its time, on a 10 frames/s grid


def test_an_odd_size_round_trips(capfd, tmp_path):
    src, bit, rec = tmp_path / "odd.mkv", tmp_path / "odd.mcd", tmp_path / "rec.mkv"
    clip(src, w=63, h=47, n=3)
    assert run(capfd, "encode", src, bit, "--preset", "fast", "--quality", "1")[0] == 0
    assert run(capfd, "decode", bit, rec)[0] == 0
    assert read_video(rec)[0].shape == (3, 3, 47, 63)
    code, _, err = run(capfd, "decode", bit, tmp_path / "rec.mp4")  # x264 4:2:0 needs even sizes
    assert code == 1 and err.count("\n") == 1 and "even dimensions" in err


def test_ten_bit_samples_read_as_eight_bit_rgb(tmp_path):
    src = tmp_path / "ten.mkv"
    clip(src, pix="yuv420p10le")
    frames, _ = read_video(src)
    assert frames.shape == (6, 3, 48, 64)
    # the top third is dark grey (60) and the bar bright, within what 4:2:0 chroma rounding moves
    assert abs(frames[0, :, 2:10, 40:60].float().mean().item() - 60) < 4
    assert frames[0, :, 30, 0:5].float().mean().item() > 150


def test_a_video_stream_without_frames(tmp_path):
    with_sound, silent = tmp_path / "sound.mkv", tmp_path / "silent.mkv"
    clip(with_sound, n=0, sound=True)
    assert media_kind(with_sound) == "audio"  # the file's only media is its sound: coded as audio
    av = load_av()
    with av.open(str(silent), "w", format="matroska") as out:  # one packet no decoder can read
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "bgr0"
        packet = av.Packet(b"\x00" * 64)
        packet.stream, packet.pts, packet.dts = s, 0, 0
        out.mux(packet)
    with pytest.raises(MediaError, match="no decodable frames"):
        media_kind(silent)


def rotate_90(src, dst) -> None:
    """An mp4 whose track matrix says 'rotate 90 degrees clockwise to display' (a phone's portrait
    video): the tkhd box's 3x3 matrix, 44 bytes after its type, set to [0 1 0; -1 0 0; 0 0 1]."""
    data = bytearray(src.read_bytes())
    at = data.find(b"tkhd") + 44
    data[at : at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    dst.write_bytes(bytes(data))


def test_rotation_metadata_turns_the_frames_upright(tmp_path):
    plain, turned = tmp_path / "plain.mp4", tmp_path / "turned.mp4"
    clip(plain, codec="libx264", pix="yuv420p", n=3)
    rotate_90(plain, turned)
    frames, _ = read_video(turned)
    assert frames.shape == (3, 3, 64, 48)  # portrait now
    # the dark top third of the stored frame is now on the right: turned 90 degrees clockwise
    right, left = frames[0, :, 30:34, 40:46].float().mean(), frames[0, :, 30:34, 2:10].float().mean()
    assert 40 < right < 80 and left < 30
    assert (frames == read_video(plain)[0].rot90(-1, (2, 3))).float().mean() > 0.99
