"""The RVQ audio codec (id ``rvq``): any rate and channel count in, 24 kHz mono inside, 1.5-12 kbit/s.

Encoding downmixes to mono (the original channel count is restored on decode by duplication; ``mcodec
info`` shows both), resamples to 24 kHz, and codes 10 s segments independently, each with 2400 samples
(0.1 s) of context on both sides that the decoder cross-fades, so memory stays bounded and a segment
decodes alone. Each segment is one ``ASEG`` chunk: the codes [n_q, T] stage by stage, table index =
stage, under per-stage priors learned from the training corpus (categorical tables shipped in the model
file), or under a uniform table where that is shorter (one flag byte per stage), so the real bitrate
stays at or below the nominal 0.75 kbit/s per stage. Profile ``tables``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torchaudio
from safetensors.torch import save_file

from mcodec.entropy import TableSet, decode_indexed, encode_indexed

from .audio_model import FRAME_RATE, HOP, SAMPLE_RATE, RVQAutoencoder, codebooks_for
from .base import Codec, CodecError, CodecInfo, Payload
from .determinism import map_per_item
from .weights import MODELS_DIR, load_weights

ARCH = "rvq-audio"
BITS_UNIFORM = 10.0  # a code under the uniform table (1024 codes)
SEGMENT = 10 * SAMPLE_RATE  # samples of 24 kHz audio per chunk (a multiple of HOP)
CONTEXT = 2400  # samples of context each side of a segment, cross-faded on decode (a multiple of HOP)
INFO = CodecInfo(
    "rvq",
    "audio",
    (0.75, 12.0),
    6.0,
    "residual-vector-quantized convolutional codec, 24 kHz mono, 1.5-12 kbit/s from one model",
    points=(1.5, 3.0, 6.0, 12.0),
    unit="kbps",
)


def segment_bounds(n: int) -> list[tuple[int, int, int, int]]:
    """(start, end) of each segment's core and (lo, hi) of the span it codes, in 24 kHz samples."""
    out = []
    for start in range(0, n, SEGMENT):
        end = min(start + SEGMENT, n)
        out.append((start, end, max(0, start - CONTEXT), min(n, end + CONTEXT)))
    return out


