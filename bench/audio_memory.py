"""Peak memory of `mcodec encode` and `mcodec decode` on long audio: it must not grow with the length.

    python bench/audio_memory.py [--minutes 1 10] [--rate 48000] [--channels 2] [--bitrate 6]
                                 [--json out.json]

For each length it writes a WAV (tones and noise, written block by block), encodes and decodes it in a
child process each, and prints the child's peak resident memory (ru_maxrss) and wall time. The codec
holds a few 10 s segments at a time (codec/audio/stream.py), so both columns stay flat as the minutes grow.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from child_peak import peak

from mcodec.codec.media_io import AudioStream, write_audio_stream


def synthetic(minutes: float, rate: int, channels: int) -> AudioStream:
    rng, total, block = np.random.default_rng(0), int(minutes * 60 * rate), rate

    def blocks():
        for start in range(0, total, block):
            t = (np.arange(start, min(start + block, total)) / rate)[None]
            f = 110 * (1 + np.arange(channels))[:, None] * (1 + 0.5 * np.sin(2 * np.pi * 0.1 * t))
            noise = rng.normal(0, 0.02, (channels, t.size))
            yield (0.3 * np.sin(2 * np.pi * f * t) + noise).astype(np.float32)

    return AudioStream(rate, channels, blocks())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--bitrate", type=float, default=6.0)
    ap.add_argument("--json", type=Path, help="write the rows to this file")
    args = ap.parse_args()
    mcodec = [sys.executable, "-m", "mcodec"]
    print(f"{args.channels} ch at {args.rate} Hz, {args.bitrate:g} kbit/s, {torch.get_num_threads()} threads")
    print(f"{'minutes':>8} {'encode MB':>10} {'encode s':>9} {'decode MB':>10} {'decode s':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            src, bits, rec = Path(tmp) / "in.wav", Path(tmp) / "in.mcd", Path(tmp) / "rec.wav"
            write_audio_stream(src, synthetic(minutes, args.rate, args.channels), force=True)
            enc = peak([*mcodec, "encode", str(src), str(bits), "--bitrate", str(args.bitrate), "--force"])
            dec = peak([*mcodec, "decode", str(bits), str(rec), "--force"])
            print(f"{minutes:>8g} {enc[0]:>10.0f} {enc[1]:>9.1f} {dec[0]:>10.0f} {dec[1]:>9.1f}", flush=True)
            rows.append(
                {
                    "minutes": minutes,
                    "encode_mb": enc[0],
                    "encode_s": enc[1],
                    "decode_mb": dec[0],
                    "decode_s": dec[1],
                }
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
