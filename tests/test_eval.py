"""`mcodec eval`: the grid runs for real, writes every report file, resumes, and agrees with the CLI."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import random_image, run_cli
from PIL import Image

from mcodec import decode_file, encode_file
from mcodec.codec.media_io import read_image
from mcodec.evaluation import metrics


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(random_image(3, 48, 64, seed=i).permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    return folder


def test_eval_writes_reports_and_agrees_with_cli(capfd, tmp_path, image_folder):
    out = tmp_path / "ev"
    code, stdout, err = run_cli(
        capfd, "eval", image_folder, "--quality", "2,6", "--anchor", "jpeg,webp", "--out", out
    )
    assert code == 0, err
    for name in (
        "results.json",
        "results.csv",
        "rd.png",
        "report.md",
        "records.jsonl",
        "curves/image-meanscale.json",
        "curves/image-jpeg.json",
    ):
        assert (out / name).exists(), name
    summary = json.loads((out / "results.json").read_text())
    records = summary["records"]
    assert {r["codec"] for r in records} == {"meanscale", "jpeg", "webp"}
    assert len([r for r in records if r["codec"] == "meanscale"]) == 4  # 2 files x 2 qualities
    assert any("broken.png" in e["file"] for e in summary["errors"])
    curve = json.loads((out / "curves/image-meanscale.json").read_text())
    assert set(curve) == {"name", "description", "results"} and len(curve["results"]["bpp"]) == 2
    assert "BD-rate" in stdout and "meanscale vs jpeg" in stdout
    assert "meanscale vs webp, file by file (psnr_rgb)" in stdout
    (per_file,) = [r for r in summary["bd_rate_per_file"]["image"] if r["anchor"] == "jpeg"]
    assert set(per_file["files"]) == {str(image_folder / "0.png"), str(image_folder / "1.png")}
    assert "| mean of files |" in (out / "report.md").read_text()
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(records)

    # the same point through the CLI's own encode/decode gives the same bytes and PSNR
    src = image_folder / "0.png"
    rec = next(r for r in records if r["codec"] == "meanscale" and r["file"] == str(src) and r["point"] == 6)
    encode_file(src, tmp_path / "x.mcd", quality=6)
    decode_file(tmp_path / "x.mcd", tmp_path / "x.png")
    assert (tmp_path / "x.mcd").stat().st_size == rec["bytes"]
    assert metrics.psnr_rgb(read_image(src), read_image(tmp_path / "x.png")) == pytest.approx(rec["psnr_rgb"])

    # a rerun measures nothing new
    before = (out / "records.jsonl").read_text()
    code, _, _ = run_cli(
        capfd, "eval", image_folder, "--quality", "2,6", "--anchor", "jpeg,webp", "--out", out
    )
    assert code == 0
    assert (out / "records.jsonl").read_text() == before


def test_eval_parallel_jobs_and_compare(capfd, tmp_path, image_folder):
    first = tmp_path / "a"
    code, _, _ = run_cli(
        capfd, "eval", image_folder / "0.png", "--quality", "3", "--anchor", "none", "--out", first
    )
    assert code == 0
    second = tmp_path / "b"
    code, _, err = run_cli(
        capfd,
        "eval",
        image_folder,
        "--quality",
        "3,5",
        "--anchor",
        "jpeg",
        "--jobs",
        2,
        "--out",
        second,
        "--compare",
        first / "results.json",
    )
    assert code == 0, err
    assert len([r for r in json.loads((second / "results.json").read_text())["records"]]) == 2 * 2 + 2 * 10


def test_eval_refuses_unknown_codec(capfd, tmp_path, image_folder):
    code, _, err = run_cli(capfd, "eval", image_folder, "--codec", "nope", "--out", tmp_path / "x")
    assert code == 1 and "unknown codec" in err


def test_eval_rate_knob_must_match_the_codec_unit(capfd, tmp_path, image_folder):
    """--bitrate (kbit/s) on image codecs, or --quality on the audio codec, is a one-line error before
    any work, not a bitrate read as a quality level."""
    out = tmp_path / "ev"
    code, _, err = run_cli(capfd, "eval", image_folder, "--bitrate", "6", "--anchor", "none", "--out", out)
    assert code == 1 and "--bitrate" in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "records.jsonl").exists() or not (out / "records.jsonl").read_text().strip()
    code, _, err = run_cli(capfd, "eval", image_folder, "--codec", "rvq", "--quality", "3", "--out", out)
    assert code == 1 and "--quality" in err and len(err.strip().splitlines()) == 1, err


def test_anchor_roundtrips_keep_shapes():
    from fractions import Fraction

    from mcodec.evaluation.contenders import make_anchor

    image = random_image(3, 33, 47)
    for a in ("jpeg", "webp", "avif"):
        assert make_anchor(a).run(image, 50).decoded.shape == image.shape
    frames = random_image(3, 31, 45).expand(4, 3, 31, 45).contiguous()
    trial = make_anchor("x264").run((frames, Fraction(25)), 28)
    assert trial.decoded[0].shape == frames.shape and trial.bytes > 0
    with pytest.raises(ValueError, match="at least 64x64"):  # libx265 would abort the process
        make_anchor("x265").run((frames, Fraction(25)), 28)
    audio = torch.sin(torch.arange(8000) / 8000 * 6.28 * 300)[None].repeat(2, 1) * 0.5
    trial = make_anchor("opus").run((audio, 8000), 16)
    assert trial.decoded[0].shape == audio.shape


def test_eval_video_and_audio_run_their_anchors(capfd, tmp_path):
    """The same command measures video (hnerv, fitted per clip, and x264/x265) and audio (rvq with its
    shipped model, and Opus)."""
    from fractions import Fraction

    from mcodec.codec.media_io import write_audio, write_video

    data = tmp_path / "media"
    data.mkdir()
    frames = random_image(3, 64, 80).expand(5, 3, 64, 80).contiguous()
    write_video(data / "clip.mkv", frames, Fraction(10))
    t = torch.arange(16000) / 16000
    write_audio(data / "tone.wav", (0.3 * torch.sin(2 * torch.pi * 220 * t))[None], 16000)
    out = tmp_path / "ev"
    # --quality goes to the quality-level codec (hnerv), --bitrate to the kbit/s one (rvq)
    args = ["eval", data, "--out", out, "--quality", "1", "--bitrate", "3", "--preset", "fast"]
    code, _, err = run_cli(capfd, *args)
    assert code == 0, err
    records = json.loads((out / "results.json").read_text())["records"]
    assert {r["codec"] for r in records} == {"hnerv", "x264", "x265", "opus", "rvq"}
    assert all(r["bytes"] > 0 for r in records)
    rvq = [r for r in records if r["codec"] == "rvq"]
    assert len(rvq) == 1 and rvq[0]["point"] == 3
    assert rvq[0]["kbps"] == pytest.approx(8 * rvq[0]["bytes"] / 1000, rel=1e-6)
    assert [r["point"] for r in records if r["codec"] == "hnerv"] == [1]
    assert (out / "rd-video.png").exists() and (out / "rd-audio.png").exists()


def test_eval_reports_a_movies_video_and_sound_apart(capfd, tmp_path):
    from fractions import Fraction

    from mcodec.codec.media_io import AudioStream, write_video

    data = tmp_path / "media"
    data.mkdir()
    frames = random_image(3, 64, 80).expand(5, 3, 64, 80).contiguous()
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * torch.arange(8000) / 16000)[None]
    write_video(data / "movie.mkv", frames, Fraction(10), sound=AudioStream.from_tensor(tone, 16000))
    out = tmp_path / "ev"
    args = [
        "eval",
        data,
        "--out",
        out,
        "--quality",
        "1",
        "--bitrate",
        "3",
        "--preset",
        "fast",
        "--anchor",
        "none",
    ]
    code, _, err = run_cli(capfd, *args)
    assert code == 0, err
    records = json.loads((out / "results.json").read_text())["records"]
    assert sorted((r["media"], r["codec"]) for r in records) == [("audio", "rvq"), ("video", "hnerv")]
    assert {Path(r["file"]).name for r in records} == {"movie.mkv"}
    assert (out / "rd-video.png").exists() and (out / "rd-audio.png").exists()


def test_eval_weights_measure_that_model(capfd, tmp_path, image_folder, tiny_weights):
    """--weights CODEC=FILE evaluates a trained model file: its bytes are that file's, not the shipped
    model's; a malformed pair is a usage error."""
    out = tmp_path / "ev"
    args = ["eval", image_folder, "--codec", "factorized", "--quality", "2", "--anchor", "none", "--out", out]
    code, _, err = run_cli(capfd, *args, "--weights", f"factorized={tiny_weights}")
    assert code == 0, err
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    record = next(r for r in records if "bytes" in r)
    encode_file(record["file"], tmp_path / "x.mcd", "factorized", 2.0, weights=tiny_weights)
    assert record["bytes"] == (tmp_path / "x.mcd").stat().st_size
    encode_file(record["file"], tmp_path / "y.mcd", "factorized", 2.0)  # the shipped model differs
    assert record["bytes"] != (tmp_path / "y.mcd").stat().st_size
    assert run_cli(capfd, *args, "--weights", "factorized")[0] == 2


