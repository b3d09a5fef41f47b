"""The output formats mcodec writes, chosen by the output file's extension."""

from __future__ import annotations

from pathlib import Path

from .errors import MediaError

IMAGE_WRITE_FORMATS = {
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".webp": "WEBP",
}
# extension -> (container, codec, pixel format)
VIDEO_WRITE_FORMATS = {
    ".mkv": ("matroska", "ffv1", "bgr0"),
    ".y4m": ("yuv4mpegpipe", "rawvideo", "yuv444p"),
    ".mp4": ("mp4", "libx264", "yuv420p"),
}
# extension -> (container, codec, sample format)
AUDIO_WRITE_FORMATS = {".wav": ("wav", "pcm_s16le", "s16"), ".flac": ("flac", "flac", "s16")}

WRITE_FORMATS = {"image": IMAGE_WRITE_FORMATS, "video": VIDEO_WRITE_FORMATS, "audio": AUDIO_WRITE_FORMATS}


def output_format(path: Path, media: str):
    """The entry of ``media``'s table for ``path``'s extension; MediaError naming the ones there are."""
    table = WRITE_FORMATS[media]
    spec = table.get(Path(path).suffix.lower())
    if spec is None:
        suffix = Path(path).suffix or "files without extension"
        what = "images" if media == "image" else media
        raise MediaError(f"{path}: cannot write {what} as {suffix} (use {', '.join(table)})")
    return spec
