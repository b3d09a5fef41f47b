"""The evaluation grid: every file x contender x rate point, encoded and decoded for real.

Records are appended to ``DIR/records.jsonl`` as they are measured, so an interrupted run loses nothing
and a rerun skips what is done: the same file, contender and rate point with the same settings (our
codecs' preset and model file; a record without them, from before records carried them, counts as the
codec's default preset and its shipped weights). A file that cannot be read is recorded as an error and
the run goes on. With ``jobs > 1`` the grid runs in worker processes (one torch thread each).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mcodec.codec import CodecError, media_io, registry
from mcodec.codec.media_io import MEDIA_READERS
from mcodec.rates import bits_per_pixel, kbit_per_second

from . import showcase
from .contenders import DEFAULT_ANCHORS, Contender, OurCodec, make_anchor

RECORDS = "records.jsonl"


@dataclass(frozen=True)
class Task:
    file: str
    media: str
    contender: str  # codec or anchor id
    kind: str  # "codec" or "anchor"
    point: float
    options: tuple = ()  # our codecs' settings as (key, value) pairs (video: preset)
    weights: str | None = None  # our codec's model file (resolved path), where not the shipped one
    preset: str | None = None  # the encoder preset our codec runs with; None: anchors, codecs without
    keep: str | None = None  # showcase files only: the folder that keeps the decoded output (showcase.py)


class RateUnitError(ValueError):
    """Rate points were given in a unit ("quality" or "kbps") that none of the codecs evaluated takes."""

    def __init__(self, unit: str, codecs: list[str]):
        self.unit, self.codecs = unit, codecs
        super().__init__(
            f"rate points in {unit} given, but the codecs evaluated ({', '.join(codecs)}) take none"
        )


def list_files(inputs: list[Path]) -> list[Path]:
    """Files given, and the files inside folders given (sorted, hidden files skipped)."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            out.append(p)
    return out


def contenders_for(
    media: str, codecs: list[str] | None, anchors: list[str] | None, points, anchor_points=None
) -> list[Contender]:
    """Our codecs (default: the media's default codec) and anchors (default: the media's usual ones)."""
    if codecs:
        ours = [c for c in codecs if registry.info(c).media == media]
    else:  # the media's default codec; anchors alone where mcodec has no codec (or weights) for it yet
        ours = [registry.default_for(media)] if registry.has_codec_for(media) else []
        try:
            for c in ours:
                registry.get(c)
        except CodecError:
            ours = []
    out: list[Contender] = [OurCodec(c, _points_for(c, points)) for c in ours]
    for a in anchors if anchors is not None else DEFAULT_ANCHORS[media]:
        anchor = make_anchor(a, anchor_points.get(a) if anchor_points else None)
        if anchor.media == media:
            out.append(anchor)
    return out


def _points_for(codec_id: str, points):
    """A codec's rate points: ``points`` is one list for every codec, or {unit: list} by CodecInfo.unit."""
    return points.get(registry.info(codec_id).unit) if isinstance(points, dict) else points


def measure(task: Task) -> dict:
    """Run one task in this process; returns its record (with 'error' when it failed)."""
    record = {
        "file": task.file,
        "media": task.media,
        "codec": task.contender,
        "kind": task.kind,
        "point": task.point,
        "preset": task.preset,
        "weights": task.weights,
    }
    try:
        item = MEDIA_READERS[task.media](Path(task.file))
        if task.kind == "codec":
            contender = OurCodec(task.contender, options=dict(task.options), weights=task.weights)
        else:
            contender = make_anchor(task.contender)
        trial = contender.run(item, task.point)
        record.update(bytes=trial.bytes, encode_s=trial.encode_s, decode_s=trial.decode_s)
        record.update(_distortion(task.media, item, trial.decoded, trial.bytes))
        if task.keep:  # for report.html
            showcase.save(Path(task.keep), task.media, task.contender, task.point, item, trial.decoded)
    except Exception as e:  # noqa: BLE001 - one bad file or point must not stop the grid
        record["error"] = " ".join(f"{type(e).__name__}: {e}".split())[:300]
    return record


def _distortion(media: str, item, decoded, nbytes: int) -> dict:
    from . import audio_metrics, metrics

    if media == "image":
        c, h, w = item.shape
        return {
            "bpp": bits_per_pixel(nbytes, h * w),
            "psnr_rgb": metrics.psnr_rgb(item, decoded),
            "psnr_y": metrics.psnr_y(item, decoded),
            "ms_ssim": metrics.ms_ssim(item, decoded),
        }
    if media == "video":
        (frames, rate), (out, _) = item, decoded
        t, _, h, w = frames.shape
        return {
            "bpp": bits_per_pixel(nbytes, t * h * w),
            "kbps": kbit_per_second(nbytes, t / float(rate)),
            "psnr_rgb": metrics.psnr_rgb(frames, out),
            "psnr_y": metrics.psnr_y(frames, out),
            "ms_ssim": metrics.ms_ssim(frames, out),
        }
    (ref, rate), (est, _) = item, decoded
    seconds = ref.shape[1] / rate
    return {
        "kbps": kbit_per_second(nbytes, seconds),
        "mel_distance": audio_metrics.mel_distance(ref, est, rate),
        "si_sdr": audio_metrics.si_sdr(ref, est),
        "pesq_wb": audio_metrics.pesq_wb(ref, est, rate),
        "stoi": audio_metrics.stoi(ref, est, rate),
    }


