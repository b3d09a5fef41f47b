"""report.html: a tiny eval of all three media writes a page that opens offline, whose every reference
resolves, whose tables have rows, whose showcase holds the run's real decoded outputs, which is re-written
while the run goes on, and (where Chromium is installed) renders in a browser."""

from __future__ import annotations

import base64
import binascii
import json
import subprocess
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image

from mcodec.cli.main import main
from mcodec.codec.media_io import read_audio, read_image, read_video, write_audio, write_video
from mcodec.evaluation import html_report, showcase

SAMPLES = Path(__file__).resolve().parents[1] / "api" / "samples"
CHROMIUM = Path("/usr/bin/chromium")


class Page(HTMLParser):
    """The parts of a page the checks need: references, tables with their row counts, ids, tags."""

    def __init__(self, text: str):
        super().__init__()
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.tables: list[tuple[str, int]] = []  # (class, rows)
        self.ids: set[str] = set()
        self.tags: dict[str, int] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("src", "href"):
            if a.get(key):
                self.refs.append((tag, a[key]))
        if tag == "table":
            self.tables.append((a.get("class", ""), 0))
        if tag == "tr" and self.tables:
            cls, rows = self.tables[-1]
            self.tables[-1] = (cls, rows + 1)


def run(capfd, *args):
    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    out, err = capfd.readouterr()
    return e.value.code, out, err


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory) -> Path:
    """Two small images, a short small clip and a short speech excerpt, cut from api/samples."""
    folder = tmp_path_factory.mktemp("media")
    with Image.open(SAMPLES / "fruits_400x300.png") as im:
        im.convert("RGB").crop((120, 60, 216, 132)).save(folder / "a.png")
        im.convert("RGB").crop((0, 0, 80, 64)).save(folder / "b.png")
    frames, _ = read_video(SAMPLES / "tree_128x96.mkv", max_frames=6)
    write_video(folder / "clip.mkv", frames[:, :, 16:64, 32:96].contiguous(), Fraction(10))
    audio, rate = read_audio(SAMPLES / "goforward_16k.flac")
    write_audio(folder / "speech.wav", audio[:, : int(1.2 * rate)], rate)
    return folder


@pytest.fixture(scope="module")
def report(media_folder, tiny_weights, tmp_path_factory) -> Path:
    """One eval of every medium: our codecs (tiny image model) and one anchor each."""
    out = tmp_path_factory.mktemp("ev") / "run"
    args = ["eval", media_folder, "--codec", "factorized,hnerv,rvq", "--quality", "1,3", "--bitrate", "1.5,3"]
    args += ["--anchor", "jpeg,x264,opus", "--preset", "fast", "--out", out]
    args += ["--weights", f"factorized={tiny_weights}"]
    with pytest.raises(SystemExit) as e:
        main(list(map(str, args)))
    assert e.value.code == 0
    return out


def check_references(out: Path, page: Page) -> None:
    """Every reference is in-page, a local file that exists, or a data URI that decodes: none leaves."""
    assert page.refs
    for tag, url in page.refs:
        assert not url.startswith(("http:", "https:", "//")), f"{tag} loads {url} from the network"
        if url.startswith("#"):
            assert url[1:] in page.ids, url
        elif url.startswith("data:"):
            header, _, payload = url.partition(",")
            assert header.endswith(";base64"), header
            try:
                assert base64.b64decode(payload, validate=True)
            except binascii.Error as e:
                raise AssertionError(f"{header}: {e}") from None
        else:
            path = out / unquote(url)
            assert path.is_file() and path.stat().st_size > 0, url
            assert out in path.resolve().parents, f"{url} is outside the eval folder"


def test_page_holds_every_section_and_resolves_offline(report):
    text = (report / "report.html").read_text()
    page = Page(text)
    check_references(report, page)
    for media in ("image", "video", "audio"):
        for part in ("", "-curves", "-means", "-bd-rate", "-showcase", "-records"):
            assert f"{media}{part}" in page.ids, f"{media}{part}"
    assert "reproduce" in page.ids
    assert page.tags["svg"] == 3 + 3 + 4  # one chart per metric
    tables = {cls: [] for cls, _ in page.tables}
    for cls, rows in page.tables:
        assert rows >= 2, f"table {cls!r} has no rows"
        tables[cls].append(rows)
    records = json.loads((report / "results.json").read_text())["records"]
    for media in ("image", "video", "audio"):
        assert f"{media}-records" in page.ids
    assert sum(tables["records"]) - len(tables["records"]) == len(records)  # header + one row per point
    assert len(tables["bd"]) == 3  # one against the anchor per medium
    assert page.tags["audio"] == 2 * 3  # at rvq 1.5 and 3 kbit/s: original, rvq, opus
    assert "mcodec eval " in text and "--weights factorized=" in text and "wall time" in text
    assert "finished:" in text and "running:" not in text


