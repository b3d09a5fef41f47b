"""The rvq decoder's pitch postfilter (FORMAT.md 6.3.1): a comb at the pitch period of voiced speech.

Between the harmonics of voiced speech the decoder leaves noise (most audibly below ~1 kHz, where PESQ
listens hardest) and above ~1 kHz it replaces the harmonics with noise of the right envelope. Averaging
each sample with the samples one pitch period before and after keeps what repeats at that period (the
harmonics) and thins what does not, as the long-term postfilters of CELP speech decoders do. The period and
a voicing degree are found on the decoded signal itself, so the filter costs no bits; the file carries
only its strength (``postfilter``, in quarters). On 64 training files at 6 kbit/s, strength 2 raised
PESQ-WB 2.32 -> 2.51; on the 52 held-back files 2.24 -> 2.45 (codec/models/rvq.md, session 42).

Analysis: the 24 kHz span low-passed at 1 kHz and decimated to 8 kHz; every 5 ms the normalized
correlation of a 30 ms window with itself one lag earlier, for lags of 60-400 Hz; the shortest lag within
90% of the best (so not a multiple of the period), moved to its local peak and refined by a parabola.
"""

from __future__ import annotations

import math

import torch

RATE = 24000
DECIMATE = 3  # analysis at 8 kHz
CUTOFF = 1000.0  # Hz: the analysis sees the low harmonics, which the decoder keeps
HALF_TAPS = 36  # the analysis low-pass filter has 2 x 36 + 1 taps (3 ms)
COMB_CUTOFF = 2000.0  # Hz: the comb's change is kept below this (above, it cost STOI and mel distance)
COMB_HALF_TAPS = 48  # its low-pass filter: 2 x 48 + 1 taps (4 ms)
HOP = 40  # analysis samples (8 kHz) between frame centres: 5 ms
HALF_WINDOW = 120  # 30 ms windows
LAG_MIN, LAG_MAX = 20, 134  # 8 kHz samples: 400 .. 60 Hz
NEAR_BEST = 0.9  # the shortest lag whose correlation is within this fraction of the best
VOICED = 0.5  # correlation at and below which the filter is off; it is full strength at 1
MAX_STRENGTH = 4  # the strength is postfilter / 4
FFT = 512  # >= 2 HALF_WINDOW + LAG_MAX


def lowpass_taps(cutoff: float = CUTOFF, half: int = HALF_TAPS) -> torch.Tensor:
    """Hann-windowed sinc at ``cutoff`` Hz (24 kHz), summing to 1: float64 [2 half + 1]."""
    k = torch.arange(-half, half + 1, dtype=torch.float64)
    h = torch.sinc(2 * cutoff / RATE * k) * (1 + torch.cos(math.pi * k / (half + 1))) / 2
    return h / h.sum()


