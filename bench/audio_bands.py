"""Where the rvq autoencoder loses speech: PESQ-WB before and after quantization, and per frequency band
the reconstruction's energy relative to the input and its SNR.

    python bench/audio_bands.py [--checkpoint RUN/checkpoint.pt] [--speech DIR] [--files a.wav b.wav ...]

Without --checkpoint it measures the shipped model; with it, a `mcodec train audio` run's checkpoint of the
same width (for example a fine-tune from the shipped model, trained without --files to hold them out).
Defaults: four files of ../shared/media/audio/speech. One thread, so runs beside training are fair.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchaudio
from pesq import pesq

from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.media_io import read_audio

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
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = RVQAudioCodec().model
    if args.checkpoint:
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True)["model"])
    model.eval()
    scores, refs, outs = {"unquantized": [], f"{args.stages} stages": []}, [], []
    for name in args.files:
        audio, rate = read_audio(args.speech / name)
        x = torchaudio.functional.resample(audio.mean(0), rate, 24000)
        x = x[: x.numel() // 320 * 320][None, None]
        with torch.no_grad():
            z = model.encoder(x)
            ys = [
                model.decoder(z),
                model.decoder(model.quantizer.decode(model.quantizer.encode(z, args.stages))),
            ]
        ref16 = torchaudio.functional.resample(x[0, 0], 24000, 16000).numpy()
        for key, y in zip(scores, ys, strict=True):
            y16 = torchaudio.functional.resample(y[0, 0, : x.shape[-1]], 24000, 16000).numpy()
            scores[key].append(pesq(16000, ref16, y16, "wb"))
        refs.append(x[0, 0])
        outs.append(ys[1][0, 0, : x.shape[-1]])
    print("PESQ-WB: " + ", ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in scores.items()))
    sx, sy = spectrum(torch.cat(refs)), spectrum(torch.cat(outs))
    freqs = torch.linspace(0, 12000, sx.shape[0])
    print(f"| band (Hz) | energy vs input (dB), {args.stages} stages | SNR (dB) |\n|---|---|---|")
    for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True):
        band = (freqs >= lo) & (freqs < hi)
        ex, ey = sx[band].abs().pow(2).sum(), sy[band].abs().pow(2).sum()
        err = (sx[band] - sy[band]).abs().pow(2).sum()
        print(f"| {lo}-{hi} | {10 * torch.log10(ey / ex):+.1f} | {10 * torch.log10(ex / err):.1f} |")


if __name__ == "__main__":
    main()