def _key(r: dict) -> tuple:
    return (r["file"], r["codec"], float(r["point"]), r["preset"], r["weights"])


def preset_of(codec_id: str, options: dict | None) -> str | None:
    """The preset our codec runs with under these options (a preset it lacks is not passed to it)."""
    info = registry.info(codec_id)
    preset = (options or {}).get("preset")
    return preset if preset in info.presets else info.default_preset


def load_records(out: Path) -> list[dict]:
    """The records in out/records.jsonl; those written before records carried their settings get the
    codec's default preset and the shipped weights."""
    path = out / RECORDS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interruption
        if "preset" not in r:
            try:
                r["preset"] = registry.info(r["codec"]).default_preset if r.get("kind") == "codec" else None
            except CodecError:  # a codec no longer registered
                r["preset"] = None
        r.setdefault("weights", None)
        records.append(r)
    return records


def _media_of(f: Path, media: str) -> list[str]:
    """The media kinds a file is evaluated as: its own, and "audio" too for a video with sound."""
    return [media, "audio"] if media == "video" and media_io.has_audio(f) else [media]


def _tasks(f, media, codecs, anchors, points, options, weights, done, ours: set, kept) -> list[Task]:
    """The tasks of one file as one media kind: every contender x rate point not yet ``done``; adds our
    codecs' ids to ``ours``."""
    tasks = []
    for c in contenders_for(media, codecs, anchors, points):
        kind, preset, model = "anchor", None, None
        if isinstance(c, OurCodec):
            ours.add(c.id)
            kind, preset = "codec", preset_of(c.id, options)
            model = str(Path(weights[c.id]).resolve()) if c.id in weights else None
        tasks += [
            Task(
                str(f),
                media,
                c.id,
                kind,
                float(p),
                tuple(sorted((options or {}).items())),
                model,
                preset,
                keep=kept,
            )
            for p in c.points
            if (str(f), c.id, float(p), preset, model) not in done
        ]
    return tasks


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_grid(
    files: list[Path],
    out: Path,
    codecs: list[str] | None,
    anchors: list[str] | None,
    points=None,
    jobs: int = 1,
    progress: bool = True,
    options: dict | None = None,
    weights: dict[str, Path] | None = None,
    showcase_files: int = 0,
    on_record: Callable[[list[dict], int, int], None] | None = None,
) -> list[dict]:
    """Measure everything not yet in out/records.jsonl; returns all records (old and new).
    ``points``: our codecs' rate points, one list for all or {unit: list} by CodecInfo.unit ("quality",
    "kbps"; a codec whose unit has none takes its usual points, and a unit no codec evaluated takes is a
    RateUnitError before any work). ``options`` go to our codecs (video: preset); ``weights`` maps a codec
    id to its model file.
    The first ``showcase_files`` files of each medium keep their decoded outputs (showcase.py);
    ``on_record(records, done, total)`` is called after each point measured (report.html's refresh)."""
    weights = weights or {}
    records = load_records(out)
    done = {_key(r) for r in records if "error" not in r}
    records = [r for r in records if "error" not in r]  # failed points are retried
    tasks: list[Task] = []
    ours = set(codecs or ())  # the codecs evaluated: those asked for, or each medium's default
    shown: dict[str, int] = {}  # media -> showcase files so far
    for f in files:
        try:
            media = media_io.media_kind(f)
        except media_io.MediaError as e:
            records.append({"file": str(f), "codec": None, "point": math.nan, "error": str(e)})
            continue
        for kind in _media_of(f, media):  # a movie: its video, then its sound, each on its own curves
            kept = str(showcase.folder(out, f)) if shown.get(kind, 0) < showcase_files else None
            shown[kind] = shown.get(kind, 0) + 1
            tasks += _tasks(f, kind, codecs, anchors, points, options, weights, done, ours, kept)
    if isinstance(points, dict) and ours:
        units = {registry.info(c).unit for c in ours}
        for unit, values in points.items():
            if values and unit not in units:
                raise RateUnitError(unit, sorted(ours))
    out.mkdir(parents=True, exist_ok=True)
    measured = 0
    with (
        open(out / RECORDS, "a") as sink,
        tqdm(total=len(tasks), disable=not progress, file=sys.stderr, unit="point", desc="eval") as bar,
    ):

        def keep(record: dict) -> None:
            nonlocal measured
            measured += 1
            records.append(record)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            bar.set_postfix_str(f"{Path(record['file']).name} {record['codec']} {record['point']:g}")
            bar.update()
            if on_record:
                on_record(records, measured, len(tasks))

        if jobs <= 1:
            for t in tasks:
                keep(measure(t))
        else:
            with ProcessPoolExecutor(jobs, initializer=_init_worker) as pool:
                for fut in as_completed([pool.submit(measure, t) for t in tasks]):
                    keep(fut.result())
    return records
