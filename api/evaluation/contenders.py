"""Everything ``mcodec eval`` compares, behind one interface: our codecs and the classical anchors.

A contender encodes a media item at one rate point and decodes it back, for real: the byte count is
the size of what a user would store (our container, a JPEG/WebP/AVIF file, an mp4 or ogg file).
Media items: images uint8 [C, H, W]; video (uint8 [T, 3, H, W], frame rate); audio (float32 [C, N], Hz).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from mcodec import decode_bytes, encode_bytes
from mcodec.codec import registry

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration banner to stderr otherwise


@dataclass
class Trial:
    bytes: int
    decoded: object  # same kind as the input media item
    encode_s: float
    decode_s: float


class Contender:
    id: str
    media: str
    points: list  # default rate points (quality levels, encoder parameters or bitrates)
    point_name: str = "quality"

    def run(self, item, point) -> Trial:
        raise NotImplementedError


class OurCodec(Contender):
    def __init__(self, codec_id: str, points=None, options: dict | None = None, weights: str | None = None):
        info = registry.info(codec_id)
        self.id, self.media = codec_id, info.media
        self.weights = Path(weights) if weights else None  # a model file instead of the shipped one
        self.points = list(points) if points else info.rate_points()
        self.point_name = info.unit
        # codec settings (video: preset); video fitting progress would interleave with the grid's bar
        options = {k: v for k, v in (options or {}).items() if k != "preset" or v in info.presets}
        self.options = {**options, **({"progress": False} if info.media == "video" else {})}

    def run(self, item, point) -> Trial:
        t0 = time.perf_counter()
        data = encode_bytes(item, self.media, self.id, point, weights=self.weights, **self.options)
        t1 = time.perf_counter()
        _, decoded = decode_bytes(data, weights=self.weights)
        t2 = time.perf_counter()
        return Trial(len(data), decoded, t1 - t0, t2 - t1)


class PillowAnchor(Contender):
    """JPEG (4:2:0, optimized Huffman), WebP and AVIF through Pillow at its quality settings."""

    SETTINGS = {
        "jpeg": ("JPEG", {"optimize": True}, [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]),
        "webp": ("WEBP", {"method": 6}, [5, 15, 25, 35, 50, 65, 75, 85, 95]),
        "avif": ("AVIF", {"speed": 6}, [10, 20, 30, 40, 50, 60, 70, 80, 90]),
    }

    def __init__(self, anchor_id: str, points=None):
        self.id, self.media = anchor_id, "image"
        self.format, self.options, default_points = self.SETTINGS[anchor_id]
        self.points = list(points) if points else default_points

    def run(self, item: torch.Tensor, point) -> Trial:
        arr = item.permute(1, 2, 0).numpy()
        im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        t0 = time.perf_counter()
        im.save(buf, format=self.format, quality=int(point), **self.options)
        t1 = time.perf_counter()
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as dec:
            out = np.asarray(dec.convert("L" if arr.shape[2] == 1 else "RGB"))
        t2 = time.perf_counter()
        out = out[:, :, None] if out.ndim == 2 else out
        return Trial(len(data), torch.from_numpy(out.copy()).permute(2, 0, 1), t1 - t0, t2 - t1)


class VideoAnchor(Contender):
    """x264 / x265 (preset medium) or SVT-AV1 through PyAV at constant rate factors, 4:2:0, in mp4/mkv."""

    SETTINGS = {
        "x264": ("libx264", "mp4", {"preset": "medium"}, [18, 23, 28, 33, 38, 43]),
        # in Matroska: the mp4 muxer refused ("Not yet implemented in FFmpeg") the packets x265 ended a
        # 1-frame clip with in 19 of 20 runs (one thread or two, frame threads or not); Matroska in none
        "x265": (
            "libx265",
            "matroska",
            {"preset": "medium", "x265-params": "log-level=error"},
            [18, 23, 28, 33, 38, 43],
        ),
        "svtav1": ("libsvtav1", "matroska", {"preset": "8"}, [25, 32, 39, 46, 53, 60]),
    }
    point_name = "crf"

    def __init__(self, anchor_id: str, points=None):
        self.id, self.media = anchor_id, "video"
        self.codec, self.format, self.options, default_points = self.SETTINGS[anchor_id]
        self.points = list(points) if points else default_points

    def run(self, item, point) -> Trial:
        frames, rate = item
        t, _, h, w = frames.shape
        if self.codec == "libx265" and min(h, w) < 64:
            # libx265 corrupts the heap (the process aborts) on frames smaller than its 64x64 CTU
            raise ValueError(f"x265 needs frames of at least 64x64 pixels, got {w}x{h}")
        padded = torch.nn.functional.pad(frames, (0, w % 2, 0, h % 2), mode="replicate")  # 4:2:0 needs even
        buf = io.BytesIO()
        t0 = time.perf_counter()
        with av.open(buf, mode="w", format=self.format) as out:
            stream = out.add_stream(self.codec, rate=Fraction(rate))
            stream.width, stream.height, stream.pix_fmt = padded.shape[3], padded.shape[2], "yuv420p"
            stream.options = {**self.options, "crf": str(point)}
            for arr in padded.permute(0, 2, 3, 1).numpy():
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                out.mux(stream.encode(frame.reformat(format="yuv420p")))
            out.mux(stream.encode())
        t1 = time.perf_counter()
        data = buf.getvalue()
        with av.open(io.BytesIO(data)) as c:
            dec = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        t2 = time.perf_counter()
        decoded = torch.from_numpy(np.stack(dec)).permute(0, 3, 1, 2)[:, :, :h, :w].contiguous()
        return Trial(len(data), (decoded, rate), t1 - t0, t2 - t1)


class OpusAnchor(Contender):
    """Opus (libopus through PyAV) at target bitrates in kbit/s, in an Ogg file, at 48 kHz."""

    point_name = "kbps"

    def __init__(self, points=None):
        self.id, self.media = "opus", "audio"
        self.points = list(points) if points else [6, 8, 12, 16, 24, 32]

    def run(self, item, point) -> Trial:
        samples, rate = item
        channels = samples.shape[0]
        layout = "mono" if channels == 1 else "stereo"
        if channels > 2:
            samples, channels = samples.mean(0, keepdim=True), 1
            layout = "mono"
        buf = io.BytesIO()
        t0 = time.perf_counter()
        with av.open(buf, mode="w", format="ogg") as out:
            stream = out.add_stream("libopus", rate=48000, layout=layout)
            stream.bit_rate = int(point * 1000)
            resampler = av.AudioResampler(format="s16", layout=layout, rate=48000)
            pcm = np.clip(np.rint(samples.numpy() * 32767), -32768, 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm.T.reshape(1, -1)), format="s16", layout=layout
            )
            frame.sample_rate = rate
            for f in resampler.resample(frame) + resampler.resample(None):
                out.mux(stream.encode(f))
            out.mux(stream.encode(None))
        t1 = time.perf_counter()
        data = buf.getvalue()
        with av.open(io.BytesIO(data)) as c:
            back = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            chunks = [f.to_ndarray() for fr in c.decode(audio=0) for f in back.resample(fr)]
            chunks += [f.to_ndarray() for f in back.resample(None)]
        t2 = time.perf_counter()
        decoded = np.concatenate(chunks, axis=1)
        n = samples.shape[1]
        decoded = np.pad(decoded, ((0, 0), (0, max(0, n - decoded.shape[1]))))[:, :n]
        return Trial(len(data), (torch.from_numpy(decoded.astype(np.float32)), rate), t1 - t0, t2 - t1)


ANCHORS = {
    "jpeg": "image",
    "webp": "image",
    "avif": "image",
    "x264": "video",
    "x265": "video",
    "svtav1": "video",
    "opus": "audio",
}
DEFAULT_ANCHORS = {"image": ["jpeg", "webp", "avif"], "video": ["x264", "x265"], "audio": ["opus"]}


def make_anchor(anchor_id: str, points=None) -> Contender:
    media = ANCHORS.get(anchor_id)
    if media == "image":
        return PillowAnchor(anchor_id, points)
    if media == "video":
        return VideoAnchor(anchor_id, points)
    if media == "audio":
        return OpusAnchor(points)
    raise ValueError(f"unknown anchor {anchor_id!r} (known: {', '.join(ANCHORS)})")
