"""Smoke runs of the maintained benchmarks in bench/: each runs as a script, as a person would run it, on
tiny inputs (the package's samples, or media made here), and its table or JSON must hold real numbers.

One thread per run (OMP_NUM_THREADS=1): the figures are not the point, and two threads on a busy 2-core
machine made the video fit three times slower.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "api" / "samples"
IMAGE = SAMPLES / "fruits_400x300.png"
VIDEO = SAMPLES / "tree_128x96.mkv"
SPEECH = SAMPLES / "goforward_16k.flac"


def run_bench(script: str, *args) -> str:
    """Run bench/``script`` from the repository root; returns its stdout, fails with its stderr's tail."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "bench" / script), *map(str, args)]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{script} exited {r.returncode}:\n{r.stderr[-3000:]}"
    return r.stdout


def finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def table_rows(stdout: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows of ``stdout`` whose first cell is ``first_cell``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in stdout.splitlines()]
    return [r for r in rows if r[0] == first_cell]


def test_entropy_bench(tmp_path):
    out = tmp_path / "entropy.json"
    stdout = run_bench("entropy_bench.py", "--n", 3000, "--repeat", 1, "--json", out)
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows] == ["categorical-256", "gaussian-indexed-64", "factorized-192ch"]
    for r in rows:
        assert r["case"] in stdout
        assert r["symbols"] > 2000 and r["bytes"] > 0
        assert finite(r["encode_msym_s"], r["decode_msym_s"]) and r["encode_msym_s"] > 0
        # rANS on a few thousand symbols: within a few percent of the tables' information content
        assert 0 <= r["overhead_pct"] < 5, r


def test_image_rd(tmp_path):
    data = tmp_path / "images"
    data.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(IMAGE, data / name)
    out = tmp_path / "out"
    stdout = run_bench(
        "image_rd.py",
        *("--data", data, "--files", 1, "--anchor", "jpeg", "--out", out),
        *("--quality", 1, "--quality", 4, "--quality", 8, "--time-size", "128x96"),
    )
    results = json.loads((out / "results.json").read_text())
    assert {Path(r["file"]).name for r in results["records"]} == {"a.png"}  # --files 1
    curves = {c["name"]: c["results"] for c in results["curves"]["image"]}
    assert len(curves["factorized"]["bpp"]) == 3 and len(curves["jpeg"]["bpp"]) == 10
    for c in curves.values():
        assert finite(*c["bpp"], *c["psnr-rgb"], *c["ms-ssim-rgb"])
    (bd,) = table_rows(stdout, "factorized")[:1]
    assert bd[1] == "jpeg" and bd[2].endswith("%") and finite(float(bd[2].rstrip("%")))
    (timing,) = [r for r in table_rows(stdout, "factorized") if len(r) == 3]
    assert float(timing[1]) > 0 and float(timing[2]) > 0
    assert "encode 128x96 (s)" in stdout


def test_video_rd(tmp_path):
    out = tmp_path / "video.json"
    stdout = run_bench(
        "video_rd.py", "--clip", VIDEO, "--frames", 1, "--quality", 1, "--crf", 30, "--json", out
    )
    results = json.loads(out.read_text())
    (row,) = results["rows"]
    assert row["codec"] == "hnerv" and row["preset"] == "fast"
    assert "bd" not in results or not results["bd"]  # one quality: no curve
    assert row["bpp"] > 0 and 10 < row["psnr_rgb"] < 60 and 0 < row["ms_ssim"] <= 1
    assert row["fit_s"] > 0 and row["decode_fps"] > 0
    assert set(results["anchors"]) == {"x264", "x265"}
    for curve in results["anchors"].values():
        ((bpp, psnr),) = curve  # one CRF: one point
        assert bpp > 0 and 10 < psnr < 60
    assert len(table_rows(stdout, "hnerv")) == 1


