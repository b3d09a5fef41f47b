"""Video codecs ``hnerv`` (default) and ``nerv``: the encoder fits a network to each group of frames; the
bitstream carries the quantized, entropy-coded decoder (and HNeRV's embeddings).

Each group of frames is one ``VGOP`` chunk, decodable alone (``decode(..., frames=(a, b))`` touches only
the groups it needs). Chunk payload: u32 length + UTF-8 JSON (architecture, frame range, bits, one scale
index per tensor), the float16 quantization steps of every tensor in order, then one entropy-coded
stream of all integer symbols (decoder tensors in state-dict order, then embeddings) under the Gaussian
tables, each tensor with its own scale index. Profile ``tables``: decoding the symbols needs no network.
"""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction

import numpy as np
import torch

from mcodec.codec.base import Codec, CodecError, CodecInfo, Payload
from mcodec.codec.determinism import map_per_item
from mcodec.entropy import decode_indexed, encode_indexed, gaussian_tables, scale_indexes, scale_table

from .fit import PRESETS, fit_group
from .model import Decoder, NervConfig, plan
from .quant import dequantize, quantize, steps_for

BITS = 8
MAX_GROUP_FRAMES = 120
GROUP_BYTES = 1 << 30  # float frames of one group in memory, at most
BPP_AT_Q1 = 0.02  # rate budget of quality 1 (bits per pixel); each level doubles it
BITS_PER_WEIGHT = 6.0  # what an 8-bit weight costs after entropy coding, for sizing the network
INFOS = {
    "hnerv": CodecInfo(
        "hnerv",
        "video",
        (1, 6),
        3,
        "HNeRV: per-clip fitted decoder + per-frame embeddings (fitted on the GPU if any)",
        presets=tuple(PRESETS),
        default_preset="medium",
    ),
    "nerv": CodecInfo(
        "nerv",
        "video",
        (1, 6),
        3,
        "NeRV: per-clip fitted decoder driven by the frame index",
        presets=tuple(PRESETS),
        default_preset="medium",
    ),
}
_TABLES = gaussian_tables()
_SCALES = scale_table()


def network_for(kind: str, height: int, width: int, frames: int, quality: float) -> NervConfig:
    """The widest decoder whose parameters fit the quality's rate budget for this many pixels."""
    budget = BPP_AT_Q1 * 2 ** (quality - 1) * height * width * frames / BITS_PER_WEIGHT
    best = plan(kind, height, width, 8)
    for width0 in range(8, 257, 4):
        cfg = plan(kind, height, width, width0)
        if sum(p.numel() for p in Decoder(cfg).parameters()) > budget:
            break
        best = cfg
    return best


