"""Audio distortion measures: mel distance and SI-SDR (any audio), PESQ-WB and STOI (meant for speech).

Inputs: float32 tensors [C, N] in [-1, 1] of one shape and their sample rate; channels are averaged
to mono first (the perceptual measures are defined on mono signals).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio

from mcodec.codec.audio.si_sdr import si_sdr_db

MEL_WINDOWS = (512, 1024, 2048)


def _mono(x: torch.Tensor) -> torch.Tensor:
    return x.float().mean(0)


def si_sdr(ref: torch.Tensor, est: torch.Tensor) -> float:
    """Scale-invariant signal-to-distortion ratio in dB of the mono mixes (float64); NaN for a silent
    reference."""
    r, e = _mono(ref).double(), _mono(est).double()
    if not (r - r.mean()).any():
        return math.nan
    return float(si_sdr_db(e, r, eps=1e-20))


def mel_distance(ref: torch.Tensor, est: torch.Tensor, rate: int) -> float:
    """Mean absolute difference of log10 mel spectrograms (80 bands), averaged over window sizes
    512/1024/2048 (as DAC's multi-scale mel loss); lower is better."""
    r, e = _mono(ref), _mono(est)
    total = 0.0
    for n_fft in MEL_WINDOWS:
        mel = torchaudio.transforms.MelSpectrogram(
            rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=80, f_min=0.0, f_max=rate / 2, power=2.0
        )
        a, b = mel(r), mel(e)
        total += float((torch.log10(a.clamp_min(1e-5)) - torch.log10(b.clamp_min(1e-5))).abs().mean())
    return total / len(MEL_WINDOWS)


def _at_16k(x: torch.Tensor, rate: int) -> np.ndarray:
    mono = _mono(x)
    if rate != 16000:
        mono = torchaudio.functional.resample(mono, rate, 16000)
    return mono.numpy().astype(np.float64)


def pesq_wb(ref: torch.Tensor, est: torch.Tensor, rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, the ``pesq`` package) at 16 kHz; NaN where it cannot be computed
    (no speech found, too short)."""
    from pesq import PesqError, pesq

    try:
        return float(pesq(16000, _at_16k(ref, rate), _at_16k(est, rate), "wb"))
    except (PesqError, ValueError):
        return math.nan


def stoi(ref: torch.Tensor, est: torch.Tensor, rate: int) -> float:
    """Short-time objective intelligibility (``pystoi``), 0..1."""
    from pystoi import stoi as _stoi

    return float(_stoi(_at_16k(ref, rate), _at_16k(est, rate), 16000, extended=False))