def test_showcase_shows_the_decoded_outputs_of_the_run(report, media_folder, tiny_weights, tmp_path):
    """The kept crop of the point shown (quality 1: the middle of two) is the decoded image's crop, bit for
    bit; the audio and video views of the points shown exist and the page shows them."""
    from mcodec import decode_file, encode_file

    src = media_folder / "a.png"
    encode_file(src, tmp_path / "a.mcd", "factorized", 1.0, weights=tiny_weights)
    decode_file(tmp_path / "a.mcd", tmp_path / "a_dec.png", weights=tiny_weights)
    original = read_image(src)
    top, left, h, w = showcase.crop_box(original)
    kept_rec, kept_orig = (
        showcase.paths(report, src, "image", c, 1.0)[0] for c in ("factorized", "original")
    )
    decoded = read_image(tmp_path / "a_dec.png")
    assert torch.equal(read_image(kept_rec), decoded[:, top : top + h, left : left + w])
    assert torch.equal(read_image(kept_orig), original[:, top : top + h, left : left + w])
    text = (report / "report.html").read_text()
    assert showcase.paths(report, src, "image", "factorized", 1.0)[0].relative_to(report).as_posix() in text

    clip, speech = media_folder / "clip.mkv", media_folder / "speech.wav"
    for p in showcase.paths(report, clip, "video", "hnerv", 1.0) + showcase.paths(
        report, speech, "audio", "rvq", 3.0
    ):
        assert p.is_file() and p.relative_to(report).as_posix() in text, p
    kept, rate = read_audio(showcase.paths(report, speech, "audio", "original")[0])
    ref, ref_rate = read_audio(speech)
    assert rate == ref_rate and kept.shape == ref.shape and (kept - ref).abs().max() < 1e-3
    strip = read_image(showcase.paths(report, clip, "video", "original")[1])
    assert strip.shape[1] == 48 and strip.shape[2] == 6 * 64 + 5 * 2  # six frames, 2-pixel gaps


def test_page_is_rewritten_while_the_run_goes_on(capfd, media_folder, tmp_path, monkeypatch, tiny_weights):
    """Each finished point re-writes the page (here without the pause between re-writes): a reader sees
    the points so far; --compare puts the earlier run on the same axes with the BD-rate between runs."""
    first = tmp_path / "first"
    args = [
        "eval",
        media_folder / "a.png",
        "--codec",
        "factorized",
        "--weights",
        f"factorized={tiny_weights}",
    ]
    assert run(capfd, *args, "--quality", "2,5,8", "--anchor", "none", "--out", first)[0] == 0

    seen = []
    update = html_report.LivePage.update

    def spy(self, records, done, total):
        update(self, records, done, total)
        seen.append((done, total, (self.out / "report.html").read_text()))

    monkeypatch.setattr(html_report, "REFRESH_S", 0.0)
    monkeypatch.setattr(html_report.LivePage, "update", spy)
    second = tmp_path / "second"
    code, _, err = run(
        capfd,
        *args,
        "--quality",
        "3,6",
        "--anchor",
        "none",
        "--out",
        second,
        "--compare",
        first / "results.json",
    )
    assert code == 0, err
    assert [(d, t) for d, t, _ in seen] == [(1, 2), (2, 2)]
    assert "running: 1 of 2 points" in seen[0][2] and 'http-equiv="refresh"' in seen[0][2]
    final = (second / "report.html").read_text()
    assert 'http-equiv="refresh"' not in final
    page = Page(final)
    check_references(second, page)
    assert "image-compare" in page.ids and "factorized (weights tiny.safetensors) (first)" in final
    bd = [rows for cls, rows in page.tables if cls == "bd"]
    assert bd == [2]  # header + factorized against the first run's factorized


def test_chart_axes_and_empty_chart():
    from mcodec.evaluation.svg_chart import Series, line_chart, ticks

    assert ticks(0.12, 0.93) == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert ticks(27.3, 39.8) == pytest.approx([28, 30, 32, 34, 36, 38])
    svg = line_chart([Series("x", [1.0, 2.0], [float("nan"), 3.0])], "bpp", "dB", "t")
    assert svg.count("<circle") == 1 and "<polyline" not in svg  # a NaN point is left out
    assert "no data yet" in line_chart([Series("x", [], [])], "bpp", "dB", "t")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium (/usr/bin/chromium)")
def test_page_renders_in_a_browser(report, tmp_path):
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            (report / "report.html").resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[:2] == (2000, 1200)
    colours = np.unique(arr.reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, curves and pictures, not a blank or error page
    assert (arr != 255).any(axis=2).mean() > 0.05
