"""Media reading and writing beyond what the codec tests cover."""

from __future__ import annotations

import av
import numpy as np
import pytest

from mcodec.codec.media_io import read_audio


def _ogg(path, channels: int, seconds: float = 0.5) -> bytes:
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libvorbis", rate=44100, layout=layout)
        x = (0.1 * np.sin(np.arange(int(44100 * seconds)) / 10)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.tile(x, (channels, 1)), format="fltp", layout=layout)
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path.read_bytes()


@pytest.mark.parametrize("first, second", [(1, 2), (2, 1)])
def test_chained_ogg_that_changes_layout_reads_as_its_header_says(tmp_path, first, second):
    """A chained Ogg file (two streams back to back) that turns from mono to stereo was an internal
    error (numpy could not join blocks of 1 and 2 channels); it reads with the first stream's channels."""
    chained = tmp_path / "chained.ogg"
    chained.write_bytes(_ogg(tmp_path / "a.ogg", first) + _ogg(tmp_path / "b.ogg", second))
    audio, rate = read_audio(chained)
    assert rate == 44100 and audio.shape[0] == first and audio.shape[1] > 44100 * 0.9
    assert np.isfinite(audio.numpy()).all() and audio.abs().max() > 0.05
