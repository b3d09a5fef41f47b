"""``mcodec eval``: rate-distortion evaluation of codecs and classical anchors on files or folders."""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

import click

from mcodec.codec import CodecError


def _numbers(value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _ids(values: tuple[str, ...]) -> list[str] | None:
    ids = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return ids or None


@click.command("eval")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--codec",
    "codecs",
    multiple=True,
    help="codec id(s), comma-separated or repeated (default: the default codec of each file's media)",
)
@click.option(
    "--quality", help="comma-separated quality levels for our image and video codecs (default: every level)"
)
@click.option(
    "--bitrate", help="comma-separated bitrates (kbit/s) for our audio codecs (default: their usual points)"
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="anchors: jpeg,webp,avif,x264,x265,svtav1,opus "
    "or none (default: jpeg,webp,avif for images; x264,x265 for video; opus for audio)",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for results.json/.csv, rd.png, report.md (a rerun skips what is done with the same "
    "--preset and --weights)",
)
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="worker processes")
@click.option(
    "--preset",
    type=click.Choice(["fast", "medium", "slow"]),
    help="encoder effort, for the codecs that have presets (see `mcodec encode --help`)",
)
@click.option(
    "--weights",
    "weights",
    multiple=True,
    metavar="CODEC=FILE",
    help="evaluate CODEC with this model file (e.g. one from `mcodec train`); in an --out that has the "
    "shipped model's results too, it is a curve of its own",
)
@click.option(
    "--compare",
    "compare",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="overlay curves from an earlier results.json or a compressai results JSON",
)
@click.pass_context
def evaluate(ctx, data, codecs, quality, bitrate, anchors, out, jobs, preset, weights, compare):
    """Encode and decode every file in DATA with every codec and anchor at every rate point."""
    from mcodec.codec import registry
    from mcodec.evaluation.html_report import LivePage, RunInfo
    from mcodec.evaluation.report import write_reports
    from mcodec.evaluation.runner import RateUnitError, list_files, run_grid

    from .knobs import wrong_knob

    codec_ids = _ids(codecs)
    for c in codec_ids or []:
        registry.info(c)  # unknown ids fail before any work
    model_files = _weights(weights)
    anchor_ids = _ids(anchors)
    if anchor_ids == ["none"]:
        anchor_ids = []
    files = list_files(list(data))
    if not files:
        raise CodecError("no files to evaluate")
    quiet = ctx.find_root().obj.get("quiet")
    # report.html, re-written as points finish and once more at the end
    run = RunInfo(_command_line(ctx), time.time(), weights={c: str(f) for c, f in model_files.items()})
    page = LivePage(out, run, list(compare))
    try:
        records = run_grid(
            files,
            out,
            codec_ids,
            anchor_ids,
            {"quality": _numbers(quality), "kbps": _numbers(bitrate)},
            jobs,
            progress=not quiet,
            options={"preset": preset} if preset else None,
            weights=model_files,
            showcase_files=page.showcase_files,
            on_record=page.update,
        )
    except RateUnitError as e:  # --bitrate for quality-level codecs only, or --quality for bitrate ones
        raise wrong_knob(e.unit, [registry.info(c) for c in e.codecs]) from None
    except ValueError as e:
        raise CodecError(str(e)) from None
    summary = write_reports(records, out, list(compare))
    page.finish(records)
    for media, rows in summary["bd_rate"].items():
        for row in rows:
            vals = ", ".join(
                f"{k} {v:+.1f}%" for k, v in row.items() if k not in ("codec", "anchor") and not math.isnan(v)
            )
            click.echo(f"{media}: {row['codec']} vs {row['anchor']}: BD-rate {vals or 'n/a'}")
    for media, rows in summary["bd_rate_per_file"].items():
        for row in rows:
            click.echo(
                f"{media}: {row['codec']} vs {row['anchor']}, file by file ({row['metric']}): "
                f"mean {_percent(row['mean'])}, better on {row['better']} of {row['compared']}"
            )
    if summary["errors"]:
        click.echo(f"{len(summary['errors'])} errors (see {out / 'report.md'})", err=True)
    click.echo(f"report: {out / 'report.md'}, {out / 'report.html'}")


def _command_line(ctx: click.Context) -> str:
    """This eval as one shell command, from its parsed parameters (for report.html)."""
    words = ["mcodec", "eval"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        values = value if isinstance(value, tuple) else () if value is None else (value,)
        if isinstance(param, click.Argument):
            words += [str(v) for v in values]
        else:
            words += [w for v in values for w in (param.opts[0], str(v))]
    return shlex.join(words)


def _weights(pairs: tuple[str, ...]) -> dict[str, Path]:
    """CODEC=FILE pairs -> {codec: file}; the codec must exist and the file be readable."""
    from mcodec.codec import registry

    out = {}
    for pair in pairs:
        codec, sep, file = pair.partition("=")
        if not sep or not codec or not file:
            raise click.UsageError(f"--weights takes CODEC=FILE, got {pair!r}")
        registry.info(codec)
        if not Path(file).is_file():
            raise CodecError(f"{file}: no such model file")
        out[codec] = Path(file)
    return out


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"
