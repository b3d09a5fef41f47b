"""``mcodec demo``: round trip of the sample media shipped in the package, with a summary table."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

import click

from mcodec import decode_file, encode_file
from mcodec.codec import media_io
from mcodec.codec.metrics import psnr

SAMPLES = Path(str(files("mcodec") / "samples"))


def run_demo(out: Path, quality: float | None, log=sys.stderr) -> list[dict]:
    """Encode and decode every sample into ``out``; prints one table row per sample to stdout."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for src in sorted(p for p in SAMPLES.iterdir() if p.is_file() and not p.name.endswith(".md")):
        kind = media_io.media_kind(src)
        if kind != "image":
            continue  # video and audio codecs are not there yet
        bitstream, rec = out / f"{src.stem}.mcd", out / f"{src.stem}.rec.png"
        if log:
            print(f"encoding {src.name} ...", file=log, flush=True)
        r = encode_file(src, bitstream, quality=quality, force=True)
        _, decoded = decode_file(bitstream, rec, force=True)
        original = media_io.read_image(src)
        pixels = r.params["width"] * r.params["height"]
        rows.append(
            {
                "sample": src.name,
                "codec": r.codec,
                "quality": r.quality,
                "size": f"{r.params['width']}x{r.params['height']}",
                "input_bytes": r.input_bytes,
                "bitstream_bytes": r.output_bytes,
                "bpp": 8 * r.output_bytes / pixels,
                "psnr_db": psnr(original, decoded),
            }
        )
    click.echo(
        f"{'sample':<20} {'codec':<11} {'q':>3} {'size':>9} {'input B':>9} {'coded B':>8} "
        f"{'bpp':>7} {'PSNR dB':>8}"
    )
    for r in rows:
        click.echo(
            f"{r['sample']:<20} {r['codec']:<11} {r['quality']:>3g} {r['size']:>9} "
            f"{r['input_bytes']:>9} {r['bitstream_bytes']:>8} {r['bpp']:>7.4f} {r['psnr_db']:>8.2f}"
        )
    click.echo(f"bitstreams and reconstructions in {out}")
    return rows
