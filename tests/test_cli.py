"""The command line: round trip of the sample, listings, and one-line errors for every bad input."""

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest
from conftest import run_cli

from mcodec.codec.media_io import read_image
from mcodec.evaluation.metrics import psnr_rgb


def assert_one_line_error(code, err, match=""):
    assert code not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcodec: error: "), err
    assert match in lines[0]
    assert "Traceback" not in err


def test_sample_roundtrip_through_cli(capfd, tmp_path, sample_path):
    bit, rec = tmp_path / "s.mcd", tmp_path / "s.png"
    code, _, err = run_cli(capfd, "encode", sample_path, bit)
    assert code == 0 and "bpp" in err
    code, _, _ = run_cli(capfd, "decode", bit, rec)
    assert code == 0
    original, decoded = read_image(sample_path), read_image(rec)
    assert decoded.shape == original.shape
    assert psnr_rgb(original, decoded) > 25.0


def test_quiet_silences_stderr(capfd, tmp_path, sample_path):
    code, out, err = run_cli(capfd, "--quiet", "encode", sample_path, tmp_path / "q.mcd", "--quality", 1)
    assert code == 0 and err == "" and out == ""


def test_info_json_and_text(capfd, tmp_path, sample_path):
    bit = tmp_path / "i.mcd"
    run_cli(capfd, "encode", sample_path, bit, "--quality", 2)
    code, out, _ = run_cli(capfd, "info", bit, "--json")
    d = json.loads(out)
    assert code == 0 and d["media"] == "image" and d["codec"] == "meanscale"
    assert d["params"]["width"] == 400 and d["params"]["quality"] == 2
    assert sum(c["bytes"] for c in d["chunks"]) + 12 == d["bytes"] == bit.stat().st_size
    code, out, _ = run_cli(capfd, "info", bit)
    assert code == 0 and "YLAT" in out


def test_codecs_lists_every_codec_and_each_medium_default(capfd):
    """`mcodec codecs`: every shipped codec once, with its unit, and exactly one default per medium, the
    one builtin.DEFAULTS names (whatever the order of the listing)."""
    from mcodec.codec.builtin import DEFAULTS

    code, out, _ = run_cli(capfd, "codecs", "--json")
    assert code == 0
    listing = json.loads(out)
    rows = {r["id"]: r for r in listing}
    assert len(rows) == len(listing)
    assert {
        "factorized",
        "hyperprior",
        "meanscale",
        "compressai:bmshj2018-hyperprior",
        "compressai:mbt2018-mean",
        "hnerv",
        "nerv",
        "rvq",
    } <= set(rows)
    assert {"media": "image", "qualities": [1, 8], "unit": "quality"}.items() <= rows["factorized"].items()
    assert {"media": "audio", "unit": "kbps", "default_preset": "medium"}.items() <= rows["rvq"].items()
    assert DEFAULTS == {"image": "meanscale", "video": "hnerv", "audio": "rvq"}
    defaults = [(r["media"], r["id"]) for r in listing if r["default"]]
    assert sorted(defaults) == sorted(DEFAULTS.items())
    code, out, _ = run_cli(capfd, "codecs")
    marked = [line.split()[1:3] for line in out.splitlines() if line.startswith("*")]
    assert code == 0 and sorted((media, cid) for cid, media in marked) == sorted(DEFAULTS.items())


def test_existing_output_is_not_overwritten_without_force(capfd, tmp_path, sample_path):
    bit = tmp_path / "o.mcd"
    bit.write_bytes(b"keep me")
    code, _, err = run_cli(capfd, "encode", sample_path, bit)
    assert_one_line_error(code, err, "exists")
    assert bit.read_bytes() == b"keep me"
    assert run_cli(capfd, "encode", sample_path, bit, "--force")[0] == 0
    rec = tmp_path / "o.png"
    rec.write_bytes(b"keep")
    code, _, err = run_cli(capfd, "decode", bit, rec)
    assert_one_line_error(code, err, "exists")
    assert rec.read_bytes() == b"keep"
    assert run_cli(capfd, "decode", bit, rec, "--force")[0] == 0