def test_video_rd_curve_has_bd_figures(tmp_path):
    """Two qualities (rate-aware) make a curve: BD-rate and BD-PSNR against each anchor, or NaN and why."""
    out = tmp_path / "video.json"
    stdout = run_bench(
        "video_rd.py",
        *("--clip", VIDEO, "--frames", 1, "--quality", 1, "--quality", 2, "--rate-aware", "on"),
        *("--crf", 30, "--crf", 45, "--anchor", "x264", "--json", out, "--plot", tmp_path / "rd.png"),
    )
    assert (tmp_path / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads(out.read_text())
    assert [(r["quality"], r["rate_aware"]) for r in results["rows"]] == [(1, "on"), (2, "on")]
    (figures,) = results["bd"]["hnerv"].values()
    assert set(figures) >= {"bd_rate", "bd_psnr"}
    assert "why" in figures or (math.isfinite(figures["bd_rate"]) and math.isfinite(figures["bd_psnr"]))
    assert "hnerv vs x264: BD-rate" in stdout


def test_video_decode_speed(tmp_path):
    out = tmp_path / "speed.json"
    stdout = run_bench(
        "video_decode_speed.py",
        *("--width", 64, "--height", 48, "--frames", 4, "--repeat", 1, "--json", out),
        *("--codec", "hnerv", "--codec", "nerv", "--quality", 1, "--quality", 3),
    )
    rows = json.loads(out.read_text())
    assert [(r["codec"], r["quality"]) for r in rows] == [
        ("hnerv", 1),
        ("hnerv", 3),
        ("nerv", 1),
        ("nerv", 3),
    ]
    for r in rows:
        assert r["params"] > 0 and finite(r["fps"]) and r["fps"] > 0
    assert len(table_rows(stdout, "hnerv")) == 2 and len(table_rows(stdout, "nerv")) == 2


def test_audio_rd(tmp_path):
    out = tmp_path / "out"
    stdout = run_bench(
        "audio_rd.py",
        *("--speech", SPEECH, "--music", SPEECH, "--out", out, "--bitrate", 6, "--rtf-seconds", 3),
    )
    for sub, metrics in (
        ("speech", ("mel_distance", "si_sdr", "pesq_wb", "stoi")),
        ("music", ("mel_distance",)),
    ):
        results = json.loads((out / sub / "results.json").read_text())
        curves = {c["name"]: c["results"] for c in results["curves"]["audio"]}
        assert set(curves) == {"rvq", "opus"}
        assert len(curves["rvq"]["kbps"]) == 1 and 5 < curves["rvq"]["kbps"][0] < 7  # 6 kbit/s, within 10%
        for c in curves.values():
            assert finite(*c["kbps"], *(v for m in metrics for v in c[m.replace("_", "-")]))
    rvq = table_rows(stdout, "rvq")
    assert len(rvq) == 2 and all(r[1] == "6" for r in rvq)  # speech and music at 6 kbit/s
    (rtf,) = table_rows(stdout, "6")
    assert all(float(v) > 0 for v in rtf[1:])


def test_audio_ab_counts_the_files_each_model_wins(tmp_path):
    def record(i, codec, point, pesq, stoi, mel):
        return {"file": f"/media/clip{i}.wav", "codec": codec, "point": point, "kbps": point + 0.2,
                "pesq_wb": pesq, "stoi": stoi, "mel_distance": mel}  # fmt: skip

    def rd_out(name, rvq_pesq):  # an audio_rd.py --out folder: rvq and Opus 6/8 on three files
        rows = []
        for i, pesq in enumerate(rvq_pesq):
            rows.append(record(i, "rvq", 6.0, pesq, 0.8, 0.5 - pesq / 10))
            rows += [record(i, "opus", point, p, 0.9, 0.9) for point, p in ((6.0, 2.0), (8.0, 2.8))]
        (tmp_path / name / "speech").mkdir(parents=True)
        (tmp_path / name / "speech" / "records.jsonl").write_text("\n".join(map(json.dumps, rows)))
        return tmp_path / name

    old, new = rd_out("old", [2.0, 2.1, 2.6]), rd_out("new", [2.2, 2.3, 2.0])
    stdout = run_bench("audio_ab.py", old, new)
    (row,) = table_rows(stdout, str(new))
    assert row[1] == "2.167 (2.200), 2/3 better"  # mean down (one file fell far), median up, 2 files better
    assert row[2].endswith("0/3 better") and row[3].endswith("2/3 better")  # STOI tied; mel follows PESQ
    assert table_rows(stdout, "Opus 6 (first run's)")[0][1] == "2.000 (2.000)"
    assert table_rows(stdout, "Opus 8 (first run's)")[0][1] == "2.800 (2.800)"


def test_audio_spectrograms(tmp_path):
    out = tmp_path / "spec.png"
    model = REPO / "codec" / "models" / "rvq.safetensors"
    stdout = run_bench(
        "audio_spectrograms.py",
        *(SPEECH, "--weights", model, "--opus", 6, "--seconds", 1, "--out", out),
        *("--postfilter", 0, "--postfilter", 2),  # a column per strength
        *("--high-band", 1, "--rate", 32000),  # one setting: no more columns; bands to 16 kHz
    )
    assert "1 clips x 4 columns" in stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_memory(tmp_path):
    out = tmp_path / "memory.json"
    run_bench("audio_memory.py", "--minutes", 0.05, "--rate", 16000, "--channels", 1, "--json", out)
    (row,) = json.loads(out.read_text())
    assert row["minutes"] == 0.05
    assert row["encode_mb"] > 10 and row["decode_mb"] > 10  # a real child's peak, in MB
    assert row["encode_s"] > 0 and row["decode_s"] > 0


def test_image_memory(tmp_path):
    """A photo 2 tiles wide (1100 pixels: the transforms run tile by tile) through encode and decode."""
    out = tmp_path / "memory.json"
    run_bench("image_memory.py", "--sizes", "1100x200", "--source", IMAGE, "--quality", 1, "--json", out)
    (row,) = json.loads(out.read_text())
    assert (row["width"], row["height"]) == (1100, 200) and row["megapixels"] == 0.22
    assert row["encode_mb"] > 10 and row["decode_mb"] > 10  # a real child's peak, in MB
    assert finite(row["encode_s_per_mp"], row["decode_s_per_mp"], row["bpp"]) and row["bpp"] > 0


def test_video_memory(tmp_path):
    out = tmp_path / "memory.json"
    stdout = run_bench(
        "video_memory.py", *("--frames", 3, 5, "--size", "48x32", "--epochs", 0.5, "--json", out)
    )
    rows = json.loads(out.read_text())
    assert [(r["frames"], r["width"], r["height"]) for r in rows] == [(3, 48, 32), (5, 48, 32)]
    for r in rows:
        assert r["encode_mb"] > 10 and r["decode_mb"] > 10  # a real child's peak, in MB
        assert r["encode_s"] > 0 and r["decode_s"] > 0
    assert "5 frames against 3: peak memory" in stdout


def test_audio_bands_from_checkpoint(tmp_path):
    """A training checkpoint of the shipped weights: the benchmark reads it (and its step) back."""
    from mcodec.codec.audio.codec import RVQAudioCodec
    from mcodec.codec.training.checkpoint import save_checkpoint

    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, RVQAudioCodec().model, {}, 7)
    out = tmp_path / "bands.json"
    stdout = run_bench(
        "audio_bands.py",
        "--checkpoint",
        checkpoint,
        "--speech",
        SAMPLES,
        "--files",
        SPEECH.name,
        "--json",
        out,
    )
    assert f"{checkpoint}: step 7" in stdout
    results = json.loads(out.read_text())
    assert set(results["pesq_wb"]) == {"unquantized", "8 stages"}
    assert all(1 < v < 4.7 for v in results["pesq_wb"].values())
    assert [b["low_hz"] for b in results["bands"]] == [0, 500, 1000, 2000, 4000, 8000]
    assert all(finite(b["energy_db"], b["snr_db"]) for b in results["bands"])


