"""Spectrograms of audio clips through rvq models and Opus at one bitrate: the picture a model card shows
beside its PESQ-WB, STOI and mel figures (issue 21: "look at spectrograms before and after").

    python bench/audio_spectrograms.py CLIP... --weights OLD --weights NEW [--bitrate 6] [--opus 6 8]
                                      [--seconds 4] [--postfilter 0 --postfilter 2]
                                      [--high-band 0 --high-band 1] [--rate 24000]
                                      [--out docs/rvq_spectrograms.png]

One row per clip (its first --seconds), one column each for the source, every --weights model (with
--postfilter and --high-band, every model, strength and high-band setting) and every --opus bitrate:
log-mel spectrograms (80 bands to --rate / 2, default 12 kHz; 48000 shows rvq's high band, 12-24 kHz,
of a 48 kHz clip), dB, of the decoded audio on one colour scale per row, each titled with its real kbit/s
(file bytes), mel distance and, for speech at 16 kHz or more, PESQ-WB (where it finds speech). Real encodes
and decodes through the `mcodec eval` contenders.
"""

from __future__ import annotations

import argparse
import io
import math
import warnings
from pathlib import Path

import torch
import torchaudio
from PIL import Image

from mcodec.codec.media_io import read_audio
from mcodec.evaluation.audio_metrics import mel_distance, pesq_wb
from mcodec.evaluation.contenders import OpusAnchor, OurCodec

# mel_distance's filterbank has empty bands at low rates; the metric is the project's, the warning noise
warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
RATE = 24000  # spectrograms at the codec's own rate by default: 0-12 kHz


def log_mel(audio: torch.Tensor, rate: int, to: int = RATE) -> torch.Tensor:
    """[80, frames] in dB of the mono mix at ``to`` Hz (10 ms frames)."""
    mono = audio.mean(0)
    if rate != to:
        mono = torchaudio.functional.resample(mono, rate, to)
    mels = torchaudio.transforms.MelSpectrogram(to, n_fft=1024 * to // RATE, hop_length=to // 100, n_mels=80)
    return 10 * torch.log10(mels(mono) + 1e-10)


def columns(
    item,
    weights: list[Path],
    opus: list[float],
    kbps: float,
    postfilters: list[int | None],
    high_bands: list[int | None] = (None,),
) -> list[tuple[str, object, int | None]]:
    """(label, decoded item, file bytes or None for the source) per column."""
    out = [("source", item, None)]
    for w in weights:
        for p in postfilters:  # None: the encoder's default
            for hb in high_bands:
                options = ({} if p is None else {"postfilter": p}) | (
                    {} if hb is None else {"high_band": bool(hb)}
                )
                trial = OurCodec("rvq", options=options, weights=str(w)).run(item, kbps)
                label = (
                    w.stem
                    + ("" if p is None else f", postfilter {p}")
                    + ("" if hb is None else f", band {hb}")
                )
                out.append((label, trial.decoded, trial.bytes))
    for point in opus:
        trial = OpusAnchor().run(item, point)
        out.append((f"Opus {point:g}", trial.decoded, trial.bytes))
    return out


def panel_title(label: str, audio: torch.Tensor, decoded: torch.Tensor, rate: int, size: int) -> str:
    seconds = audio.shape[1] / rate
    title = f"{label}\n{size * 8 / seconds / 1000:.2f} kbit/s, mel {mel_distance(audio, decoded, rate):.3f}"
    pesq = pesq_wb(audio, decoded, rate) if rate >= 16000 else math.nan
    return title + (f", PESQ {pesq:.2f}" if math.isfinite(pesq) else "")  # nan: no speech found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", type=Path, nargs="+")
    ap.add_argument("--weights", type=Path, action="append", default=[], help="rvq model file (repeat)")
    ap.add_argument("--bitrate", type=float, default=6.0, help="rvq kbit/s (default 6)")
    ap.add_argument("--opus", type=float, nargs="*", default=[6.0, 8.0], help="Opus kbit/s (default 6 8)")
    ap.add_argument("--seconds", type=float, default=4.0, help="the start of each clip shown (default 4)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/rvq_spectrograms.png"))
    ap.add_argument("--dpi", type=int, default=80)
    ap.add_argument(
        "--postfilter", type=int, action="append", help="rvq pitch postfilter 0..4, a column each (repeat)"
    )
    ap.add_argument(
        "--high-band", type=int, choices=(0, 1), action="append", help="rvq high band off/on, a column each"
    )
    ap.add_argument("--rate", type=int, default=RATE, help="spectrogram rate in Hz: bands to half of it")
    args = ap.parse_args()
    if not args.weights:
        raise SystemExit("audio_spectrograms: give at least one --weights model file")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    postfilters, high_bands = args.postfilter or [None], args.high_band or [None]
    n_cols = 1 + len(args.weights) * len(postfilters) * len(high_bands) + len(args.opus)
    fig, axes = plt.subplots(
        len(args.clips), n_cols, figsize=(2.6 * n_cols, 2.4 * len(args.clips)), squeeze=False, sharey=True
    )
    for row, clip in zip(axes, args.clips, strict=True):
        audio, rate = read_audio(clip)
        audio = audio[:, : int(args.seconds * rate)]
        seconds = audio.shape[1] / rate
        panels = columns((audio, rate), args.weights, args.opus, args.bitrate, postfilters, high_bands)
        specs = [log_mel(decoded[0], decoded[1], args.rate) for _, decoded, _ in panels]
        top = float(specs[0].max())
        for ax, (label, (decoded, _), size), spec in zip(row, panels, specs, strict=True):
            ax.imshow(
                spec.numpy(),
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=top - 80,
                vmax=top,
                extent=(0, seconds, 0, 80),
            )
            title = f"{clip.stem}: source" if size is None else panel_title(label, audio, decoded, rate, size)
            ax.set_title(title, fontsize=7)
            ax.tick_params(labelsize=6)
        row[0].set_ylabel(f"mel band (0-{args.rate // 2000:g} kHz)", fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=args.dpi)
    # a colour map and black text: a 256-colour palette keeps the picture and halves the bytes
    Image.open(buf).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(args.clips)} clips x {n_cols} columns)")


if __name__ == "__main__":
    main()