@pytest.fixture(scope="module")
def good_file(tmp_path_factory, sample_path):
    from mcodec import encode_bytes

    image = read_image(sample_path)[:, :48, :64]
    return encode_bytes(image, "image", "factorized", 3)


def chunk_boundaries(data: bytes) -> list[int]:
    pos, out = 12, [8, 12]
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos + 4)
        pos += n + 12
        out.append(pos)
    return out


def test_corrupt_inputs_fail_cleanly_without_output(capfd, tmp_path, good_file):
    cases = {f"trunc{n}": good_file[:n] for n in chunk_boundaries(good_file)[:-1]}
    cases.update({f"trunc_mid{n}": good_file[: n + 5] for n in chunk_boundaries(good_file)[:-2]})
    for i in range(0, len(good_file), max(1, len(good_file) // 25)):
        flipped = bytearray(good_file)
        flipped[i] ^= 0x10
        cases[f"flip{i}"] = bytes(flipped)
    cases["empty"] = b""
    cases["garbage"] = os.urandom(3000)
    cases["png"] = b"\x89PNG\r\n\x1a\n" + os.urandom(100)
    for name, data in cases.items():
        src, dst = tmp_path / f"{name}.mcd", tmp_path / f"{name}.png"
        src.write_bytes(data)
        code, _, err = run_cli(capfd, "decode", src, dst)
        if name == "flip9":  # the writer's minor version byte: still a valid file
            continue
        assert_one_line_error(code, err)
        assert not dst.exists(), name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_file_naming_an_unknown_codec(capfd, tmp_path, good_file):
    from mcodec.entropy import read_container, write_container

    c = read_container(good_file)
    c.header.codec = "nosuchcodec"
    src = tmp_path / "u.mcd"
    src.write_bytes(write_container(c))
    code, _, err = run_cli(capfd, "decode", src, tmp_path / "u.png")
    assert_one_line_error(code, err, "unknown codec 'nosuchcodec'")


def test_wrong_weights_are_refused(capfd, tmp_path, good_file, tiny_weights):
    src = tmp_path / "w.mcd"
    src.write_bytes(good_file)
    code, _, err = run_cli(capfd, "decode", src, tmp_path / "w.png", "--weights", tiny_weights)
    assert_one_line_error(code, err, "other weights")


def png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + body
        + struct.pack(">I", zlib.crc32(body))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"this is not media" * 20), "not an image, video or audio"),
        (lambda p: p.write_bytes(png_claiming(100000, 100000)), "outside the supported size"),
    ],
)
def test_bad_media_inputs(capfd, tmp_path, make_input, match):
    src = tmp_path / "in.png"
    make_input(src)
    code, _, err = run_cli(capfd, "encode", src, tmp_path / "out.mcd")
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "out.mcd").exists()


def test_rgba_with_transparency_is_refused_and_opaque_accepted(capfd, tmp_path):
    from PIL import Image

    Image.new("RGBA", (20, 10), (10, 20, 30, 128)).save(tmp_path / "t.png")
    code, _, err = run_cli(capfd, "encode", tmp_path / "t.png", tmp_path / "t.mcd")
    assert_one_line_error(code, err, "transparency")
    Image.new("RGBA", (20, 10), (10, 20, 30, 255)).save(tmp_path / "o.png")
    assert run_cli(capfd, "encode", tmp_path / "o.png", tmp_path / "o.mcd")[0] == 0


def test_grayscale_roundtrip_stays_grayscale(capfd, tmp_path):
    from PIL import Image

    Image.new("L", (37, 23), 90).save(tmp_path / "g.png")
    assert run_cli(capfd, "encode", tmp_path / "g.png", tmp_path / "g.mcd")[0] == 0
    assert run_cli(capfd, "decode", tmp_path / "g.mcd", tmp_path / "g2.png")[0] == 0
    assert read_image(tmp_path / "g2.png").shape == (1, 23, 37)


