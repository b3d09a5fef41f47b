"""Would a context model pay for the rvq codes? Per stage, on real audio: the bits per code under the
shipped per-stage prior, how often a code repeats the previous frame's, and the bits under the best
"repeat or prior" mixture p = a [c_t = c_{t-1}] + (1 - a) prior(c_t), the cheapest temporal context.

    python bench/audio_code_context.py [--data ../shared/media/audio] [--files 16] [--stages 16]

For each subfolder of --data (speech, music), the first --files files are resampled to 24 kHz and encoded
with the default rvq model at --stages stages (1024 codes each).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchaudio

from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.audio.model import HOP, SAMPLE_RATE
from mcodec.codec.media_io import read_audio

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "audio"
ALPHAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def codes_of(codec: RVQAudioCodec, path: Path, stages: int) -> np.ndarray:
    audio, rate = read_audio(path)
    x = torchaudio.functional.resample(audio.mean(0), rate, SAMPLE_RATE)
    x = torch.nn.functional.pad(x, (0, -x.numel() % HOP))
    with torch.no_grad():
        return codec.model.encode(x[None, None], stages)[:, 0].numpy()  # [stages, T]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=MEDIA)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--stages", type=int, default=16)
    args = ap.parse_args()
    codec = RVQAudioCodec()
    tables = codec.tables
    for group in sorted(p for p in args.data.iterdir() if p.is_dir()):
        files = sorted(p for p in group.iterdir() if p.is_file())[: args.files]
        runs = [codes_of(codec, f, args.stages) for f in files]
        frames = sum(r.shape[1] for r in runs)
        print(f"{group.name}: {len(files)} files, {frames} frames")
        print(f"{'stage':>5} {'prior bits':>10} {'repeats':>8} {'mixture bits':>12} {'best a':>6}")
        total_prior = total_mix = 0.0
        for k in range(args.stages):
            prior = tables.effective_freqs(k).astype(np.float64) / 2**24  # slot 1024 is the escape
            seqs = [r[k] for r in runs]
            bits = sum(-np.log2(prior[s]).sum() for s in seqs)
            repeats = sum((s[1:] == s[:-1]).sum() for s in seqs) / sum(s.size - 1 for s in seqs)
            mixes = []
            for a in ALPHAS:
                b = sum(-np.log2(prior[s[0]]) for s in seqs)
                b += sum(-np.log2((1 - a) * prior[s[1:]] + a * (s[1:] == s[:-1])).sum() for s in seqs)
                mixes.append((b, a))
            mix, alpha = min(mixes)
            total_prior, total_mix = total_prior + bits, total_mix + mix
            print(f"{k:>5} {bits / frames:>10.3f} {repeats:>8.3f} {mix / frames:>12.3f} {alpha:>6g}")
        saved = 100 * (1 - total_mix / total_prior)
        print(f"all stages: the mixture saves {saved:.2f}% of the prior's bits\n")


if __name__ == "__main__":
    main()
