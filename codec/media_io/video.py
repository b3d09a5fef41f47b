"""Video through PyAV (ffmpeg): uint8 RGB frames [T, 3, H, W] and a frame rate."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from mcodec.codec.atomic_write import atomic_output

from .audio_stream import AudioStream
from .av_lib import load_av
from .errors import MediaError
from .formats import output_format
from .movie import SoundTrack, check_sound_output
from .probe import check_readable

MAX_FRAME_PIXELS, MAX_VIDEO_BYTES = 1 << 24, 8 << 30


def read_video(path: Path, max_frames: int | None = None) -> tuple[torch.Tensor, Fraction]:
    """uint8 [T, 3, H, W] RGB frames of the first video stream, and its frame rate (frames/s)."""
    av = load_av()
    path = Path(path)
    check_readable(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if not (1 <= w and 1 <= h and w * h <= MAX_FRAME_PIXELS):
                raise MediaError(f"{path}: video of {w}x{h} pixels is outside the supported size")
            limit = min(max_frames or (1 << 20), MAX_VIDEO_BYTES // (3 * w * h))
            rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
            frames, first_pts = [], None
            for frame in container.decode(stream):
                # A frame whose timestamp skips slots (AVI "drop" frames, as in tree.avi: 68 coded frames
                # over 444 slots) is shown for all of them: repeat it, as ffmpeg's constant-rate output.
                slot = len(frames)
                if frame.pts is not None and frame.time_base is not None:
                    first_pts = frame.pts if first_pts is None else first_pts
                    slot = max(slot, round((frame.pts - first_pts) * frame.time_base * rate))
                image = upright(frame.to_ndarray(format="rgb24"), frame.rotation)
                while len(frames) <= slot:
                    if len(frames) >= limit:
                        if max_frames:
                            break
                        raise MediaError(f"{path}: video longer than {limit} frames")
                    frames.append(frames[-1] if frames and len(frames) < slot else image)
                if len(frames) >= limit and max_frames:
                    break
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read video ({e})") from None
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), rate


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """An [H, W, 3] frame turned as players show it: ``rotation`` is the display matrix's angle in degrees
    (PyAV's ``frame.rotation``, counter-clockwise; a phone's portrait video has -90 and is turned 90
    degrees clockwise). Angles off the quarter turns are rounded to the nearest one."""
    quarter = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


def write_video(
    path: Path,
    frames: torch.Tensor,
    rate: Fraction,
    force: bool = False,
    crf: int = 18,
    sound: AudioStream | None = None,
) -> None:
    """frames: uint8 [T, 3, H, W]. .mkv: lossless FFV1 (RGB); .y4m: raw YUV 4:4:4; .mp4: x264 4:2:0.
    ``sound``: the movie's audio from time zero, muxed beside the frames (movie.SOUND_FORMATS)."""
    av = load_av()
    path = Path(path)
    fmt, codec, pix_fmt = output_format(path, "video")
    t, _, h, w = frames.shape
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise MediaError(f"{path}: mp4 (x264 4:2:0) needs even dimensions, got {w}x{h}; use .mkv")
    if sound is not None:
        check_sound_output(path)
    with atomic_output(path, force) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            stream = out.add_stream(codec, rate=Fraction(rate))
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "medium"}
            track = SoundTrack(out, path, sound) if sound is not None else None
            for i, arr in enumerate(frames.permute(0, 2, 3, 1).numpy()):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                out.mux(stream.encode(frame.reformat(format=pix_fmt)))
                if track:  # interleaved: the sound of each frame follows it
                    track.fill_until((i + 1) / Fraction(rate))
            out.mux(stream.encode())
            if track:
                track.finish()