def test_movie_roundtrip(tmp_path):
    out = tmp_path / "movie.json"
    args = ["--seconds", 0.5, "--size", "64x48", "--fps", 10, "--photo", IMAGE, "--music", SPEECH]
    run_bench("movie_roundtrip.py", *args, "--encode-args", "--preset fast --quality 1", "--json", out)
    r = json.loads(out.read_text())
    for suffix, codecs in ((".mp4", ["h264", "aac"]), (".mkv", ["ffv1", "flac"])):
        video, audio = r[f"tracks{suffix}"]
        assert [video["codec"], audio["codec"]] == codecs
        assert video["frames"] == r["source_frames"] == 5 and video["frames_on_time"]
        assert abs(audio["seconds"] - video["seconds"]) <= 1 / 10  # within one frame
    assert finite(r["video_psnr_rgb"], r["sound.mkv"]["mel_distance"], r["sound_coded_alone"]["mel_distance"])
    # the movie's sound is the sound coded alone (FLAC adds nothing)
    assert abs(r["sound.mkv"]["mel_distance"] - r["sound_coded_alone"]["mel_distance"]) < 0.05


def test_audio_codebooks(tmp_path):
    out = tmp_path / "codebooks.json"
    stdout = run_bench("audio_codebooks.py", SPEECH, "--preset", "fast", "--json", out)
    r = json.loads(out.read_text())
    assert r["files"] == 1 and len(r["stages"]) >= 8 and "| 1 |" in stdout
    for s in r["stages"]:
        assert 1 <= s["used"] <= s["size"] and 1 <= s["perplexity"] <= s["used"] + 1e-6
        assert 0 < s["entropy_bits"] <= s["uniform_bits"] and s["prior_bits"] > 0


