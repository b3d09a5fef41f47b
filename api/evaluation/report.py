"""Turning evaluation records into files people and programs read.

- results.json: machine info, every record, and one curve per codec in compressai's results layout
  ({"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}); the same curves also as
  curves/<codec>.json, which compressai's plotting tool reads as they are.
- results.csv: the records, one row per file x codec x rate point.
- rd.png: one panel per metric, one curve per codec (anchors dashed).
- report.md: the averaged table, BD-rate of each codec against each anchor, the same file by file, the
  plot, machine, errors.
Curves average each rate point over the files (as compressai's Kodak figures do), with each file's PSNR
capped at PSNR_CEILING_DB first: a file an anchor codes losslessly (a black frame) has PSNR inf, and one
such file would make the whole point inf and the BD-rate n/a.
Averaged curves add up bits over the files, so the costliest files lead their BD-rate; the file-by-file
BD-rates (each file's own curves, on the media's first metric) weigh every file alike and name the files
where a codec loses.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .bdrate import bd_rate, front_bd_rate

# metric key in records -> (compressai results key, label, higher is better)
METRICS = {
    "image": [
        ("psnr_rgb", "psnr-rgb", "PSNR-RGB (dB)", True),
        ("psnr_y", "psnr-y", "PSNR-Y (dB)", True),
        ("ms_ssim", "ms-ssim-rgb", "MS-SSIM", True),
    ],
    "video": [
        ("psnr_rgb", "psnr-rgb", "PSNR-RGB (dB)", True),
        ("psnr_y", "psnr-y", "PSNR-Y (dB)", True),
        ("ms_ssim", "ms-ssim-rgb", "MS-SSIM", True),
    ],
    "audio": [
        ("mel_distance", "mel-distance", "mel distance", False),
        ("si_sdr", "si-sdr", "SI-SDR (dB)", True),
        ("pesq_wb", "pesq-wb", "PESQ-WB", True),
        ("stoi", "stoi", "STOI", True),
    ],
}
# libvmaf's ceiling for 8-bit PSNR (6 x bit depth + 12): beyond it an error is below one step of 8 bits
# in ~1 of 10^6 samples, which averaging should not weigh as more than "lossless".
PSNR_CEILING_DB = 60.0
RATE = {
    "image": ("bpp", "bpp", "bits per pixel"),
    "video": ("bpp", "bpp", "bits per pixel"),
    "audio": ("kbps", "kbps", "kbit/s"),
}


def machine_info() -> dict:
    import av
    import PIL
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "av": av.__version__,
    }


def curve_names(records: list[dict]) -> list[str]:
    """Each record's curve: its codec's id, with the settings that are not the defaults, so records of
    one codec measured with another preset or model file are not averaged together:
    "meanscale (preset medium)", "factorized (weights tiny.safetensors)" (the full path where two model
    files share a name). Records without settings (made by hand) count as the defaults."""
    from mcodec.codec import CodecError, registry

    paths_by_name = defaultdict(set)
    for r in records:
        if r.get("weights"):
            paths_by_name[Path(r["weights"]).name].add(r["weights"])
    names = []
    for r in records:
        settings = []
        if r.get("preset") is not None and r.get("kind") == "codec":
            try:
                default = registry.info(r["codec"]).default_preset
            except CodecError:
                default = None
            if r["preset"] != default:
                settings.append(f"preset {r['preset']}")
        if r.get("weights"):
            name = Path(r["weights"]).name
            settings.append(f"weights {name if len(paths_by_name[name]) == 1 else r['weights']}")
        names.append(f"{r['codec']} ({', '.join(settings)})" if settings else r["codec"])
    return names


def curves(records: list[dict]) -> dict[str, dict[str, dict]]:
    """media -> curve name (curve_names) -> {"points": [...], "kind", "<key>": [mean over files per point],
    "files": n}."""
    groups = defaultdict(list)
    for r, name in zip(records, curve_names(records), strict=True):
        if "error" not in r:
            groups[(r["media"], name, r["kind"])].append(r)
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for (media, codec, kind), rs in groups.items():
        by_point = defaultdict(list)
        for r in rs:
            by_point[r["point"]].append(r)
        keys = [RATE[media][0], "encode_s", "decode_s"] + [m[0] for m in METRICS[media]]
        points = sorted(by_point)
        curve = {"kind": kind, "points": points, "files": len({r["file"] for r in rs})}
        for k in keys:
            curve[k] = [float(np.nanmean([_averaged(r, k) for r in by_point[p]])) for p in points]
        out[media][codec] = curve
    return out


def _averaged(record: dict, key: str) -> float:
    """The record's value as it enters a mean over files (PSNRs capped at PSNR_CEILING_DB)."""
    value = record.get(key, math.nan)
    return min(value, PSNR_CEILING_DB) if key.startswith("psnr") else value