def test_unknown_codec_and_bad_options(capfd, tmp_path, sample_path):
    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "x.mcd", "--codec", "nope")
    assert_one_line_error(code, err, "unknown codec 'nope'")
    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "x.mcd", "--quality", 99)
    assert_one_line_error(code, err, "quality")
    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "x.mcd", "--device", "tpu")
    assert code == 2 and "Traceback" not in err


def test_rate_knob_must_match_the_codec_unit(capfd, tmp_path, sample_path):
    """--quality is for quality-level codecs, --bitrate (kbit/s) for bitrate codecs: the other knob is a
    one-line error, not silently taken as the codec's own knob."""
    import torch

    from mcodec.codec.media_io import write_audio

    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "b.mcd", "--bitrate", 6)
    assert_one_line_error(code, err, "--quality")
    assert code == 1 and not (tmp_path / "b.mcd").exists()
    wav = tmp_path / "tone.wav"
    t = torch.arange(8000) / 16000
    write_audio(wav, (0.3 * torch.sin(2 * torch.pi * 220 * t))[None], 16000)
    code, _, err = run_cli(capfd, "encode", wav, tmp_path / "q.mcd", "--quality", 3)
    assert_one_line_error(code, err, "--bitrate")
    assert code == 1 and not (tmp_path / "q.mcd").exists()
    assert run_cli(capfd, "encode", wav, tmp_path / "a.mcd", "--bitrate", 3)[0] == 0
    assert run_cli(capfd, "encode", sample_path, tmp_path / "i.mcd", "--quality", 3)[0] == 0


def test_unwritable_outputs(capfd, tmp_path, sample_path, good_file):
    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "no" / "dir" / "x.mcd")
    assert_one_line_error(code, err, "cannot write")
    src = tmp_path / "g.mcd"
    src.write_bytes(good_file)
    code, _, err = run_cli(capfd, "decode", src, tmp_path / "x.jpgx")
    assert_one_line_error(code, err, "cannot write images as .jpgx")


def test_output_folder_checked_before_the_work(tmp_path, sample_path, monkeypatch):
    """A missing output folder is said before encoding (a video's fit takes minutes) or decoding."""
    from mcodec import compress
    from mcodec.codec.atomic_write import OutputError, check_output

    def no_work(*args, **kwargs):
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr(compress, "encode_stream", no_work)
    monkeypatch.setattr(compress, "read_mcodec_file", no_work)
    with pytest.raises(OutputError, match="no such folder"):
        compress.encode_file(sample_path, tmp_path / "typo" / "x.mcd")
    with pytest.raises(OutputError, match="no such folder"):
        compress.decode_file(tmp_path / "x.mcd", tmp_path / "typo" / "x.png")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(OutputError, match="not a folder"):
        check_output(tmp_path / "f" / "x.mcd")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path, force=True)
    check_output(tmp_path / "a" / "b" / "x.mcd", make_parents=True)  # folders that will be made


def test_python_dash_m_works(tmp_path, sample_path):
    r = subprocess.run([sys.executable, "-m", "mcodec", "codecs"], capture_output=True, text=True)
    assert r.returncode == 0 and "factorized" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "mcodec", "decode", str(tmp_path / "missing.mcd"), str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert (
        r.returncode == 1 and r.stderr.strip() == f"mcodec: error: {tmp_path / 'missing.mcd'}: no such file"
    )


