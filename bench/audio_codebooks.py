"""How fully the rvq model uses its codebooks, stage by stage, on the files given (held-back voices).

    python bench/audio_codebooks.py FILE_OR_DIR... [--weights FILE] [--preset medium] [--json out.json]

Each file is coded by the codec at every stage it has (its own search: --preset's beam), and the codes
of all files are counted per stage. Per stage the table gives: the codes used (of the codebook's size),
the entropy H of the code histogram in bits and its perplexity 2^H (the codes really in use, weighted),
and the bits per code the shipped prior spends on these codes (the cross-entropy under the model file's
table for that stage, the rate the entropy coder reaches within ~1%); log2(size) is a uniform code's
cost. A stage whose perplexity is far below the size carries less than its nominal bits; one whose
prior costs much more than H has a prior that does not fit these voices.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from mcodec.codec.audio.codec import RVQAudioCodec
from mcodec.codec.media_io import read_audio


def audio_files(inputs: list[Path]) -> list[Path]:
    out = []
    for p in inputs:
        out += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return out


def stage_table(counts: np.ndarray, codec: RVQAudioCodec) -> list[dict]:
    """Rows of the per-stage figures from counts [n_q, size]."""
    rows = []
    for k, c in enumerate(counts):
        n = c.sum()
        p = c[c > 0] / n
        entropy = float(-(p * np.log2(p)).sum())
        symbols = np.repeat(np.arange(c.size), c.astype(np.int64))
        prior = codec.tables.information_bits(symbols, np.full(symbols.size, k)) / symbols.size
        rows.append(
            {
                "stage": k + 1,
                "codes": int(n),
                "used": int((c > 0).sum()),
                "size": int(c.size),
                "entropy_bits": entropy,
                "perplexity": 2**entropy,
                "prior_bits": prior,
                "uniform_bits": math.log2(c.size),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", type=Path, nargs="+")
    ap.add_argument("--weights", type=Path, help="a model file instead of the shipped one")
    ap.add_argument("--preset", default="medium", choices=["fast", "medium", "slow"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    codec = RVQAudioCodec(args.weights)
    n_q, size = codec.model.n_q, codec.model.quantizer.size
    counts = np.zeros((n_q, size), np.int64)
    files = audio_files(args.inputs)
    for f in files:
        payload = codec.encode(read_audio(f), 0.75 * n_q, preset=args.preset)
        for codes in codec.codes(payload):  # [n_q, T] per segment
            for k in range(n_q):
                counts[k] += np.bincount(codes[k].astype(np.int64), minlength=size)
    rows = stage_table(counts, codec)
    print(f"{codec.model_id}, {len(files)} files, {int(counts[0].sum())} frames, preset {args.preset}")
    print("| stage | used | perplexity | H bits | prior bits | uniform bits |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['stage']} | {r['used']}/{r['size']} | {r['perplexity']:.0f} | {r['entropy_bits']:.2f} "
            f"| {r['prior_bits']:.2f} | {r['uniform_bits']:.0f} |"
        )
    if args.json:
        report = {"model": codec.model_id, "files": len(files), "preset": args.preset, "stages": rows}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