def test_eval_resumes_only_what_was_measured_with_the_same_preset_and_weights(
    capfd, tmp_path, image_folder, tiny_weights
):
    """A rerun into the same --out with another --preset or --weights measures anew (its own curve in the
    report); with the same settings it measures nothing; records written before records carried their
    settings count as the default preset and the shipped weights."""
    out = tmp_path / "ev"
    args = ["eval", image_folder / "0.png", "--quality", "2", "--anchor", "none", "--out", out]

    def records():
        return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]

    assert run_cli(capfd, *args, "--codec", "meanscale")[0] == 0
    (first,) = records()
    assert first["preset"] == "fast" and first["weights"] is None  # meanscale's default preset
    assert run_cli(capfd, *args, "--codec", "meanscale", "--preset", "medium")[0] == 0
    assert [(r["preset"], r["weights"]) for r in records()] == [("fast", None), ("medium", None)]
    curves = json.loads((out / "results.json").read_text())["curves"]["image"]
    assert sorted(c["name"] for c in curves) == ["meanscale", "meanscale (preset medium)"]
    for preset in ([], ["--preset", "fast"], ["--preset", "medium"]):  # measured already: nothing new
        assert run_cli(capfd, *args, "--codec", "meanscale", *preset)[0] == 0
        assert len(records()) == 2

    assert run_cli(capfd, *args, "--codec", "factorized", "--weights", f"factorized={tiny_weights}")[0] == 0
    assert run_cli(capfd, *args, "--codec", "factorized")[0] == 0
    tiny, shipped = records()[2:]
    assert tiny["weights"] == str(tiny_weights.resolve()) and shipped["weights"] is None
    assert tiny["preset"] is None and tiny["bytes"] != shipped["bytes"]  # factorized has no presets
    assert len(records()) == 4

    # records.jsonl of an earlier version: no preset or weights fields; they still resume
    old = [{k: v for k, v in r.items() if k not in ("preset", "weights")} for r in (first, shipped)]
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    assert run_cli(capfd, *args, "--codec", "meanscale,factorized")[0] == 0
    assert len(records()) == 2