def test_images_need_no_pyav(tmp_path, sample_path):
    """PyAV is imported on first video/audio use: image work runs where it is missing (a GPU machine
    that trains image models gets smaller uploads)."""
    code = (
        "import sys; sys.modules['av'] = None\n"
        "from mcodec import decode_file, encode_file\n"
        f"encode_file({str(sample_path)!r}, {str(tmp_path / 'a.mcd')!r})\n"
        f"decode_file({str(tmp_path / 'a.mcd')!r}, {str(tmp_path / 'a.png')!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1500:]
    assert (tmp_path / "a.png").exists()


def test_demo_round_trips_every_shipped_sample(tmp_path, capfd):
    """`mcodec demo` (the README's first command): every sample, one per medium, through its default
    codec and shipped model, with a table row each."""
    from mcodec.cli.demo import SAMPLES, run_demo

    rows = run_demo(tmp_path, None, log=None)
    samples = sorted(p.name for p in SAMPLES.iterdir() if not p.name.endswith(".md"))
    assert sorted(r["sample"] for r in rows) == samples
    assert {r["codec"] for r in rows} == {"meanscale", "hnerv", "rvq"}
    assert all(0 < r["bitstream_bytes"] < r["input_bytes"] for r in rows)
    table = capfd.readouterr().out
    assert all(r["sample"] in table for r in rows)


@pytest.fixture
def image_and_audio_samples(tmp_path, monkeypatch):
    """The demo over the shipped image and audio samples only (the video sample's fit takes minutes)."""
    import shutil

    from mcodec.cli import demo

    folder = tmp_path / "samples"
    folder.mkdir()
    for name in ("fruits_400x300.png", "goforward_16k.flac"):
        shutil.copy(demo.SAMPLES / name, folder / name)
    monkeypatch.setattr(demo, "SAMPLES", folder)
    return folder


def test_demo_quality_goes_to_quality_codecs_and_bitrate_to_bitrate_codecs(
    capfd, tmp_path, image_and_audio_samples
):
    code, _, err = run_cli(capfd, "--quiet", "demo", "--quality", 2, "--out", tmp_path / "a")
    assert code == 0, err
    code, out, err = run_cli(
        capfd, "--quiet", "demo", "--quality", 2, "--bitrate", 3, "--out", tmp_path / "b"
    )
    assert code == 0, err
    (image, audio) = (line.split() for line in out.splitlines()[1:3])
    assert image[:3] == ["fruits_400x300.png", "meanscale", "2"]
    assert audio[:3] == ["goforward_16k.flac", "rvq", "3"]
    from mcodec.cli.demo import run_demo

    rows = {r["codec"]: r for r in run_demo(tmp_path / "c", 2, log=None)}
    assert rows["meanscale"]["quality"] == 2 and rows["rvq"]["quality"] == 6  # rvq's default, not 2 kbit/s


def test_demo_names_each_medium_measure(capfd, tmp_path, image_and_audio_samples):
    """Images show PSNR, audio its own measure, each named in its row: an audio SNR of 6 dB under a
    "PSNR dB" header beside image PSNRs of 30 dB reads as a broken codec."""
    from mcodec.cli.demo import run_demo
    from mcodec.codec.media_io import read_audio
    from mcodec.evaluation.audio_metrics import si_sdr

    rows = {r["codec"]: r for r in run_demo(tmp_path, None, log=None)}
    header, *lines = capfd.readouterr().out.splitlines()
    assert "PSNR" not in header
    image_row = next(line for line in lines if line.startswith("fruits"))
    audio_row = next(line for line in lines if line.startswith("goforward"))
    assert image_row.endswith(f"{rows['meanscale']['measure_value']:.2f} PSNR dB")
    assert rows["rvq"]["measure"] == "SI-SDR dB" and audio_row.endswith(
        f"{rows['rvq']['measure_value']:.2f} SI-SDR dB"
    )
    original = read_audio(image_and_audio_samples / "goforward_16k.flac")[0]
    decoded = read_audio(tmp_path / "goforward_16k.rec.wav")[0]
    assert rows["rvq"]["measure_value"] == pytest.approx(si_sdr(original, decoded))