def compressai_layout(codec: str, media: str, curve: dict) -> dict:
    rate_key, rate_name, _ = RATE[media]
    results = {
        rate_name: curve[rate_key],
        "encoding_time": curve["encode_s"],
        "decoding_time": curve["decode_s"],
    }
    for key, name, _, _ in METRICS[media]:
        results[name] = curve[key]
    return {
        "name": codec,
        "description": f"mcodec eval, {curve['kind']}, mean over {curve['files']} files",
        "results": results,
    }


def bd_rates(media: str, cs: dict[str, dict]) -> list[dict]:
    """BD-rate (%) of every codec against every anchor, per metric (NaN where curves do not overlap)."""
    rate_key = RATE[media][0]
    rows = []
    for codec, c in cs.items():
        if c["kind"] != "codec":
            continue
        for anchor, a in cs.items():
            if a["kind"] != "anchor":
                continue
            row = {"codec": codec, "anchor": anchor}
            for key, _, _, higher in METRICS[media]:
                qa, qc = np.array(a[key]), np.array(c[key])
                sign = 1 if higher else -1  # BD needs quality increasing with rate
                try:
                    row[key] = bd_rate(a[rate_key], sign * qa, c[rate_key], sign * qc)
                except ValueError:
                    row[key] = math.nan
            rows.append(row)
    return rows


def per_file_bd_rates(records: list[dict]) -> dict[str, list[dict]]:
    """media -> one row per codec curve and anchor: {"codec", "anchor", "metric", "files": {file: BD-rate
    (%) of that file's curves (their fronts, front_bd_rate; NaN where they do not overlap)}, "mean" (of the
    finite ones), "better" (how many are negative), "compared" (how many are finite)}, on the media's
    first metric (PSNR-RGB, mel distance)."""
    points: dict = defaultdict(lambda: defaultdict(list))  # (media, curve, kind) -> file -> [(rate, q)]
    for r, name in zip(records, curve_names(records), strict=True):
        if "error" in r:
            continue
        key, _, _, higher = METRICS[r["media"]][0]
        quality = _averaged(r, key)
        points[r["media"], name, r["kind"]][r["file"]].append(
            (r.get(RATE[r["media"]][0], math.nan), quality if higher else -quality)
        )
    out: dict[str, list[dict]] = defaultdict(list)
    for (media, codec, kind), files in points.items():
        if kind != "codec":
            continue
        for (anchor_media, anchor, anchor_kind), anchor_files in points.items():
            if anchor_kind != "anchor" or anchor_media != media:
                continue
            per = {}
            for f in sorted(files.keys() & anchor_files.keys()):
                (ar, aq), (tr, tq) = zip(*anchor_files[f], strict=True), zip(*files[f], strict=True)
                per[f] = front_bd_rate(ar, aq, tr, tq)[0]
            finite = [v for v in per.values() if math.isfinite(v)]
            out[media].append(
                {
                    "codec": codec,
                    "anchor": anchor,
                    "metric": METRICS[media][0][0],
                    "files": per,
                    "mean": float(np.mean(finite)) if finite else math.nan,
                    "better": sum(v < 0 for v in finite),
                    "compared": len(finite),
                }
            )
    return dict(out)


