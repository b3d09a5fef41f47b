"""report.html: one self-contained page per ``mcodec eval`` run, curves beside pictures and sound.

The page opens offline: the curves are inline SVG (svg_chart.py), the pictures and sound are the files
showcase.py kept under ``media/`` beside it (real decoded outputs of the run), the style is inline and
nothing is fetched. Per medium it holds the RD curves (with --compare's curves on the same axes), the
averaged table, the BD-rate against each anchor and against the compared run, the showcase (image crops,
a video frame and a strip of frames, audio players and spectrograms, each contender at the point nearest
a common rate) and every record; then errors, and what a reader needs to reproduce the run (command,
wall time, machine, versions, models).

LivePage re-writes the page (atomically) as points finish, at most every few seconds, so that the report
of a long run is readable while it runs.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np

from mcodec.codec.atomic_write import atomic_output

from . import showcase
from .bdrate import bd_rate
from .report import METRICS, RATE, bd_rates, curve_names, curves, machine_info
from .svg_chart import PALETTE, Series, line_chart

PAGE = "report.html"
SHOWCASE_FILES = 2  # files per medium whose decoded outputs the page shows
REFRESH_S = 5.0  # at most one re-write of a running page per this many seconds
TARGETS = {"image": 1, "video": 1, "audio": 2}  # common rates shown per showcase file
SHOWN_METRIC = {"image": "psnr_rgb", "video": "psnr_rgb", "audio": "si_sdr"}


@dataclass
class RunInfo:
    """What the page says about the run itself."""

    command: str
    started: float  # time.time()
    finished: float | None = None
    done: int = 0  # points measured by this invocation
    total: int = 0  # points this invocation had to measure
    weights: dict[str, str] = field(default_factory=dict)  # codec -> model file given with --weights


class LivePage:
    """report.html kept current: call it after each point (runner.run_grid's on_record), then finish()."""

    def __init__(self, out: Path, run: RunInfo, compare_paths: list[Path] | None = None):
        self.out, self.run, self.compare_paths = Path(out), run, list(compare_paths or [])
        self.last = -math.inf
        self.showcase_files = SHOWCASE_FILES

    def update(self, records: list[dict], done: int, total: int) -> None:
        self.run.done, self.run.total = done, total
        if time.monotonic() - self.last >= REFRESH_S:
            self._write(records)

    def finish(self, records: list[dict]) -> Path:
        self.run.finished = time.time()
        return self._write(records)

    def _write(self, records: list[dict]) -> Path:
        self.last = time.monotonic()
        return write_html(self.out, records, self.run, self.compare_paths)


def write_html(out: Path, records: list[dict], run: RunInfo, compare_paths: list[Path] | None = None) -> Path:
    path = Path(out) / PAGE
    text = render(Path(out), records, run, load_compare(compare_paths or []))
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---- the compared run ------------------------------------------------------------------------------


def load_compare(paths: list[Path]) -> list[dict]:
    """Curves of earlier runs: [{"label", "name", "media" (None where the file does not say), "results"}].
    An mcodec results.json gives its curves per medium; a compressai JSON file one curve."""
    out = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        where = Path(p).parent.name or Path(p).stem
        if "curves" in d:
            entries = [(m, e) for m, per in d["curves"].items() for e in per]
        else:
            entries = [(None, d)]
        for media, e in entries:
            if "name" in e and "results" in e:
                out.append({"label": f"{e['name']} ({where})", "name": e["name"], "media": media, **e})
    return out


def compare_for(media: str, compare: list[dict]) -> list[dict]:
    rate_name = RATE[media][1]
    return [c for c in compare if c["media"] == media or (c["media"] is None and rate_name in c["results"])]


def compare_bd(media: str, cs: dict[str, dict], compare: list[dict]) -> list[dict]:
    """BD-rate (%) of this run's curves against the compared run's: curves of the same name, or (where no
    name matches) each of our codecs against each compared curve. Negative: this run needs fewer bits."""
    rate_key, rate_name, _ = RATE[media]
    pairs = [(n, c) for n in cs for c in compare if c["name"] == n]
    if not pairs:
        pairs = [(n, c) for n, curve in cs.items() if curve["kind"] == "codec" for c in compare]
    rows = []
    for n, c in pairs:
        row = {"codec": n, "compare": c["label"]}
        for key, name, _, higher in METRICS[media]:
            sign = 1 if higher else -1
            try:
                row[key] = bd_rate(
                    c["results"][rate_name],
                    sign * np.array(c["results"][name], dtype=float),
                    cs[n][rate_key],
                    sign * np.array(cs[n][key], dtype=float),
                )
            except (KeyError, ValueError, TypeError):
                row[key] = math.nan
        rows.append(row)
    return rows


# ---- the page --------------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1500px;
padding:0 20px 40px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:19px;border-bottom:2px solid #ddd;margin-top:32px}
h3{font-size:15px;margin:22px 0 8px}
.status{padding:6px 10px;border-radius:4px;display:inline-block}
.running{background:#fff4d6}.finished{background:#e5f5e5}
nav a{margin-right:14px}
.charts{display:flex;flex-wrap:wrap;gap:10px}
svg.chart{font-size:11px;font-family:inherit;background:#fff}
svg .plot{fill:none;stroke:#999}svg .grid{stroke:#e6e6e6}svg .chart-title{font-size:13px;font-weight:600}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.t,th.t{text-align:left}
.neg{color:#17751f}.pos{color:#b32020}
.gallery{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;margin-bottom:10px}
figure{margin:0;padding:6px;border:1px solid #e2e2e2;border-radius:4px;background:#fafafa}
figcaption{font-size:12px;margin-top:4px;line-height:1.3}
figcaption b{font-size:13px}
img.px{image-rendering:pixelated}
.strips figure{margin-bottom:6px}
audio{width:300px;display:block;margin-bottom:4px}
details{margin:8px 0}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;word-break:break-all}
.scroll{max-height:520px;max-width:100%;overflow:auto;display:inline-block}
"""


def render(out: Path, records: list[dict], run: RunInfo, compare: list[dict]) -> str:
    cs = curves(records)
    # each record under its curve's name (a codec with other than its default settings has a curve of
    # its own, report.curve_names); the showcase finds a curve's records by it
    ok = [{**r, "curve": n} for r, n in zip(records, curve_names(records), strict=True) if "error" not in r]
    errors = [r for r in records if "error" in r]
    running = run.finished is None
    status = (
        f"running: {run.done} of {run.total} points measured so far"
        if running
        else f"finished: {run.done} points measured"
        + (f", {len(ok) - run.done} from an earlier run" if len(ok) > run.done else "")
    )
    media_list = [m for m in ("image", "video", "audio") if m in cs]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # a running page reloads itself; a finished one stays put
        '<meta http-equiv="refresh" content="30">' if running else "",
        "<title>mcodec eval: " + escape(", ".join(media_list) or "no results yet") + "</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>mcodec rate-distortion report</h1>",
        f'<p class="status {"running" if running else "finished"}">{escape(status)}; '
        f"page written {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}</p>",
        "<nav>"
        + "".join(f'<a href="#{m}">{m}</a>' for m in media_list)
        + ('<a href="#errors">errors</a>' if errors else "")
        + '<a href="#reproduce">reproduce</a></nav>',
    ]
    for media in media_list:
        parts.append(_media_section(out, media, cs[media], ok, compare_for(media, compare)))
    if not media_list:
        parts.append("<p>No point measured yet.</p>")
    if errors:
        parts += [
            '<section id="errors"><h2>Errors</h2><table><tr><th class="t">file</th><th class="t">codec</th>'
            '<th>point</th><th class="t">error</th></tr>'
        ]
        parts += [
            f'<tr><td class="t">{escape(str(e.get("file")))}</td>'
            f'<td class="t">{escape(str(e.get("codec") or ""))}</td><td>{_num(e.get("point"), 3)}</td>'
            f'<td class="t">{escape(e["error"])}</td></tr>'
            for e in errors
        ]
        parts.append("</table></section>")
    parts.append(_reproduce(run, ok))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _media_section(out: Path, media: str, cs: dict[str, dict], ok: list[dict], compare: list[dict]) -> str:
    rate_key, rate_name, rate_label = RATE[media]
    metrics = METRICS[media]
    names = sorted(cs, key=lambda n: (cs[n]["kind"] != "codec", n))
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names + [c["label"] for c in compare])}
    files = len({r["file"] for r in ok if r["media"] == media})
    html = [
        f'<section id="{media}"><h2>{media}</h2>',
        f"<p>{files} file{'s' * (files != 1)}; curves are the mean over files at each rate point "
        f"(rate in {rate_label}); anchors dashed"
        + ("; the compared run dotted" if compare else "")
        + ". Hover a point for its values.</p>",
        f'<h3 id="{media}-curves">Rate-distortion curves</h3><div class="charts">',
    ]
    for key, name, label, _ in metrics:
        series = [
            Series(
                n,
                cs[n][rate_key],
                cs[n][key],
                colour[n],
                "solid" if cs[n]["kind"] == "codec" else "dashed",
                "circle" if cs[n]["kind"] == "codec" else "square",
                [
                    f"{n} {cs[n]['points'][i]:g}: {cs[n][rate_key][i]:.4g} {rate_key}, {cs[n][key][i]:.4g}"
                    for i in range(len(cs[n]["points"]))
                ],
            )
            for n in names
        ]
        series += [
            Series(c["label"], c["results"][rate_name], c["results"][name], colour[c["label"]], "dotted")
            for c in compare
            if name in c["results"] and rate_name in c["results"]
        ]
        html.append(line_chart(series, rate_label, label, label))
    html.append("</div>")
    html.append(_curve_table(media, cs, names))
    bd = bd_rates(media, cs)
    html.append(f'<h3 id="{media}-bd-rate">BD-rate against each anchor</h3>')
    if bd:
        html.append(
            "<p>Percent change in rate at equal quality (negative: fewer bits than the anchor); piecewise "
            "cubic over the overlapping quality range; - where the curves do not overlap.</p>"
        )
        html.append(_bd_table(bd, "anchor", metrics))
    else:
        html.append("<p>No codec and anchor pair to compare in this run.</p>")
    if compare:
        html.append(f'<h3 id="{media}-compare">BD-rate against the compared run</h3>')
        html.append("<p>Negative: this run needs fewer bits than the compared one at equal quality.</p>")
        html.append(_bd_table(compare_bd(media, cs, compare), "compare", metrics))
    html.append(_showcase(out, media, ok, names))
    html.append(_records_table(media, [r for r in ok if r["media"] == media]))
    html.append("</section>")
    return "\n".join(html)


def _curve_table(media: str, cs: dict[str, dict], names: list[str]) -> str:
    rate_key = RATE[media][0]
    metrics = METRICS[media]
    head = "".join(f"<th>{escape(m[0])}</th>" for m in metrics)
    rows = [
        f'<h3 id="{media}-means">Mean over files</h3><table class="means"><tr><th class="t">codec</th>'
        f"<th>point</th><th>files</th><th>{rate_key}</th>{head}<th>encode s</th><th>decode s</th></tr>"
    ]
    for n in names:
        c = cs[n]
        for i, p in enumerate(c["points"]):
            rows.append(
                f'<tr><td class="t">{escape(n)}</td><td>{p:g}</td><td>{c["files"]}</td>'
                f"<td>{_num(c[rate_key][i], 4)}</td>"
                + "".join(f"<td>{_num(c[m[0]][i], 4)}</td>" for m in metrics)
                + f"<td>{_num(c['encode_s'][i], 3)}</td><td>{_num(c['decode_s'][i], 3)}</td></tr>"
            )
    rows.append("</table>")
    return "".join(rows)


def _bd_table(rows: list[dict], against: str, metrics) -> str:
    head = "".join(f"<th>{escape(m[0])}</th>" for m in metrics)
    html = [f'<table class="bd"><tr><th class="t">codec</th><th class="t">{against}</th>{head}</tr>']
    for row in rows:
        cells = ""
        for m in metrics:
            v = row.get(m[0], math.nan)
            cls = "" if not math.isfinite(v) else (' class="neg"' if v < 0 else ' class="pos"')
            cells += f"<td{cls}>{'-' if not math.isfinite(v) else f'{v:+.1f}%'}</td>"
        html.append(
            f'<tr><td class="t">{escape(row["codec"])}</td>'
            f'<td class="t">{escape(row[against])}</td>{cells}</tr>'
        )
    html.append("</table>")
    return "".join(html)


def _records_table(media: str, rs: list[dict]) -> str:
    rate_key = RATE[media][0]
    metrics = METRICS[media]
    head = "".join(f"<th>{escape(m[0])}</th>" for m in metrics)
    html = [
        f'<h3 id="{media}-records">Every point ({len(rs)})</h3><div class="scroll"><table class="records">'
        f'<tr><th class="t">file</th><th class="t">codec</th><th>point</th><th>bytes</th><th>{rate_key}</th>'
        f"{head}<th>encode s</th><th>decode s</th></tr>"
    ]
    for r in sorted(rs, key=lambda r: (r["file"], r["kind"] != "codec", r["codec"], r["point"])):
        html.append(
            f'<tr><td class="t" title="{escape(r["file"])}">{escape(Path(r["file"]).name)}</td>'
            f'<td class="t">{escape(r["codec"])}</td><td>{r["point"]:g}</td><td>{r.get("bytes", "")}</td>'
            f"<td>{_num(r.get(rate_key), 4)}</td>"
            + "".join(f"<td>{_num(r.get(m[0]), 4)}</td>" for m in metrics)
            + f"<td>{_num(r.get('encode_s'), 3)}</td><td>{_num(r.get('decode_s'), 3)}</td></tr>"
        )
    html.append("</table></div>")
    return "\n".join(html)


# ---- pictures and sound ----------------------------------------------------------------------------


def _showcase(out: Path, media: str, ok: list[dict], names: list[str]) -> str:
    files = []
    for r in ok:
        if r["media"] == media and r["file"] not in files and showcase.folder(out, r["file"]).is_dir():
            files.append(r["file"])
    what = {
        "image": "crops of the original and of each contender's decoded image (shown at 2x)",
        "video": "the middle frame (at 2x, a crop where large) and a strip of frames from each contender",
        "audio": f"the first {showcase.AUDIO_SECONDS:g} s as each contender decodes it, with spectrograms",
    }[media]
    html = [f'<h3 id="{media}-showcase">What it looks like</h3>' if media != "audio" else ""]
    if media == "audio":
        html[0] = f'<h3 id="{media}-showcase">What it sounds like</h3>'
    if not files:
        return html[0] + "<p>No decoded outputs kept yet (they are kept for the first files of a run).</p>"
    html.append(
        f"<p>Real decoded outputs of this run: {what}, each at its rate point nearest a common rate.</p>"
    )
    for f in files:
        rs = [r for r in ok if r["file"] == f]
        for target in _targets(media, rs, names):
            html.append(_gallery(out, media, f, rs, names, target))
    return "\n".join(html)


def _targets(media: str, rs: list[dict], names: list[str]) -> list[float]:
    """The common rates shown: points of the first contender (our codec where there is one), the middle
    one for pictures, the lowest and highest for sound."""
    rate_key = RATE[media][0]
    first = next((n for n in names if any(r["curve"] == n for r in rs)), None)
    if first is None:
        return []
    rates = sorted(r[rate_key] for r in rs if r["curve"] == first and r[rate_key] > 0)
    if not rates:
        return []
    if TARGETS[media] == 1 or len(rates) == 1:
        return [rates[(len(rates) - 1) // 2]]
    return [rates[0], rates[-1]]


def _nearest(rs: list[dict], codec: str, rate_key: str, target: float) -> dict | None:
    mine = [r for r in rs if r["curve"] == codec and r.get(rate_key, 0) > 0]
    return min(mine, key=lambda r: abs(math.log(r[rate_key] / target)), default=None)


def _gallery(out: Path, media: str, file: str, rs: list[dict], names: list[str], target: float) -> str:
    rate_key, _, rate_label = RATE[media]
    shown = SHOWN_METRIC[media]
    html = [
        f"<h4>{escape(Path(file).name)}, near {target:.3g} {rate_label}</h4>",
        '<div class="gallery">',
        _figure(out, media, file, "original", 0.0, "<b>original</b>"),
    ]
    strips = [("original", showcase.paths(out, file, media, "original")[-1])] if media == "video" else []
    for n in names:
        r = _nearest(rs, n, rate_key, target)
        if r is None:
            continue
        caption = (
            f"<b>{escape(n)}</b> {r['point']:g}<br>{r[rate_key]:.3f} {rate_key}"
            f" &middot; {_metric_text(shown, r.get(shown))}"
        )
        if media == "audio":
            caption += f"<br>PESQ {_num(r.get('pesq_wb'), 2)} &middot; STOI {_num(r.get('stoi'), 3)}"
        html.append(_figure(out, media, file, r["codec"], r["point"], caption))
        if media == "video":
            strip = showcase.paths(out, file, media, r["codec"], r["point"])[-1]
            strips.append((f"{n} {r['point']:g}", strip))
    html.append("</div>")
    if strips:
        html.append('<div class="strips">')
        for label, p in strips:
            if p.exists():
                html.append(
                    f'<figure><img class="px" src="{_href(out, p)}" alt="frames, {escape(label)}">'
                    f"<figcaption>{escape(label)}: frames across the clip</figcaption></figure>"
                )
        html.append("</div>")
    return "\n".join(html)


def _figure(out: Path, media: str, file: str, contender: str, point: float, caption: str) -> str:
    kept = showcase.paths(out, file, media, contender, point)
    if not kept[0].exists():
        return ""
    if media == "audio":
        spec = f'<img src="{_href(out, kept[1])}" alt="spectrogram" width="480">' if kept[1].exists() else ""
        body = f'<audio controls preload="none" src="{_href(out, kept[0])}"></audio>{spec}'
    else:
        from PIL import Image

        with Image.open(kept[0]) as im:
            w, h = im.size
        scale = 2 if max(w, h) <= showcase.CROP else 1
        body = (
            f'<img class="px" src="{_href(out, kept[0])}" width="{w * scale}" height="{h * scale}" '
            f'alt="{escape(contender)}">'
        )
    return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"


def _metric_text(key: str, v) -> str:
    unit = {"psnr_rgb": ("PSNR", " dB", 2), "si_sdr": ("SI-SDR", " dB", 2)}[key]
    return f"{unit[0]} {_num(v, unit[2])}{unit[1]}"


def _href(out: Path, p: Path) -> str:
    return quote(p.relative_to(out).as_posix())


def _num(v, digits: int) -> str:
    if v is None or isinstance(v, str):
        return escape(v or "-")
    v = float(v)
    return "inf" if math.isinf(v) else "-" if math.isnan(v) else f"{v:.{digits}f}"


# ---- reproduce -------------------------------------------------------------------------------------


def _reproduce(run: RunInfo, ok: list[dict]) -> str:
    wall = (run.finished or time.time()) - run.started
    info = dict(machine_info())
    try:
        from importlib.metadata import version

        info = {"mcodec": version("mcodec"), **info}
    except Exception:  # noqa: BLE001 - an uninstalled checkout has no version to show
        pass
    rows = [
        ("command", f"<code>{escape(run.command)}</code>"),
        ("started", datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M:%S")),
        (
            "wall time",
            f"{wall:.1f} s"
            + (" so far" if run.finished is None else "")
            + f" ({run.done} points measured by this command)",
        ),
    ]
    rows += [(k, escape(str(v))) for k, v in info.items()]
    rows += [(f"model of {c}", escape(text)) for c, text in _models(run, ok).items()]
    cells = "".join(f'<tr><th class="t">{escape(k)}</th><td class="t">{v}</td></tr>' for k, v in rows)
    total = sum(r.get("encode_s", 0) + r.get("decode_s", 0) for r in ok)
    return (
        '<section id="reproduce"><h2>Reproduce</h2>'
        f"<p>Run the command again with the same versions to reproduce these numbers (an existing --out "
        f"folder resumes: points already measured are kept). Encode plus decode time of all points: "
        f"{total:.1f} s.</p><table>{cells}</table></section>"
    )


_MODELS: dict[tuple, str] = {}


def _models(run: RunInfo, ok: list[dict]) -> dict[str, str]:
    """Our codecs' model ids and weight hashes (looked up once per process)."""
    from mcodec.codec import registry

    out = {}
    for c in sorted({r["codec"] for r in ok if r["kind"] == "codec"}):
        key = (c, run.weights.get(c))
        if key not in _MODELS:
            try:
                codec = registry.get(c, Path(key[1]) if key[1] else None)
                if not any(codec.weights_hash):
                    _MODELS[key] = f"{codec.model_id} (no model file: fitted per input)"
                else:
                    source = key[1] or "shipped"
                    _MODELS[key] = f"{codec.model_id} ({source}; sha256 {codec.weights_hash.hex()[:16]}...)"
            except Exception as e:  # noqa: BLE001 - the page says why instead of failing
                _MODELS[key] = f"unavailable ({e})"
        out[c] = _MODELS[key]
    return out
