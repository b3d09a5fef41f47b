"""``mcodec`` command line: encode, decode, info, codecs, demo.

Results go to stdout, progress and summaries to stderr (``--quiet`` silences them). Every failure a user
can cause ends in one line ``mcodec: error: ...`` and a non-zero exit status, never a traceback
(set MCODEC_DEBUG=1 to see one for unexpected errors).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from mcodec import USER_ERRORS, decode_file, describe, encode_file
from mcodec.codec import registry
from mcodec.rates import coded_rate

from .demo import run_demo
from .device import check_device
from .evaluate import evaluate
from .knobs import check_knobs
from .train import train

EXIT_USER_ERROR, EXIT_INTERNAL = 1, 3


def _codec_for(src: Path, codec_id: str | None) -> str | None:
    """The codec an encode of src will use; None where src is unreadable (encode_file reports that)."""
    from mcodec.codec import media_io

    if codec_id:
        registry.info(codec_id)
        return codec_id
    try:
        return registry.default_for(media_io.media_kind(src))
    except media_io.MediaError:
        return None


def _frame_range(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"expected A:B, got {text!r}", param_hint="--frames") from None
    return a, b


def _log(ctx: click.Context, msg: str) -> None:
    if not ctx.find_root().obj.get("quiet"):
        click.echo(msg, err=True)


_device_option = click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="where the networks run",
)
_weights_option = click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="model file (safetensors) instead of the codec's default weights",
)
_force_option = click.option("--force", is_flag=True, help="overwrite an existing output")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-q", "--quiet", is_flag=True, help="no progress or summaries on stderr")
@click.version_option(package_name="mcodec")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """Neural media codecs with real rANS bitstreams."""
    ctx.obj = {"quiet": quiet}


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--codec", "codec_id", help="codec id (see `mcodec codecs`); default: the media's default")
@click.option(
    "--quality",
    type=float,
    help="quality level, for image and video codecs (range per codec; default: the codec's)",
)
@click.option("--bitrate", type=float, help="nominal bitrate in kbit/s, for audio codecs (1.5, 3, 6, 12)")
@click.option(
    "--preset",
    type=click.Choice(["fast", "medium", "slow"]),
    help="encoder effort: video, how long the network is fitted (default fast); meanscale and "
    "hyperprior images, latent refinement steps (default fast: none; medium 20, slow 50); rvq audio, "
    "the beam width of the RVQ search (fast 1, default medium 4, slow 16)",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    help="video: plan the fit (at most the preset's epochs) so the whole clip takes about this long here",
)
@click.option(
    "--rate-aware/--no-rate-aware",
    default=None,
    help="video: the fit learns its quantization steps against the bits they cost (default: on)",
)
@click.option(
    "--motion/--no-motion",
    default=None,
    help="hnerv: a group whose camera pans or zooms is drawn on one canvas its frames are sampled from "
    "(default: on)",
)
@click.option(
    "--key-pictures/--no-key-pictures",
    default=None,
    help="video: each group is drawn over its median frame (a pan's or zoom's: its median canvas), coded "
    "as an image (default: on)",
)
@click.option(
    "--block-motion/--no-block-motion",
    default=None,
    help="video: a group whose content moves inside the frame is drawn over one of its frames moved block by "
    "block, and any group but a pan's or zoom's is drawn from key pictures alone (a frame in 12, each other "
    "frame's blocks moved from those around it, no network) where that costs less (default: on)",
)
@click.option(
    "--postfilter",
    type=click.IntRange(0, 4),
    help="audio (rvq): the strength of the decoder's pitch postfilter, 0 (off) .. 4 (default: the encoder "
    "chooses it per file, by decoding its first 5 s at every strength)",
)
@click.option(
    "--high-band/--no-high-band",
    default=None,
    help="audio (rvq) sampled above 24 kHz: code the levels of the band above 12 kHz, which the decoder "
    "fills with noise (~0.1 kbit/s; default: on)",
)
@click.option("--no-audio", is_flag=True, help="video: leave the sound out (default: code the first track)")
@click.option(
    "--audio-bitrate",
    type=float,
    help="video with sound: the sound's bitrate in kbit/s (default: the audio codec's default)",
)
@_device_option
@_weights_option
@_force_option
@click.pass_context
def encode(  # noqa: PLR0913 - one parameter per option
    ctx,
    src,
    dst,
    codec_id,
    quality,
    bitrate,
    preset,
    max_minutes,
    rate_aware,
    motion,
    key_pictures,
    block_motion,
    postfilter,
    high_band,
    no_audio,
    audio_bitrate,
    device,
    weights,
    force,
):
    """Encode the media file SRC into the mcodec file DST. A video with sound is coded with its sound
    (the first audio track) as a second stream."""
    if quality is not None and bitrate is not None:
        raise click.UsageError("give --quality or --bitrate, not both")
    t0 = time.perf_counter()
    options = {}
    if preset is not None:
        options["preset"] = preset
    used = _codec_for(src, codec_id)
    if used is not None:
        check_knobs([registry.info(used)], quality is not None, bitrate is not None)
    quality = bitrate if bitrate is not None else quality
    if used is not None and (registry.info(used).media == "video" or preset not in (None, "fast")):
        options["progress"] = not ctx.find_root().obj.get("quiet")  # fitting or refinement steps
    if preset is not None and used is not None and preset not in registry.info(used).presets:
        raise click.UsageError(f"codec {used} has no --preset {preset}")
    media = registry.info(used).media if used is not None else None
    video_only = (
        ("--max-minutes", max_minutes),
        ("--rate-aware", rate_aware),
        ("--key-pictures", key_pictures),
        ("--block-motion", block_motion),
    )
    for flag, value in video_only:
        if value is not None and media not in (None, "video"):
            raise click.UsageError(f"{flag} is for video codecs; {used} codes {media}")
    if motion is not None and used is not None and used != "hnerv" and media in (None, "video"):
        raise click.UsageError(f"--motion is for the hnerv codec, not {used}")
    if motion is not None and media not in (None, "video"):
        raise click.UsageError(f"--motion is for the hnerv codec; {used} codes {media}")
    rvq_only = (("--postfilter", "postfilter", postfilter), ("--high-band", "high_band", high_band))
    for flag, key, value in rvq_only:
        if value is not None:
            if used not in (None, "rvq"):  # None: src is unreadable, which encode_file reports
                raise click.UsageError(f"{flag} is for the rvq audio codec, not {used}")
            options[key] = value
    if media not in (None, "video") and (no_audio or audio_bitrate is not None):
        raise click.UsageError("--no-audio and --audio-bitrate are for video files (movies with sound)")
    if audio_bitrate is not None:
        check_knobs([registry.info(registry.default_for("audio"))], False, True)
    if media == "video":
        options["max_minutes"] = max_minutes
        if rate_aware is not None:
            options["rate_aware"] = rate_aware
        if motion is not None:
            options["motion"] = motion
        if key_pictures is not None:
            options["key_pictures"] = key_pictures
        if block_motion is not None:
            options["block_motion"] = block_motion
        options["log"] = lambda msg: _log(ctx, msg)  # the time plan, or the expected time of a slow clip
    r = encode_file(
        src,
        dst,
        codec_id,
        quality,
        check_device(device),
        weights,
        force,
        audio=not no_audio,
        audio_bitrate=audio_bitrate,
        **options,
    )
    first, *more = r.streams
    value, unit = coded_rate(first["bytes"] if more else r.output_bytes, r.media, r.params)
    rate = f", {value:.4f} {unit}" if unit == "bpp" else f", {value:.2f} {unit}"
    sound = "".join(f"; {_stream_summary(s)}" for s in more)
    knob = f"{registry.info(r.codec).unit} {r.quality:g}"
    _log(
        ctx,
        f"{src} ({r.input_bytes} bytes) -> {dst} ({r.output_bytes} bytes{rate}) "
        f"codec {r.codec} {knob}{sound} in {time.perf_counter() - t0:.2f} s",
    )
    if r.media == "video" and not no_audio:
        _note_tracks(ctx, src, coded=bool(more))


def _note_tracks(ctx: click.Context, src: Path, coded: bool) -> None:
    """Say what happened to a movie's sound where it is not simply its one track, coded."""
    from mcodec.codec import media_io

    tracks = media_io.audio_tracks(src)
    if coded and tracks > 1:
        _log(ctx, f"note: {src} has {tracks} audio tracks; the first was coded")
    elif not coded and tracks:
        _log(ctx, f"note: {src} has {tracks} audio track(s) with no decodable sound; none was coded")


