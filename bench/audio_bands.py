"""Where the rvq autoencoder loses speech: PESQ-WB before and after quantization, and per frequency band
the reconstruction's energy relative to the input and its SNR.

    python bench/audio_bands.py [--checkpoint RUN/checkpoint.pt] [--speech DIR] [--files a.wav b.wav ...]
                                [--stages 8] [--json out.json]

Without --checkpoint it measures the shipped model; with it, a `mcodec train audio` run's checkpoint of the
same width (for example a fine-tune from the shipped model, trained without --files to hold them out): the
held-out PESQ-WB the rvq model card tracks during training. The RVQ search is greedy (a beam of 1).
Defaults: four files of ../shared/media/audio/speech. One thread, so runs beside training are fair.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchaudio
from pesq import pesq

from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.audio.model import HOP, SAMPLE_RATE
from mcodec.codec.media_io import read_audio
from mcodec.codec.training.checkpoint import load_checkpoint

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "media" / "audio" / "speech"
EDGES = (0, 500, 1000, 2000, 4000, 8000, 12000)


def spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--speech", type=Path, default=SPEECH)
    ap.add_argument(
        "--files", nargs="+", default=["numbers.wav", "something.wav", "goforward.wav", "cards_003.wav"]
    )
    ap.add_argument("--stages", type=int, default=8)
    ap.add_argument("--json", type=Path, help="write the scores and bands to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = RVQAudioCodec().model
    if args.checkpoint:
        step, _ = load_checkpoint(args.checkpoint, model, {}, {}, "cpu")
        print(f"{args.checkpoint}: step {step}")
    model.eval()
    scores, refs, outs = {"unquantized": [], f"{args.stages} stages": []}, [], []
    for name in args.files:
        audio, rate = read_audio(args.speech / name)
        x = torchaudio.functional.resample(audio.mean(0), rate, SAMPLE_RATE)
        x = x[: x.numel() // HOP * HOP][None, None]  # [1, 1, N]
        with torch.no_grad():
            ys = [model.decoder(model.encoder(x)), model.decode(model.encode(x, args.stages))]
        ref16 = torchaudio.functional.resample(x[0, 0], SAMPLE_RATE, 16000).numpy()
        for key, y in zip(scores, ys, strict=True):
            y16 = torchaudio.functional.resample(y[0, 0, : x.shape[-1]], SAMPLE_RATE, 16000).numpy()
            scores[key].append(pesq(16000, ref16, y16, "wb"))
        refs.append(x[0, 0])
        outs.append(ys[1][0, 0, : x.shape[-1]])
    print("PESQ-WB: " + ", ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in scores.items()))
    sx, sy = spectrum(torch.cat(refs)), spectrum(torch.cat(outs))
    freqs = torch.linspace(0, SAMPLE_RATE / 2, sx.shape[0])
    print(f"| band (Hz) | energy vs input (dB), {args.stages} stages | SNR (dB) |\n|---|---|---|")
    bands = []
    for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True):
        band = (freqs >= lo) & (freqs < hi)
        ex, ey = sx[band].abs().pow(2).sum(), sy[band].abs().pow(2).sum()
        err = (sx[band] - sy[band]).abs().pow(2).sum()
        energy_db, snr_db = float(10 * torch.log10(ey / ex)), float(10 * torch.log10(ex / err))
        bands.append({"low_hz": lo, "high_hz": hi, "energy_db": energy_db, "snr_db": snr_db})
        print(f"| {lo}-{hi} | {energy_db:+.1f} | {snr_db:.1f} |")
    if args.json:
        pesq_wb = {k: sum(v) / len(v) for k, v in scores.items()}
        args.json.write_text(json.dumps({"files": args.files, "pesq_wb": pesq_wb, "bands": bands}, indent=2))


if __name__ == "__main__":
    main()