def test_a_losslessly_coded_file_does_not_make_the_mean_psnr_inf():
    from mcodec.evaluation.report import PSNR_CEILING_DB, curves

    def record(file, psnr):
        return {
            "media": "image",
            "codec": "webp",
            "kind": "anchor",
            "point": 1,
            "file": file,
            "bpp": 1.0,
            "encode_s": 0.1,
            "decode_s": 0.1,
            "psnr_rgb": psnr,
            "psnr_y": psnr,
            "ms_ssim": 1.0,
        }

    curve = curves([record("black.png", float("inf")), record("photo.png", 30.0)])["image"]["webp"]
    assert curve["psnr_rgb"] == [pytest.approx((PSNR_CEILING_DB + 30.0) / 2)]
    assert curve["ms_ssim"] == [1.0]


def test_file_by_file_bd_rates_weigh_every_file_alike():
    """A codec 20% smaller than the anchor on one file and 25% larger on the other: -20 and +25 file by
    file, mean +2.5, better on 1 of 2, whatever the files' sizes; a file whose curves do not overlap is
    named with NaN and left out of the mean."""
    from mcodec.evaluation.report import per_file_bd_rates, per_file_table

    rates, psnrs = [0.1, 0.2, 0.4], [30.0, 33.0, 36.0]

    def records(codec, kind, file, scale, offset=0.0):
        return [
            {"media": "image", "codec": codec, "kind": kind, "point": i, "file": file, "bpp": r * scale,
             "psnr_rgb": p + offset, "psnr_y": p, "ms_ssim": 0.9}
            for i, (r, p) in enumerate(zip(rates, psnrs, strict=True))
        ]  # fmt: skip

    recs = (
        records("jpeg", "anchor", "small.png", 1.0)
        + records("jpeg", "anchor", "large.png", 50.0)
        + records("jpeg", "anchor", "apart.png", 1.0)
        + records("meanscale", "codec", "small.png", 0.8)
        + records("meanscale", "codec", "large.png", 50.0 * 1.25)
        + records("meanscale", "codec", "apart.png", 1.0, offset=20.0)
    )
    (row,) = per_file_bd_rates(recs)["image"]
    assert (row["codec"], row["anchor"], row["metric"]) == ("meanscale", "jpeg", "psnr_rgb")
    assert row["files"]["small.png"] == pytest.approx(-20.0)
    assert row["files"]["large.png"] == pytest.approx(25.0)
    assert math.isnan(row["files"]["apart.png"])
    assert row["mean"] == pytest.approx(2.5) and (row["better"], row["compared"]) == (1, 2)
    table = per_file_table([row])
    for line in (
        "| small.png | -20.0 |",
        "| apart.png | - |",
        "| mean of files | 2.5 |",
        "| files better | 1 of 2 |",
    ):
        assert line in table, table