def _stream_summary(row: dict) -> str:
    """'sound: codec rvq, 6.12 kbit/s (4600 bytes)' for a further stream of a file."""
    value, unit = coded_rate(row["bytes"], row["media"], row["params"])
    what = "sound" if row["media"] == "audio" else row["media"]
    return f"{what}: codec {row['codec']}, {value:.2f} {unit} ({row['bytes']} bytes)"


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--frames", help="video: decode only frames A:B (first included, B excluded)")
@click.option("--no-audio", is_flag=True, help="a movie: write the video without its sound")
@_device_option
@_weights_option
@_force_option
@click.pass_context
def decode(ctx, src, dst, frames, no_audio, device, weights, force):
    """Decode the mcodec file SRC into DST (format from DST's extension). A movie (video with sound) is
    written with both tracks (.mp4: AAC, .mkv: FLAC); an audio name (.wav, .flac) takes its sound alone."""
    t0 = time.perf_counter()
    options = {"frames": _frame_range(frames)} if frames else {}
    header, _ = decode_file(src, dst, check_device(device), weights, force, audio=not no_audio, **options)
    _log(ctx, f"{src} -> {dst} ({header.media}, codec {header.codec}) in {time.perf_counter() - t0:.2f} s")


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def info(src, as_json):
    """Describe the mcodec file SRC: media, codec, model, sizes, chunks."""
    d = describe(src)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{d['file']}: mcodec {d['version']}, {d['bytes']} bytes")
    click.echo(f"  media     {d['media']}  " + "  ".join(f"{k}={v}" for k, v in sorted(d["params"].items())))
    click.echo(f"  codec     {d['codec']}  model {d['model_id'] or '-'}  profile {d['determinism_profile']}")
    click.echo(f"  weights   sha256 {d['weights_sha256']}")
    click.echo(f"  tables    sha256 {d['tables_sha256']}")
    click.echo("  chunks    " + "  ".join(f"{c['type']}:{c['bytes']}" for c in d["chunks"]))
    if len(d["streams"]) > 1:
        for i, s in enumerate(d["streams"]):
            value, unit = coded_rate(s["bytes"], s["media"], s["params"])
            click.echo(
                f"  stream {i}  {s['media']:<5} codec {s['codec']}  model {s['model_id'] or '-'}  "
                f"{s['bytes']} bytes ({value:.4g} {unit})"
            )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def codecs(as_json):
    """List the registered codecs."""
    rows = [
        {
            "id": i.id,
            "media": i.media,
            "qualities": list(i.qualities),
            "unit": i.unit,
            "points": i.rate_points(),
            "default_quality": i.default_quality,
            "default": registry.default_for(i.media) == i.id,
            "presets": list(i.presets),
            "default_preset": i.default_preset,
            "description": i.description,
        }
        for i in registry.available()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        lo, hi = r["qualities"]
        mark = "*" if r["default"] else " "
        click.echo(
            f"{mark} {r['id']:<32} {r['media']:<6} {r['unit']} {lo:g}..{hi:g} "
            f"(default {r['default_quality']:g})  {r['description']}"
        )


@cli.command()
@click.option("--quality", type=float, help="quality level of the image and video codecs (default: each's)")
@click.option("--bitrate", type=float, help="bitrate in kbit/s of the audio codec (default: its default)")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="folder for the bitstreams and reconstructions",
)
@click.pass_context
def demo(ctx, quality, bitrate, out):
    """Encode and decode the sample media shipped with mcodec; print sizes, rate and quality."""
    run_demo(out, quality, log=None if ctx.find_root().obj.get("quiet") else sys.stderr, bitrate=bitrate)


cli.add_command(train)
cli.add_command(evaluate)


def main(argv: list[str] | None = None, prog_name: str | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name=prog_name, standalone_mode=False)
        sys.exit(code or 0)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("mcodec: aborted", err=True)
        sys.exit(EXIT_USER_ERROR)
    except USER_ERRORS as e:
        click.echo(f"mcodec: error: {_one_line(e)}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("mcodec: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the promise is: never a traceback
        if os.environ.get("MCODEC_DEBUG"):
            raise
        click.echo(
            f"mcodec: error: internal error ({type(e).__name__}: {_one_line(e)}); "
            "rerun with MCODEC_DEBUG=1 for details",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