def test_motion_clips(tmp_path):
    """A pan made from a photo is the photo seen through a moving box: frame 1 is frame 0 shifted by the
    box's step (the best integer shift is the expected one, and aligns them far better than none); a
    zoom's and an object's frames change too. The clips read back at their size and rate."""
    import torch

    from mcodec.codec.media_io import read_video

    out = tmp_path / "clips"
    for motion in ("pan", "zoom", "object"):
        run_bench(
            "data/motion_clips.py",
            out,
            "--photo",
            IMAGE,
            "--motion",
            motion,
            "--frames",
            9,
            "--size",
            "64x48",
        )
    pan, rate = read_video(out / "pan_fruits_400x300.mkv")
    assert pan.shape == (9, 3, 48, 64) and rate == 24
    a, b = pan[0].float(), pan[1].float()

    def error(dx: int, dy: int) -> float:  # frame 1 at (x, y) against frame 0 at (x + dx, y + dy)
        return (
            b[:, max(0, -dy) : 48 - max(0, dy), : 64 - dx]
            .sub(a[:, max(0, dy) : 48 - max(0, -dy), dx:])
            .abs()
            .mean()
            .item()
        )

    # 400x300 photo at 2 photo px per output px: a 128x96 box; per frame it moves 272/8 = 34 photo px right
    # (17 output px) and 204 x 0.25 x sin(pi/4) = 36 photo px down (18 output px)
    best = min(((dx, dy) for dx in range(0, 30) for dy in range(-30, 31)), key=lambda d: error(*d))
    assert abs(best[0] - 17) <= 1 and abs(best[1] - 18) <= 1, best
    assert error(*best) < 0.25 * error(0, 0)
    for motion in ("zoom", "object"):
        clip, _ = read_video(out / f"{motion}_fruits_400x300.mkv")
        assert clip.shape == (9, 3, 48, 64) and not torch.equal(clip[0], clip[8])


def test_audio_sets_keep_the_held_back_voices_out_of_training(tmp_path):
    """The training folder links every group (a klettres language and the asterisk voice as folders of
    file links, which rglob walks); the held-back files are the named speech files, 2 syllables of each
    held-out language and 6 prompts of the held-out voice, none of them under train/; heldback_wide, a
    superset, takes up to 8 syllables and 24 prompts."""
    media = tmp_path / "media"
    files = ["music/a.flac", "music/b.flac", "speech/numbers.wav", "speech/cards_001.wav"]
    files += [
        f"speech_klettres/{lang}/syllab/{i:02d}.ogg" for lang in ("de", "he", "hu", "nl") for i in range(5)
    ]
    voices = {"en_US_f_Allison": 3, "fr_CA_f_June": 9}
    files += [f"speech_asterisk/{v}/p{i}.g722" for v, n in voices.items() for i in range(n)]
    for f in files:
        path = media / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * (24000 if "June" in f else 10))
    (media / "speech_asterisk/fr_CA_f_June/beep.g722").write_bytes(b"\0" * 100)  # too short: not a prompt
    run_bench("data/audio_sets.py", tmp_path / "sets", "--media", media)
    train = sorted(
        str(p.relative_to(tmp_path / "sets/train")) for p in (tmp_path / "sets/train").rglob("*.*")
    )
    held = sorted(p.name for p in (tmp_path / "sets/heldback").iterdir())
    assert train == [
        "asterisk/en_US_f_Allison/p0.g722",
        "asterisk/en_US_f_Allison/p1.g722",
        "asterisk/en_US_f_Allison/p2.g722",
        *[f"klettres/de/syllab/{i:02d}.ogg" for i in range(5)],
        "music/a.flac",
        "music/b.flac",
        "speech/cards_001.wav",
    ]
    assert held == sorted(
        ["numbers.wav", "he_00.ogg", "he_02.ogg", "hu_00.ogg", "hu_02.ogg", "nl_00.ogg", "nl_02.ogg"]
        + [f"fr_CA_f_June_p{i}.g722" for i in (0, 1, 3, 4, 6, 7)]
    )
    wide = sorted(p.name for p in (tmp_path / "sets/heldback_wide").iterdir())  # every syllable and prompt
    assert set(held) < set(wide) and len(wide) == 1 + 3 * 5 + 9