def analysis_signal(x: torch.Tensor) -> torch.Tensor:
    """x float64 [N] at 24 kHz -> low-passed at 1 kHz, every third sample from sample 0: [ceil(N / 3)],
    a[m] = sum_k h[k] x[3m + k - HALF_TAPS] (x zero outside), summed in the order of k."""
    h, m = lowpass_taps(), -(-x.numel() // DECIMATE)
    padded = torch.nn.functional.pad(x, (HALF_TAPS, HALF_TAPS + DECIMATE))
    out = torch.zeros(m, dtype=torch.float64)
    for k in range(2 * HALF_TAPS + 1):  # polyphase: 73 strided multiply-adds (a float64 conv1d is 7x slower)
        out += h[k] * padded[k : k + DECIMATE * m : DECIMATE]
    return out


def pitch_track(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frame centres in 24 kHz samples, pitch lag in 24 kHz samples, voicing 0..1), float64 [F] each."""
    a = analysis_signal(x)
    centres = torch.arange(0, a.numel(), HOP)
    pad = torch.nn.functional.pad(a, (HALF_WINDOW + LAG_MAX, HALF_WINDOW))
    # window j covers a[c_j - HALF_WINDOW, c_j + HALF_WINDOW); a lag t reads it t samples earlier
    span = pad.unfold(0, 2 * HALF_WINDOW + LAG_MAX, 1)[centres]  # [F, W + LAG_MAX]: from c_j - W/2 - LAG_MAX
    now = span[:, LAG_MAX:]  # [F, W]
    # dot[j, s]: window j against the window starting s samples into its span (lag LAG_MAX - s), by FFT
    # rather than an [F, lags, W] tensor; the transform is long enough for those s not to wrap around
    spectrum = torch.fft.rfft(span, FFT) * torch.fft.rfft(now, FFT).conj()
    dot = torch.fft.irfft(spectrum, FFT)[:, : LAG_MAX + 1]  # [F, LAG_MAX + 1]
    sq = torch.nn.functional.pad(torch.cumsum(span * span, 1), (1, 0))
    past_energy = sq[:, 2 * HALF_WINDOW :] - sq[:, : -2 * HALF_WINDOW]  # [F, LAG_MAX + 1]
    lags = torch.arange(LAG_MIN, LAG_MAX + 1)
    dot, past_energy = dot[:, LAG_MAX - lags], past_energy[:, LAG_MAX - lags]
    energy = (now * now).sum(1, keepdim=True) * past_energy
    rho = torch.where(energy > 1e-12, dot / energy.clamp_min(1e-12).sqrt(), torch.zeros_like(dot))
    best = rho.max(1, keepdim=True).values
    i = (rho >= NEAR_BEST * best).to(torch.int64).argmax(1)  # the first lag near the best
    i = torch.where(best[:, 0] > 0, i, torch.zeros_like(i))
    rows = torch.arange(rho.shape[0])
    for _ in range(LAG_MAX - LAG_MIN):  # climb to the local peak
        up = (i + 1 < lags.numel()) & (rho[rows, (i + 1).clamp_max(lags.numel() - 1)] > rho[rows, i])
        if not up.any():
            break
        i = i + up.to(torch.int64)
    inner = (i > 0) & (i < lags.numel() - 1)
    lo, mid, hi = (rho[rows, (i + d).clamp(0, lags.numel() - 1)] for d in (-1, 0, 1))
    curve = lo - 2 * mid + hi
    delta = torch.where(inner & (curve < 0), 0.5 * (lo - hi) / torch.where(curve < 0, curve, -1.0), 0.0)
    lag = (lags[i] + delta.clamp(-0.5, 0.5)) * DECIMATE
    return centres.double() * DECIMATE, lag, mid.clamp(0, 1)


def _read(x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (at least 2 samples) at fractional positions (linear interpolation), and where the position lies
    inside x."""
    inside = (pos >= 0) & (pos <= x.numel() - 1)
    p = pos.clamp(0, x.numel() - 1)
    i = p.floor().to(torch.int64).clamp_max(x.numel() - 2)
    f = p - i
    return x[i] * (1 - f) + x[i + 1] * f, inside


def pitch_postfilter(x: torch.Tensor, strength: int) -> torch.Tensor:
    """One span's synthesized 24 kHz samples (float32 [N]) through the comb; strength 0..MAX_STRENGTH."""
    if strength == 0 or x.numel() < 2:
        return x
    return comb(x, pitch_track(x.double()), strength)


def comb(x: torch.Tensor, track: tuple[torch.Tensor, ...], strength: int) -> torch.Tensor:
    """``pitch_postfilter`` of x (at least 2 samples) with its ``pitch_track`` found already: the encoder
    tries every strength on one track (postfilter_choice.py)."""
    xd = x.double()
    _, lag, voicing = track
    gain = strength / MAX_STRENGTH * ((voicing - VOICED) / (1 - VOICED)).clamp(0, 1)
    # frame j's values hold at its centre, 120 j; between centres they are interpolated linearly
    n = torch.arange(x.numel())
    step = HOP * DECIMATE
    j0 = torch.div(n, step, rounding_mode="floor")
    j1 = (j0 + 1).clamp_max(lag.numel() - 1)
    f = (n - j0 * step).double() / step
    f = torch.where(j1 > j0, f, torch.zeros_like(f))
    period = lag[j0] * (1 - f) + lag[j1] * f
    gain = gain[j0] * (1 - f) + gain[j1] * f
    nd = n.double()
    before, has_before = _read(xd, nd - period)
    after, has_after = _read(xd, nd + period)
    # a side outside the span is replaced by the other; with neither, the sample is left alone
    before, after = torch.where(has_before, before, after), torch.where(has_after, after, before)
    gain = torch.where(has_before | has_after, gain, torch.zeros_like(gain))
    # (1 + g)^-1/2 keeps the power of what the comb thins (noise) about constant, rather than of the harmonics
    change = ((xd + gain / 2 * (before + after)) / (1 + gain).sqrt() - xd).float()
    # kept below COMB_CUTOFF only (x zero-padded: a float32 convolution, whose last bits may vary by CPU)
    h = lowpass_taps(COMB_CUTOFF, COMB_HALF_TAPS).float()
    padded = torch.nn.functional.pad(change[None, None], (COMB_HALF_TAPS, COMB_HALF_TAPS))
    return x + torch.nn.functional.conv1d(padded, h[None, None])[0, 0]
