"""What kind of media a file holds, and the checks every reader makes before opening one."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .av_lib import load_av
from .errors import MediaError


def media_kind(path: Path) -> str:
    """'image', 'video' or 'audio' for a readable file; MediaError otherwise."""
    path = Path(path)
    check_readable(path)
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) == 1 or im.format in ("PNG", "JPEG", "WEBP", "TIFF"):
                return "image"
    except Image.DecompressionBombError:
        return "image"  # an image, too large: read_image says so
    except (UnidentifiedImageError, OSError):
        pass
    av = load_av()
    empty_video = False
    for kind in ("video", "audio"):
        try:  # a fresh demuxer per kind: looking for a video frame may have read the whole file
            with av.open(str(path)) as c:
                streams = getattr(c.streams, kind)
                empty_video = empty_video or (kind == "video" and bool(streams))
                if streams and next(iter(c.decode(streams[0])), None) is not None:
                    return kind  # a stream that yields a frame, not just a header ffmpeg guessed
        except (av.FFmpegError, OSError, ValueError):
            pass
    why = " (its video stream has no decodable frames, and there is no sound)" if empty_video else ""
    raise MediaError(f"{path}: not an image, video or audio file that can be read{why}")


def check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
