"""Reading and writing media files: Pillow for still images, PyAV (ffmpeg) for video and audio.

Images are uint8 tensors [C, H, W] with C = 1 (grayscale) or 3 (RGB); video uint8 [T, 3, H, W] with a
frame rate; audio float32 [C, N] in [-1, 1] with a sample rate, or an ``AudioStream`` of such blocks
(``open_audio``, ``write_audio_stream``) where a file may be long, and video likewise as a ``VideoSource``
read group by group (``open_video``, ``write_video_stream``). Sizes are checked from the file's
header before anything large is decoded. Writers go through ``atomic_write``, so a failed write never
leaves a partial output.
"""

from .audio import open_audio, read_audio, write_audio, write_audio_stream
from .audio_stream import AudioStream
from .errors import MediaError
from .formats import WRITE_FORMATS
from .images import read_image, write_image
from .movie import audio_tracks, has_audio, movie_audio
from .probe import media_kind
from .video import open_video, read_video, write_video, write_video_stream
from .video_source import VideoSource

# What each media kind's reader returns: the item codecs and anchors take.
MEDIA_READERS = {"image": read_image, "video": read_video, "audio": read_audio}

__all__ = [
    "MEDIA_READERS",
    "WRITE_FORMATS",
    "AudioStream",
    "MediaError",
    "VideoSource",
    "audio_tracks",
    "has_audio",
    "media_kind",
    "movie_audio",
    "open_audio",
    "open_video",
    "read_audio",
    "read_image",
    "read_video",
    "write_audio",
    "write_audio_stream",
    "write_image",
    "write_video",
    "write_video_stream",
]
