"""Audio benchmark: the rvq codec against Opus (PyAV, libopus) on real bytes, and its CPU real-time factor.

    python bench/audio_rd.py [--speech DIR] [--music DIR] [--weights FILE] [--out bench-out/audio]
                             [--music-files 8] [--jobs 1] [--bitrate KBPS ...] [--rtf-seconds 30]
                             [--postfilter 0..4] [--no-high-band]

Speech (default ../shared/media/audio/speech) at 1.5/3/6/12 kbit/s: real kbit/s (file bytes, header
included), mel distance, SI-SDR, PESQ-WB, STOI. Music (the first --music-files of
../shared/media/audio/music) at 6 kbit/s: real kbit/s and mel distance. Opus at 6/8/12/16/24/32 kbit/s
on both. It runs the same harness as `mcodec eval` (report.md, rd.png in --out/speech and --out/music),
then times encode and decode of 30 s of audio (the speech files joined, repeated) on the CPU: real-time
factor = audio seconds / wall seconds, median of 3, torch's default threads; with that file's real kbit/s.
--bitrate (the speech and real-time points instead of 1.5/3/6/12) and --rtf-seconds make a quick run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchaudio

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.media_io import read_audio
from mcodec.evaluation.report import curves, write_reports
from mcodec.evaluation.runner import list_files, run_grid

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "audio"
BITRATES = (1.5, 3.0, 6.0, 12.0)


def joined_clip(files: list[Path], seconds: float, rate: int = 48000) -> torch.Tensor:
    """The files as mono at ``rate``, joined and repeated to ``seconds``: [1, N]."""
    pieces = []
    for f in files:
        audio, r = read_audio(f)
        pieces.append(torchaudio.functional.resample(audio.mean(0), r, rate) if r != rate else audio.mean(0))
    clip = torch.cat(pieces)
    clip = clip.repeat(int(seconds * rate // clip.numel()) + 1)[: int(seconds * rate)]
    return clip[None]


def real_time_factors(
    clip: torch.Tensor, rate: int, kbps: float, weights: Path | None, options: dict
) -> tuple[float, float, float]:
    """(encode and decode speed in x real time, real kbit/s of the file)."""
    seconds = clip.shape[1] / rate
    enc, dec = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        data = encode_bytes((clip, rate), "audio", "rvq", kbps, weights=weights, **options)
        t1 = time.perf_counter()
        decode_bytes(data, weights=weights)
        enc.append(t1 - t0)
        dec.append(time.perf_counter() - t1)
    return seconds / statistics.median(enc), seconds / statistics.median(dec), len(data) * 8 / seconds / 1000


def report(records: list[dict], out: Path, metrics: tuple[str, ...]) -> None:
    """The harness's reports in ``out``, and its per-point means over files as a table here."""
    write_reports(records, out)
    print(f"\n{out}: | codec | point | files | kbit/s | " + " | ".join(metrics) + " |")
    for codec, curve in sorted(curves(records)["audio"].items()):
        for i, point in enumerate(curve["points"]):
            values = " | ".join(f"{curve[m][i]:.3f}" for m in metrics)
            print(f"| {codec} | {point:g} | {curve['files']} | {curve['kbps'][i]:.2f} | {values} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", type=Path, default=MEDIA / "speech")
    ap.add_argument("--music", type=Path, default=MEDIA / "music")
    ap.add_argument("--music-files", type=int, default=8)
    ap.add_argument("--weights", type=Path, help="rvq model file (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/audio"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--bitrate", type=float, action="append", help="kbit/s (repeat; default 1.5 3 6 12)")
    ap.add_argument("--rtf-seconds", type=float, default=30.0, help="length of the clip timed")
    ap.add_argument("--postfilter", type=int, help="pitch postfilter 0 (off)..4; default: chosen per file")
    ap.add_argument("--no-high-band", action="store_true", help="code no levels above 12 kHz (highband.py)")
    args = ap.parse_args()
    options = {} if args.postfilter is None else {"postfilter": args.postfilter}
    if args.no_high_band:
        options["high_band"] = False
    bitrates = args.bitrate or list(BITRATES)
    weights = {"rvq": args.weights} if args.weights else {}
    speech = list_files([args.speech])
    music = list_files([args.music])[: args.music_files]
    records = run_grid(
        speech, args.out / "speech", ["rvq"], ["opus"], bitrates, args.jobs, weights=weights, options=options
    )
    report(records, args.out / "speech", ("mel_distance", "si_sdr", "pesq_wb", "stoi"))
    records = run_grid(
        music, args.out / "music", ["rvq"], ["opus"], [6.0], args.jobs, weights=weights, options=options
    )
    report(records, args.out / "music", ("mel_distance", "si_sdr"))
    clip = joined_clip(speech, args.rtf_seconds)
    threads = torch.get_num_threads()
    print(f"\nCPU real-time factor on {args.rtf_seconds:g} s of speech, torch threads: {threads}\n")
    # The 1-4 s speech files pay the container's ~115 fixed bytes on little audio (the encoder sheds RVQ
    # stages to stay within 10% of the request); 30 s shows the rate a longer recording gets.
    print("| kbit/s | real kbit/s | encode (x real time) | decode (x real time) |\n|---|---|---|---|")
    for kbps in bitrates:
        e, d, real = real_time_factors(clip, 48000, kbps, args.weights, options)
        print(f"| {kbps:g} | {real:.2f} | {e:.1f} | {d:.1f} |")


if __name__ == "__main__":
    main()
