"""Does the streaming resampler (libswresample through PyAV, codec/audio_stream.py) cost quality against
torchaudio's whole-signal resampler, which the rvq codec used before it streamed?

    python bench/audio_resampler.py [--data ../shared/media/audio/speech] [--kbps 6]

For each file: SI-SDR (dB) of the decoded audio against the source, once through the codec as it is
(resampling inside, swresample) and once with torchaudio resampling around a 24 kHz payload; with the
bytes of both files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchaudio

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.audio.model import SAMPLE_RATE
from mcodec.codec.media_io import read_audio

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "audio" / "speech"


def si_sdr(ref: torch.Tensor, est: torch.Tensor) -> float:
    n = min(ref.numel(), est.numel())
    ref, est = ref[:n].double(), est[:n].double()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * torch.log10((target @ target) / ((est - target) @ (est - target))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=MEDIA)
    ap.add_argument("--kbps", type=float, default=6.0)
    args = ap.parse_args()
    print(f"{'file':<24} {'rate':>6} {'swr dB':>7} {'torchaudio dB':>13} {'swr B':>6} {'ta B':>6}")
    for path in sorted(p for p in args.data.iterdir() if p.is_file()):
        audio, rate = read_audio(path)
        mono = audio.mean(0, keepdim=True)
        data = encode_bytes((mono, rate), "audio", "rvq", args.kbps)
        swr = decode_bytes(data)[1][0][0]
        at_24k = torchaudio.functional.resample(mono, rate, SAMPLE_RATE)
        data_ta = encode_bytes((at_24k, SAMPLE_RATE), "audio", "rvq", args.kbps)
        ta = torchaudio.functional.resample(decode_bytes(data_ta)[1][0], SAMPLE_RATE, rate)[0]
        print(
            f"{path.name:<24} {rate:>6} {si_sdr(mono[0], swr):>7.2f} {si_sdr(mono[0], ta):>13.2f} "
            f"{len(data):>6} {len(data_ta):>6}"
        )


if __name__ == "__main__":
    main()