def _frames(span: int) -> int:
    return -(-span // HOP)


class RVQAudioCodec(Codec):
    info = INFO
    profile = "tables"

    def __init__(self, weights: Path | None = None):
        path = weights or MODELS_DIR / "rvq.safetensors"
        if weights is None and not path.exists():
            raise CodecError(
                "no default weights for rvq are shipped yet: train one with "
                "`mcodec train audio DIR --out FILE` and pass --weights FILE"
            )
        w = load_weights(path, ARCH)
        self.tables = w.tables("tables")
        meta = w.metadata
        self.model = RVQAutoencoder(int(meta["base"]), int(meta["dim"]), int(meta["n_q"]))
        state = {k: v.float() for k, v in w.tensors.items()}
        try:
            self.model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise CodecError(
                f"{path.name} does not fit the rvq model: {str(e).splitlines()[0][:160]}"
            ) from None
        missing = {k for k in set(self.model.state_dict()) - set(state) if ".ema_" not in k}
        if missing:
            raise CodecError(f"{path.name} lacks tensors: {', '.join(sorted(missing)[:3])}")
        if self.tables.num_tables != self.model.n_q + 1:
            raise CodecError(f"{path.name}: {self.tables.num_tables} tables for {self.model.n_q} stages + 1")
        self.model.eval()
        self.model_id = meta.get("model_id", "rvq")
        self.weights_hash, self.tables_hash = w.sha256, self.tables.sha256()

    def stages(self, kbps: float) -> int:
        n_q = codebooks_for(kbps)
        if not 1 <= n_q <= self.model.n_q:
            raise CodecError(f"bitrate {kbps} kbit/s is outside 0.75..{0.75 * self.model.n_q:g}")
        return n_q

    def encode(self, item, quality: float, device: str = "cpu", **options) -> Payload:
        """item: (audio float32 [C, N], sample rate in Hz); quality: the nominal bitrate in kbit/s."""
        audio, rate = item
        c, n = audio.shape
        if n == 0 or not torch.isfinite(audio).all():
            raise CodecError("audio must have samples and no NaN or infinite values")
        n_q = self.stages(quality)
        mono = audio.float().mean(0)
        if rate != SAMPLE_RATE:
            mono = torchaudio.functional.resample(mono, rate, SAMPLE_RATE)
        chunks = []
        model = self.model.to(device)
        for _, _, lo, hi in segment_bounds(mono.numel()):
            span = mono[lo:hi]
            x = torch.nn.functional.pad(span, (0, _frames(span.numel()) * HOP - span.numel()))
            codes = model.encode(x[None, None].to(device), n_q)[:, 0].cpu().numpy()  # [n_q, T]
            chunks.append(("ASEG", self._code_segment(codes)))
        params = {
            "sample_rate": int(rate),
            "channels": c,
            "coded_channels": 1,
            "samples": n,
            "kbps": float(quality),
            "n_q": n_q,
            "model_samples": int(mono.numel()),
        }
        return Payload(params, chunks)

    def decode(self, payload: Payload, device: str = "cpu", **options):
        p = payload.params
        n_q, m = p.get("n_q"), p.get("model_samples")
        if not isinstance(n_q, int) or not 1 <= n_q <= self.model.n_q:
            raise CodecError(f"invalid stage count {n_q!r}")
        if (
            not isinstance(m, int)
            or not 1 <= m <= math.ceil(p["samples"] * SAMPLE_RATE / p["sample_rate"]) + HOP
        ):
            raise CodecError(f"invalid model sample count {m!r}")
        bounds = segment_bounds(m)
        if len(payload.chunks) != len(bounds) or any(t != "ASEG" for t, _ in payload.chunks):
            raise CodecError(f"expected {len(bounds)} ASEG chunks, found {len(payload.chunks)}")
        out, weight = torch.zeros(m), torch.zeros(m)
        model = self.model.to(device)
        codes = [
            self._decode_segment(data, n_q, _frames(hi - lo))
            for (_, _, lo, hi), (_, data) in zip(bounds, payload.chunks, strict=True)
        ]

        def synthesize(c: np.ndarray) -> torch.Tensor:
            return model.decode(torch.from_numpy(c[:, None]).long().to(device))[0, 0].cpu()

        # One thread per segment: with oneDNN off, ELU splits a tensor between threads at offsets that
        # depend on the thread count, and the samples at a seam differed in the last bit.
        for (start, end, lo, hi), y in zip(bounds, map_per_item(synthesize, codes, device), strict=True):
            y = y[: hi - lo]
            w = _crossfade(hi - lo, start - lo, hi - end)
            out[lo:hi] += y * w
            weight[lo:hi] += w
        mono = out / weight.clamp_min(1e-8)
        if p["sample_rate"] != SAMPLE_RATE:
            mono = torchaudio.functional.resample(mono, SAMPLE_RATE, p["sample_rate"])
        mono = torch.nn.functional.pad(mono, (0, max(0, p["samples"] - mono.numel())))[: p["samples"]]
        return mono.clamp(-1, 1)[None].expand(p["channels"], -1).contiguous(), p["sample_rate"]

    def _code_segment(self, codes: np.ndarray) -> bytes:
        """codes [n_q, T] -> one flag byte per stage (0: the stage's learned prior, 1: uniform 10 bits,
        whichever is shorter, so no stage costs more than its nominal rate) + the entropy-coded stream."""
        n_q, t = codes.shape
        uniform = self.tables.num_tables - 1
        flags = [
            int(self.tables.information_bits(codes[k], np.full(t, k)) > BITS_UNIFORM * t) for k in range(n_q)
        ]
        indexes = np.repeat([uniform if f else k for k, f in enumerate(flags)], t)
        return bytes(flags) + encode_indexed(codes.reshape(-1), indexes, self.tables)

    def _decode_segment(self, data: bytes, n_q: int, t: int) -> np.ndarray:
        flags = data[:n_q]
        if len(flags) != n_q or any(f > 1 for f in flags):
            raise CodecError("corrupt audio segment (stage flags)")
        uniform = self.tables.num_tables - 1
        indexes = np.repeat([uniform if f else k for k, f in enumerate(flags)], t)
        codes = decode_indexed(data[n_q:], indexes, self.tables).reshape(n_q, t)
        if codes.min() < 0 or codes.max() >= self.model.quantizer.size:
            raise CodecError("code out of the codebook's range (corrupt stream)")
        return codes


def _crossfade(n: int, lead: int, tail: int) -> torch.Tensor:
    """Weights over a span: linear ramps across the 2 x CONTEXT samples shared with each neighbour."""
    w = torch.ones(n)
    if lead:
        ramp = min(2 * lead, n)
        w[:ramp] = torch.linspace(0, 1, ramp + 2)[1:-1]
    if tail:
        ramp = min(2 * tail, n)
        w[n - ramp :] = torch.minimum(w[n - ramp :], torch.linspace(1, 0, ramp + 2)[1:-1])
    return w


def export_rvq_model(
    model: RVQAutoencoder, counts: torch.Tensor, out: Path, model_id: str, extra: dict | None = None
) -> TableSet:
    """fp16 weights (EMA statistics left out) and one categorical table per stage from code counts
    [n_q, size] (add-one smoothed), and a last, uniform table."""
    pmfs = [(c + 1).numpy() for c in counts] + [np.ones(counts.shape[1])]  # last: the uniform fallback
    tables = TableSet.from_pmfs(pmfs, [0] * len(pmfs), [1e-9] * len(pmfs))
    tensors = {
        k: v.half().contiguous() if v.is_floating_point() else v.contiguous()
        for k, v in model.state_dict().items()
        if ".ema_" not in k
    }
    for name in ("freqs", "offsets", "lengths"):
        tensors[f"tables.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(tables, name)))
    meta = {
        "arch": ARCH,
        "model_id": model_id,
        "base": str(model.base),
        "dim": str(model.dim),
        "n_q": str(model.n_q),
        "sample_rate": str(SAMPLE_RATE),
        "frame_rate": str(FRAME_RATE),
        "codebook_size": json.dumps(model.quantizer.size),
        **(extra or {}),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, tmp, metadata=meta)
    tmp.replace(out)
    return tables
