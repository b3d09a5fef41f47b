"""``mcodec demo``: round trip of the sample media shipped in the package, with a summary table."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

import click

from mcodec import decode_file, encode_file
from mcodec.codec import CodecError, media_io, registry
from mcodec.evaluation.metrics import psnr_rgb
from mcodec.rates import bits_per_pixel, kbit_per_second

SAMPLES = Path(str(files("mcodec") / "samples"))
OUTPUT_SUFFIX = {"image": ".png", "video": ".mkv", "audio": ".wav"}


def run_demo(out: Path, quality: float | None, log=sys.stderr, bitrate: float | None = None) -> list[dict]:
    """Encode and decode every sample into ``out``; prints one table row per sample to stdout.
    ``quality`` goes to the quality-level codecs (image, video), ``bitrate`` (kbit/s) to the bitrate codecs
    (audio); None: the codec's default. Video uses the fast preset so the demo stays short."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for src in sorted(p for p in SAMPLES.iterdir() if p.is_file() and not p.name.endswith(".md")):
        kind = media_io.media_kind(src)
        try:
            codec_id = registry.default_for(kind)
            registry.get(codec_id)
        except CodecError as e:
            if log:
                print(f"skipping {src.name}: {e}", file=log)
            continue
        bitstream, rec = out / f"{src.stem}.mcd", out / f"{src.stem}.rec{OUTPUT_SUFFIX[kind]}"
        if log:
            print(f"encoding {src.name} with {codec_id} ...", file=log, flush=True)
        options = {"preset": "fast", "progress": log is not None} if kind == "video" else {}
        knob = bitrate if registry.info(codec_id).unit == "kbps" else quality
        r = encode_file(src, bitstream, quality=knob, force=True, **options)
        _, decoded = decode_file(bitstream, rec, force=True)
        if decoded is None:  # audio and video are written as they are decoded: measure the written file
            decoded = media_io.read_audio(rec) if kind == "audio" else media_io.read_video(rec)
        original = media_io.MEDIA_READERS[kind](src)
        rows.append(
            {
                "sample": src.name,
                "codec": r.codec,
                "quality": r.quality,
                "input_bytes": r.input_bytes,
                "bitstream_bytes": r.output_bytes,
                **_measures(kind, original, decoded, r.output_bytes),
            }
        )
    click.echo(
        f"{'sample':<20} {'codec':<11} {'q':>4} {'size':>12} {'input B':>9} {'coded B':>8} "
        f"{'rate':>14}  fidelity"
    )
    for r in rows:
        click.echo(
            f"{r['sample']:<20} {r['codec']:<11} {r['quality']:>4g} {r['size']:>12} {r['input_bytes']:>9} "
            f"{r['bitstream_bytes']:>8} {r['rate']:>14}  {r['measure_value']:.2f} {r['measure']}"
        )
    click.echo(f"bitstreams and reconstructions in {out}")
    return rows


def _measures(kind: str, original, decoded, nbytes: int) -> dict:
    """Size, rate and each medium's own fidelity measure, named: PSNR for images and video, SI-SDR for
    audio (a neural audio codec does not keep the waveform's phase, so its SNR is low where it sounds
    right; SI-SDR is still a waveform measure, named so it is not read as a PSNR)."""
    if kind == "image":
        _, h, w = original.shape
        bpp = bits_per_pixel(nbytes, h * w)
        return {
            "size": f"{w}x{h}",
            "bpp": bpp,
            "rate": f"{bpp:.4f} bpp",
            "measure": "PSNR dB",
            "measure_value": psnr_rgb(original, decoded),
        }
    if kind == "video":
        (frames, _), (out, _) = original, decoded
        t, _, h, w = frames.shape
        bpp = bits_per_pixel(nbytes, t * h * w)
        return {
            "size": f"{w}x{h}x{t}",
            "bpp": bpp,
            "rate": f"{bpp:.4f} bpp",
            "measure": "PSNR dB",
            "measure_value": psnr_rgb(frames, out),
        }
    from mcodec.evaluation.audio_metrics import si_sdr  # torchaudio: loaded for audio only

    (audio, rate), (out, _) = original, decoded
    kbps = kbit_per_second(nbytes, audio.shape[1] / rate)
    return {
        "size": f"{audio.shape[1] / rate:.1f}s",
        "bpp": None,
        "rate": f"{kbps:.2f} kbit/s",
        "measure": "SI-SDR dB",
        "measure_value": si_sdr(audio, out),
    }