def group_ranges(frames: int, height: int, width: int) -> list[tuple[int, int]]:
    size = max(1, min(MAX_GROUP_FRAMES, GROUP_BYTES // (12 * height * width)))
    groups = math.ceil(frames / size)
    size = math.ceil(frames / groups)  # even groups
    return [(a, min(a + size, frames)) for a in range(0, frames, size)]


class NervCodec(Codec):
    profile = "tables"
    tables_hash = _TABLES.sha256()

    def __init__(self, kind: str, weights=None):
        if weights is not None:
            raise CodecError(f"{kind} has no model file: the network is fitted to each clip")
        self.kind, self.info, self.model_id = kind, INFOS[kind], kind

    def encode(
        self,
        item,
        quality: float,
        device: str = "cpu",
        preset: str = "medium",
        progress: bool = True,
        **options,
    ) -> Payload:
        """item: (uint8 frames [T, 3, H, W], frame rate)."""
        frames, rate = item
        self.check_preset(preset)
        t, c, h, w = frames.shape
        if t < 1 or c != 3:
            raise CodecError("video needs at least one RGB frame")
        rate = Fraction(rate).limit_denominator(1 << 20)
        chunks = []
        for a, b in group_ranges(t, h, w):
            cfg = network_for(self.kind, h, w, b - a, quality)
            label = f"{self.kind} frames {a}-{b - 1}"
            fit = fit_group(frames[a:b], cfg, BITS, preset, device, progress=progress, label=label)
            chunks.append(("VGOP", _write_group(cfg, a, b, fit)))
        params = {
            "width": w,
            "height": h,
            "frames": t,
            "fps_num": rate.numerator,
            "fps_den": rate.denominator,
            "quality": float(quality),
            "preset": preset,
        }
        return Payload(params, chunks)

    def decode(self, payload: Payload, device: str = "cpu", frames: tuple[int, int] | None = None, **options):
        p = payload.params
        t, h, w = p["frames"], p["height"], p["width"]
        a, b = frames or (0, t)
        if not 0 <= a < b <= t:
            raise CodecError(f"frame range {a}:{b} outside the clip's 0:{t}")
        out = []
        for ctype, data in payload.chunks:
            if ctype != "VGOP":
                raise CodecError(f"unexpected chunk {ctype}")
            first, count = _group_range(data)
            if first + count <= a or first >= b:
                continue  # a group outside the requested range is not decoded
            lo, hi = max(a, first) - first, min(b, first + count) - first
            out.append(_read_group(data, h, w, device, lo, hi))
        video = torch.cat(out) if out else torch.zeros(0, 3, h, w, dtype=torch.uint8)
        if video.shape[0] != b - a:
            raise CodecError(f"groups cover {video.shape[0]} of the {b - a} frames asked for")
        return video, Fraction(p["fps_num"], p["fps_den"])


def _tensor_symbols(decoder: Decoder):
    for name, param in decoder.state_dict().items():
        steps = steps_for(param, BITS)
        yield name, param, steps, quantize(param, steps)


def _write_group(cfg: NervConfig, first: int, last: int, fit) -> bytes:
    symbols, indexes, steps, tensors = [], [], [], []
    parts = list(_tensor_symbols(fit.decoder))
    if fit.embed_symbols is not None:  # embeddings: one step per channel, coded like a [d, ...] tensor
        parts.append(("embeddings", None, fit.embed_steps, fit.embed_symbols.transpose(0, 1).contiguous()))
    for name, _, st, sym in parts:
        s = sym.numpy().reshape(-1)
        idx = int(scale_indexes(np.array([max(float(np.std(s)), 1e-3)]), _SCALES)[0])
        tensors.append({"name": name, "shape": list(sym.shape), "idx": idx, "steps": int(st.numel())})
        symbols.append(s)
        indexes.append(np.full(s.size, idx, dtype=np.uint8))
        steps.append(st.half().numpy())
    header = json.dumps(
        {"config": cfg.to_json(), "first": first, "count": last - first, "bits": BITS, "tensors": tensors},
        separators=(",", ":"),
    ).encode()
    stream = encode_indexed(np.concatenate(symbols), np.concatenate(indexes), _TABLES)
    return struct.pack("<I", len(header)) + header + np.concatenate(steps).astype("<f2").tobytes() + stream


def _parse(data: bytes) -> tuple[dict, int]:
    if len(data) < 4:
        raise CodecError("truncated video group")
    (n,) = struct.unpack_from("<I", data)
    if n > len(data) - 4 or n > 1 << 20:
        raise CodecError("bad video group header length")
    try:
        return json.loads(data[4 : 4 + n]), 4 + n
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CodecError("video group header is not valid JSON") from None


def _group_range(data: bytes) -> tuple[int, int]:
    head, _ = _parse(data)
    return int(head["first"]), int(head["count"])


def _read_group(data: bytes, height: int, width: int, device: str, lo: int, hi: int) -> torch.Tensor:
    """Frames lo..hi-1 of the group (uint8 [hi - lo, 3, height, width])."""
    head, pos = _parse(data)
    try:
        cfg = NervConfig.from_json(head["config"])
        if (
            cfg.height < height
            or cfg.width < width
            or cfg.height > 2 * height + 160
            or cfg.width > 2 * width + 160
        ):
            raise CodecError("video group architecture does not match the frame size")
        decoder = Decoder(cfg)
        expected = {k: list(v.shape) for k, v in decoder.state_dict().items()}
        tensors = head["tensors"]
        names = [t["name"] for t in tensors]
        kind_ok = names[: len(expected)] == list(expected) and all(
            t["shape"] == expected[t["name"]] for t in tensors[: len(expected)]
        )
        if not kind_ok or len(tensors) != len(expected) + (cfg.kind == "hnerv"):
            raise CodecError("video group tensors do not match its architecture")
        if cfg.kind == "hnerv":
            d, h0, w0 = cfg.embed_dim, *cfg.grid
            shape = tensors[-1]["shape"]
            if len(shape) != 4 or shape[0] != d or shape[2:] != [h0, w0] or shape[1] != head["count"]:
                raise CodecError("video group embeddings do not match its architecture")
        counts = [int(np.prod(t["shape"])) for t in tensors]
        n_steps = sum(int(t["steps"]) for t in tensors)
        steps = np.frombuffer(data, "<f2", n_steps, pos).astype(np.float32)
        indexes = np.concatenate(
            [np.full(c, int(t["idx"]), np.uint8) for c, t in zip(counts, tensors, strict=True)]
        )
        symbols = decode_indexed(data[pos + 2 * n_steps :], indexes, _TABLES)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CodecError):
            raise
        raise CodecError(f"corrupt video group ({type(e).__name__})") from None
    state, s_pos, st_pos = {}, 0, 0
    values = []
    for t, c in zip(tensors, counts, strict=True):
        sym = torch.from_numpy(symbols[s_pos : s_pos + c].astype(np.int64)).view(t["shape"])
        st = torch.from_numpy(steps[st_pos : st_pos + t["steps"]].copy())
        values.append(dequantize(sym, st))
        s_pos, st_pos = s_pos + c, st_pos + t["steps"]
    state = dict(zip(expected, values[: len(expected)], strict=True))
    decoder.load_state_dict(state)
    if cfg.kind == "hnerv":
        inputs = values[-1].transpose(0, 1).contiguous()
    else:
        inputs = torch.arange(head["count"], dtype=torch.float32) / head["count"]
    return reconstruct(decoder, inputs[lo:hi], height, width, device)


def reconstruct(
    decoder: Decoder, inputs: torch.Tensor, height: int, width: int, device: str = "cpu"
) -> torch.Tensor:
    """Decoder inputs (HNeRV embeddings [T, d, h0, w0], NeRV times [T]) -> uint8 frames [T, 3, height,
    width]. Each frame is computed alone, a batch of one: its bytes do not depend on which other frames
    are decoded (a frame range needs only its frames) nor, on the CPU, on the thread count. One frame's
    full-resolution tensors also stay in cache, which batches of 8 did not: 2.5x faster."""
    decoder = decoder.to(device).eval()

    def frame(i: int) -> torch.Tensor:
        x = decoder(inputs[i : i + 1].to(device))[:, :, :height, :width]
        return x.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()

    out = map_per_item(frame, range(inputs.shape[0]), device)
    return torch.cat(out) if out else torch.zeros(0, 3, height, width, dtype=torch.uint8)
