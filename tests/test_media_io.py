"""Media reading and writing beyond what the codec tests cover."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from unittest import mock

import av
import numpy as np
import pytest
import torch

from mcodec.codec.media_io import MediaError, read_audio, write_audio


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


def _without_pyav(monkeypatch):
    """As on the GPU machine, which cannot carry PyAV's wheel: importing it fails."""
    monkeypatch.setattr("mcodec.codec.media_io.audio.load_av", mock.Mock(side_effect=ImportError("no av")))


def test_soundfile_reads_audio_where_pyav_is_missing(tmp_path, monkeypatch):
    """FLAC reads to the same samples through soundfile as through PyAV; the Ogg Opus copies of
    bench/data/gpu_audio.py read at their own 24 kHz and the source's length (Opus's pre-skip removed)."""
    pytest.importorskip("soundfile")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench" / "data"))
    from gpu_audio import write_opus

    t = np.arange(24000) / 24000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * np.hanning(t.size)).astype(np.float32)
    write_audio(tmp_path / "a.flac", torch.from_numpy(np.stack([x, -x])), 24000)
    write_opus(tmp_path / "a.opus", x, 32)
    with_av = read_audio(tmp_path / "a.flac")
    _without_pyav(monkeypatch)
    flac, rate = read_audio(tmp_path / "a.flac")
    assert rate == 24000 and flac.shape == (2, 24000)
    assert torch.equal(flac, with_av[0])
    opus, rate = read_audio(tmp_path / "a.opus")
    assert rate == 24000 and opus.shape == (1, 24000)
    snr = 10 * np.log10((x**2).sum() / ((x - opus[0].numpy()) ** 2).sum())
    assert snr > 15, snr


def test_without_pyav_or_soundfile_reading_audio_is_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "bad.flac").write_bytes(b"fLaC" + bytes(100))
    _without_pyav(monkeypatch)
    if importlib.util.find_spec("soundfile"):
        with pytest.raises(MediaError, match="cannot read audio"):
            read_audio(tmp_path / "bad.flac")
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(MediaError, match=r"needs PyAV \(or soundfile\)"):
        read_audio(tmp_path / "bad.flac")
