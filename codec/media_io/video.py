"""Video through PyAV (ffmpeg): uint8 RGB frames [T, 3, H, W] and a frame rate, whole or as a
``VideoSource`` read group by group (``open_video``), and written group by group (``write_video_stream``)."""

from __future__ import annotations

from collections.abc import Iterable
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
from .video_source import VideoSource

MAX_FRAME_PIXELS, MAX_VIDEO_BYTES = 1 << 24, 8 << 30
MAX_FRAMES = 1 << 20  # the container's limit (FORMAT.md 4)


def open_video(path: Path, max_frames: int | None = None) -> VideoSource:
    """The first video stream of a file as a VideoSource: RGB frames read group by group while they are
    consumed (a long clip is never whole in memory), at most ``max_frames`` of them. The header is checked
    here, and the frames counted by a first pass that decodes without converting a pixel (the frame count
    a container states does not count the slots of skipped timestamps, see ``_slots``)."""
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
            rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
            limit = min(max_frames or MAX_FRAMES, MAX_FRAMES)
            count, quarter = 0, 0
            for frame in _slots(container.decode(stream), rate):
                if count == limit:
                    if max_frames:
                        break
                    raise MediaError(f"{path}: video longer than {limit} frames")
                quarter = quarter_turns(frame.rotation) if count == 0 else quarter
                count += 1
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read video ({e})") from None
    if count == 0:
        raise MediaError(f"{path}: video has no frames")
    shown = (h, w) if quarter % 2 else (w, h)  # a quarter turn swaps the sides
    return VideoSource(rate, *shown, count, lambda: _rgb_frames(path, rate, w, h, quarter))


def _slots(frames, rate: Fraction):
    """Each decoded frame once per frame slot it is shown in. A frame whose timestamp skips slots (AVI
    "drop" frames, as in tree.avi: 68 coded frames over 444 slots) is shown for all of them: the previous
    frame fills the gap, as ffmpeg's constant-rate output."""
    count, first_pts, previous = 0, None, None
    for frame in frames:
        slot = count
        if frame.pts is not None and frame.time_base is not None:
            first_pts = frame.pts if first_pts is None else first_pts
            slot = max(slot, round((frame.pts - first_pts) * frame.time_base * rate))
        while previous is not None and count < slot:
            yield previous
            count += 1
        yield frame
        count, previous = count + 1, frame


def _rgb_frames(path: Path, rate: Fraction, width: int, height: int, quarter: int = 0):
    """uint8 [3, H, W] per slot (numpy views of the decoder's [height, width, 3] turned ``quarter``
    quarters counter-clockwise, as players show it), decoded as they are consumed."""
    av = load_av()
    try:
        with av.open(str(path)) as container:
            last, rgb = None, None
            for frame in _slots(container.decode(container.streams.video[0]), rate):
                if frame is not last:  # a repeated frame is converted once
                    last, rgb = frame, frame.to_ndarray(format="rgb24")
                    if rgb.shape != (height, width, 3):
                        w, h = rgb.shape[1], rgb.shape[0]
                        raise MediaError(f"{path}: frame size changes from {width}x{height} to {w}x{h}")
                    rgb = np.rot90(rgb, quarter).transpose(2, 0, 1)
                yield rgb
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot read video ({e})") from None


def read_video(path: Path, max_frames: int | None = None) -> tuple[torch.Tensor, Fraction]:
    """uint8 [T, 3, H, W] RGB frames of the first video stream, and its frame rate (frames/s), whole in
    memory (at most MAX_VIDEO_BYTES of frames; ``open_video`` reads a longer clip group by group)."""
    source = open_video(path, max_frames)
    limit = MAX_VIDEO_BYTES // (3 * source.width * source.height)
    if source.frames > limit:
        raise MediaError(f"{path}: video longer than {limit} frames")
    return source.read()


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0..3) that put a frame upright as players show it: ``rotation`` is
    the display matrix's angle in degrees (PyAV's ``frame.rotation``; a phone's portrait video has -90 and
    is turned a quarter clockwise). Angles off the quarter turns are rounded to the nearest one."""
    return round(rotation / 90) % 4


def write_video(
    path: Path,
    frames: torch.Tensor,
    rate: Fraction,
    force: bool = False,
    crf: int = 18,
    sound: AudioStream | None = None,
) -> None:
    """frames: uint8 [T, 3, H, W]. .mkv: lossless FFV1 (RGB); .y4m: raw YUV 4:4:4; .mp4: x264 4:2:0.
    ``sound``: a movie's audio, as ``write_video_stream`` takes it."""
    t, _, h, w = frames.shape
    write_video_stream(path, [frames], rate, w, h, force, crf, sound)


def write_video_stream(
    path: Path,
    groups: Iterable[torch.Tensor],
    rate: Fraction,
    width: int,
    height: int,
    force: bool = False,
    crf: int = 18,
    sound: AudioStream | None = None,
) -> None:
    """Groups of uint8 frames [n, 3, height, width] written as they come, atomically: an error while the
    groups are produced leaves no output. Formats as ``write_video``. ``sound``: the movie's audio from
    time zero, muxed beside the frames, each frame's worth after it (movie.SOUND_FORMATS)."""
    av = load_av()
    path = Path(path)
    fmt, codec, pix_fmt = output_format(path, "video")
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise MediaError(f"{path}: mp4 (x264 4:2:0) needs even dimensions, got {width}x{height}; use .mkv")
    if sound is not None:
        check_sound_output(path)
    with atomic_output(path, force) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as out:
            stream = out.add_stream(codec, rate=Fraction(rate))
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if codec == "libx264":
                stream.options = {"crf": str(crf), "preset": "medium"}
            track = SoundTrack(out, path, sound) if sound is not None else None
            written = 0
            for frames in groups:
                if tuple(frames.shape[1:]) != (3, height, width):
                    raise ValueError(f"frames {list(frames.shape)} in a {width}x{height} video")
                for arr in frames.permute(0, 2, 3, 1).numpy():
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                    out.mux(stream.encode(frame.reformat(format=pix_fmt)))
                    written += 1
                    if track:  # interleaved: the sound of each frame follows it
                        track.fill_until(written / Fraction(rate))
                del frames  # before the next group is decoded: one in memory, not two
            out.mux(stream.encode())
            if track:
                track.finish()