def plot(media: str, cs: dict[str, dict], path: Path, compare: dict[str, dict] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate_key, rate_name, rate_label = RATE[media]
    metrics = METRICS[media]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for ax, (key, name, label, _) in zip(axes[0], metrics, strict=True):
        for codec, c in sorted(cs.items()):
            style = "-o" if c["kind"] == "codec" else "--s"
            ax.plot(c[rate_key], c[key], style, label=codec, markersize=4)
        for codec, results in (compare or {}).items():
            if name in results and rate_name in results:
                ax.plot(results[rate_name], results[name], ":x", label=f"{codec} (compare)", markersize=4)
        ax.set_xlabel(rate_label)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{media}: rate-distortion (mean over files)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_compare(paths: list[Path]) -> dict[str, dict]:
    """Curves to overlay: an earlier results.json (its curves) or compressai-style JSON files."""
    out = {}
    for p in paths:
        d = json.loads(Path(p).read_text())
        entries = (
            [e for per_media in d.get("curves", {}).values() for e in per_media] if "curves" in d else [d]
        )
        for e in entries:
            if "name" in e and "results" in e:
                out[f"{e['name']}"] = e["results"]
    return out


def write_reports(records: list[dict], out: Path, compare_paths: list[Path] | None = None) -> dict:
    cs = curves(records)
    compare = load_compare(compare_paths or [])
    info = machine_info()
    layouts = {
        m: [compressai_layout(c, m, curve) for c, curve in sorted(per.items())] for m, per in cs.items()
    }
    (out / "curves").mkdir(exist_ok=True)
    for m, entries in layouts.items():
        for e in entries:
            file_name = re.sub(r"[^\w.:+=-]+", "_", e["name"]).strip("_")  # "meanscale_preset_medium"
            (out / "curves" / f"{m}-{file_name}.json").write_text(json.dumps(e, indent=2))
    ok = [r for r in records if "error" not in r]
    errors = [r for r in records if "error" in r]
    summary = {
        "machine": info,
        "curves": layouts,
        "bd_rate": {m: bd_rates(m, per) for m, per in cs.items()},
        "bd_rate_per_file": per_file_bd_rates(ok),
        "records": ok,
        "errors": errors,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    columns = sorted({k for r in ok for k in r})
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(ok)
    plots = {}
    for m, per in cs.items():
        name = "rd.png" if len(cs) == 1 else f"rd-{m}.png"
        plot(m, per, out / name, compare)
        plots[m] = name
    (out / "report.md").write_text(
        markdown(cs, summary["bd_rate"], plots, info, errors, summary["bd_rate_per_file"])
    )
    return summary


def _fmt(v: float, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(cs, bd, plots, info, errors, per_file=None) -> str:
    lines = ["# mcodec rate-distortion report", ""]
    for media, per in cs.items():
        rate_key, _, rate_label = RATE[media]
        metrics = METRICS[media]
        lines += [
            f"## {media}",
            "",
            f"![rate-distortion]({plots[media]})",
            "",
            f"Mean over files at each rate point; rate in {rate_label}.",
            "",
            "| codec | point | files | "
            + rate_key
            + " | "
            + " | ".join(m[0] for m in metrics)
            + " | encode s | decode s |",
            "|---" * (5 + len(metrics) + 1) + "|",
        ]
        for codec, c in sorted(per.items(), key=lambda kv: (kv[1]["kind"], kv[0])):
            for i, p in enumerate(c["points"]):
                vals = " | ".join(_fmt(c[m[0]][i], 4) for m in metrics)
                lines.append(
                    f"| {codec} | {p:g} | {c['files']} | {_fmt(c[rate_key][i], 4)} | {vals} | "
                    f"{_fmt(c['encode_s'][i])} | {_fmt(c['decode_s'][i])} |"
                )
        if bd.get(media):
            lines += [
                "",
                "BD-rate (%, negative = fewer bits than the anchor at equal quality; "
                "piecewise cubic over the overlapping quality range):",
                "",
                "| codec | anchor | " + " | ".join(m[0] for m in metrics) + " |",
                "|---" * (2 + len(metrics)) + "|",
            ]
            for row in bd[media]:
                lines.append(
                    f"| {row['codec']} | {row['anchor']} | "
                    + " | ".join(_fmt(row[m[0]], 1) for m in metrics)
                    + " |"
                )
        lines += per_file_table((per_file or {}).get(media, []))
        lines.append("")
    if errors:
        lines += (
            ["## Errors", ""]
            + [f"- {e['file']} {e.get('codec') or ''} {e.get('point', '')}: {e['error']}" for e in errors]
            + [""]
        )
    lines += ["## Machine", ""] + [f"- {k}: {v}" for k, v in info.items()] + [""]
    return "\n".join(lines)


def per_file_table(rows: list[dict]) -> list[str]:
    """report.md's file-by-file BD-rates: a row per file, a column per codec and anchor."""
    if not rows:
        return []
    files = sorted({f for row in rows for f in row["files"]})
    lines = [
        "",
        f"BD-rate file by file on {rows[0]['metric']} (%, each file's own curves, dominated points left "
        "out; the mean of files weighs every file alike, where the curves above are led by the costliest):",
        "",
        "| file | " + " | ".join(f"{r['codec']} vs {r['anchor']}" for r in rows) + " |",
        "|---" * (1 + len(rows)) + "|",
    ]
    for f in files:
        lines.append(
            f"| {Path(f).name} | " + " | ".join(_fmt(r["files"].get(f, math.nan), 1) for r in rows) + " |"
        )
    lines.append("| mean of files | " + " | ".join(_fmt(r["mean"], 1) for r in rows) + " |")
    lines.append("| files better | " + " | ".join(f"{r['better']} of {r['compared']}" for r in rows) + " |")
    return lines
