"""Per-file comparison of rvq models from `bench/audio_rd.py` runs: the ship decision for an audio model.

    python bench/audio_ab.py OLD_OUT NEW_OUT [MORE_OUT ...] [--point 6] [--set speech]

Each OUT is an `audio_rd.py --out` folder (its SET/records.jsonl, read as `mcodec eval` reads it) made on
the same files with another `--weights`. For the rvq codec at --point kbit/s it prints, per run, the mean
and median of PESQ-WB, STOI and mel distance and on how many files each run beats the first (higher PESQ-WB
and STOI, lower mel), then the first run's Opus anchors at the same point and the one above. A mean alone is
not enough on short clips: one erratic file moved a 16-file PESQ-WB mean by 0.05 (codec/models/rvq.md,
session 30).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from mcodec.evaluation.runner import RECORDS, load_records

METRICS = {"pesq_wb": 1, "stoi": 1, "mel_distance": -1}  # +1: higher is better


def records(out: Path, subset: str) -> list[dict]:
    if not (out / subset / RECORDS).is_file():
        raise SystemExit(f"audio_ab: {out / subset / RECORDS} not found (an audio_rd.py --out folder?)")
    return load_records(out / subset)


def at_point(rows: list[dict], codec: str, point: float) -> dict[str, dict]:
    """file name -> record of ``codec`` at ``point``."""
    return {Path(r["file"]).name: r for r in rows if r["codec"] == codec and r["point"] == point}


def summary(name: str, runs: dict[str, dict], base: dict[str, dict] | None, files: list[str]) -> str:
    cells = [name]
    for metric, sign in METRICS.items():
        values = [runs[f][metric] for f in files]
        cell = f"{statistics.fmean(values):.3f} ({statistics.median(values):.3f})"
        if base is not None:
            wins = sum(sign * (runs[f][metric] - base[f][metric]) > 0 for f in files)
            cell += f", {wins}/{len(files)} better"
        cells.append(cell)
    kbps = statistics.fmean(runs[f]["kbps"] for f in files)
    return "| " + " | ".join(cells) + f" | {kbps:.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outs", type=Path, nargs="+", help="audio_rd.py --out folders, the reference first")
    ap.add_argument("--point", type=float, default=6.0, help="kbit/s requested (default 6)")
    ap.add_argument("--set", dest="subset", default="speech", help="the subfolder compared (default speech)")
    args = ap.parse_args()
    if len(args.outs) < 2:
        raise SystemExit("audio_ab: give at least two audio_rd.py --out folders")
    rows = [records(out, args.subset) for out in args.outs]
    runs = [at_point(r, "rvq", args.point) for r in rows]
    files = sorted(set.intersection(*(set(r) for r in runs)))
    if not files:
        raise SystemExit(f"audio_ab: no file has rvq at {args.point:g} kbit/s in every run")
    print(f"{len(files)} files, rvq at {args.point:g} kbit/s; mean (median), files better than the first run")
    print("| run | PESQ-WB | STOI | mel distance | real kbit/s |")
    print("|---|---|---|---|---|")
    for i, (out, run) in enumerate(zip(args.outs, runs, strict=True)):
        print(summary(str(out), run, runs[0] if i else None, files))
    points = sorted({r["point"] for r in rows[0] if r["codec"] == "opus" and r["point"] >= args.point})
    for point in points[:2]:
        anchor = at_point(rows[0], "opus", point)
        if all(f in anchor for f in files):
            print(summary(f"Opus {point:g} (first run's)", anchor, None, files))


if __name__ == "__main__":
    main()