def test_image_ceiling(tmp_path):
    """Finer quantization than the top quality costs more bits and never draws the picture worse by
    much; a latent fitted to the picture draws it at least as well as the analysis's at the top quality."""
    out = tmp_path / "ceiling.json"
    stdout = run_bench(
        "image_ceiling.py", IMAGE, "--crop", 128, "--quality", 4, 8, 11, "--free-steps", 3, "--json", out
    )
    r = json.loads(out.read_text())
    assert r["m"] > 0 and "fruits_400x300.png:" in stdout
    (image,) = r["images"]
    q4, q8, q11 = image["points"]
    assert q4["bpp_estimated"] < q8["bpp_estimated"] < q11["bpp_estimated"]
    assert q4["psnr_rgb"] < q8["psnr_rgb"] and q11["psnr_rgb"] > q8["psnr_rgb"] - 0.5
    assert image["free_latent_psnr"] >= q11["psnr_rgb"] - 0.05


def test_image_sets_keep_the_held_back_photos_out_of_training(tmp_path):
    """train41 is every image but the 8 held-back lomiri photos; shared33 the images that are not lomiri's;
    heldback the 8, in neither of the others."""
    media = tmp_path / "media"
    media.mkdir()
    for name in ("baboon.png", "fruits.png", "lomiri_bridge.png", "lomiri_umang.png", "lomiri_wine.png"):
        (media / name).write_bytes(b"\0")
    run_bench("data/image_sets.py", tmp_path / "sets", "--media", media)

    def names_in(folder):
        return sorted(p.name for p in (tmp_path / "sets" / folder).iterdir())

    assert names_in("train41") == ["baboon.png", "fruits.png", "lomiri_wine.png"]
    assert names_in("shared33") == ["baboon.png", "fruits.png"]
    assert names_in("heldback") == ["lomiri_bridge.png", "lomiri_umang.png"]
    assert (tmp_path / "sets/heldback/lomiri_bridge.png").resolve() == (media / "lomiri_bridge.png").resolve()


def test_image_ab(tmp_path):
    """The base against itself is exactly 0%; a copy whose synthesis is disturbed draws worse at every
    quality and needs more bits for the same PSNR; the side share is the ZLAT chunk's, a small part. At
    --preset fast medium, the refined encoding needs fewer bits than the plain one."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    base = REPO / "codec" / "models" / "meanscale.safetensors"
    worse = tmp_path / "worse.safetensors"
    with safe_open(base, "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    w = tensors["net.g_s.0.weight"]
    tensors["net.g_s.0.weight"] = w + 0.05 * w.float().std() * torch.randn(
        w.shape, generator=torch.Generator().manual_seed(0)
    ).to(w.dtype)
    save_file(tensors, worse, meta)
    out = tmp_path / "ab.json"
    stdout = run_bench(
        "image_ab.py", base, base, worse, "--data", IMAGE, "--crop", 128, "--quality", 1, 4, 8, "--json", out
    )
    r = json.loads(out.read_text())
    same, disturbed = r["models"][1:]
    assert r["pictures"] == ["fruits_400x300"] and same["mean_bd_rate"] == 0.0
    assert disturbed["mean_bd_rate"] > 1.0, disturbed["bd_rate"]
    a, b = (m["points"]["fruits_400x300"] for m in (r["models"][0], disturbed))
    assert all(p["psnr"] > q["psnr"] for p, q in zip(a, b, strict=True))
    assert 0 < r["models"][0]["side_share"] < 0.2
    assert len(table_rows(stdout, str(worse))) == 1 and "per picture: fruits_400x300" in stdout
    # one file at two presets: the base is fast, and medium's latent refinement costs fewer bits
    stdout = run_bench(
        "image_ab.py",
        base,
        "--preset",
        "fast",
        "medium",
        "--data",
        IMAGE,
        "--crop",
        128,
        "--quality",
        1,
        4,
        8,
    )
    (medium,) = table_rows(stdout, f"{base} medium")
    assert float(medium[-1].rstrip("%")) < 0, medium


def test_image_ab_compares_the_fronts_of_curves():
    """A point that costs more bytes than a better-looking one is left out of the BD-rate and counted; the
    base against itself stays 0%."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("image_ab", REPO / "bench" / "image_ab.py")
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    base = [{"bpp": b, "psnr": d} for b, d in ((0.1, 30.0), (0.2, 33.0), (0.4, 36.0))]
    test = [{"bpp": b, "psnr": d} for b, d in ((0.09, 30.5), (0.085, 31.0), (0.18, 33.5), (0.35, 36.5))]
    bd, dropped = ab.picture_bd(base, test)
    assert dropped == 1 and bd < -10
    assert ab.picture_bd(base, base) == (0.0, 0)
