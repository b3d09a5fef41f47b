"""Movies: a video file with sound is coded as two streams and decoded with both tracks, in sync."""

from fractions import Fraction

import numpy as np
import pytest
from conftest import run_cli

from mcodec.cli.main import main
from mcodec.codec.media_io import read_audio, read_video
from mcodec.codec.media_io.av_lib import load_av
from mcodec.entropy import read_container

FPS, FRAMES, RATE = 5, 5, 44100  # 1 s: five frames keep the fit short, a second gives the sound its rate
TONE = (0.5, 1.0)  # seconds on the video's clock where the sound is a tone; silence before


def make_movie(path, audio_start: float = 0.0, tracks: int = 1) -> None:
    """FRAMES frames of 64x48 (a moving bar) and stereo sound that starts ``audio_start`` s after the
    first frame: silence, then a tone over TONE (on the video's clock)."""
    av = load_av()
    fmt = {".mp4": ("mp4", "aac", "fltp"), ".mkv": ("matroska", "flac", "s16")}[path.suffix]
    with av.open(str(path), "w", format=fmt[0]) as out:
        video = out.add_stream("libx264" if fmt[0] == "mp4" else "ffv1", rate=FPS)
        video.width, video.height = 64, 48
        video.pix_fmt = "yuv420p" if fmt[0] == "mp4" else "bgr0"
        sounds = [out.add_stream(fmt[1], rate=RATE, layout="stereo") for _ in range(tracks)]
        for i in range(FRAMES):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, 10 * i : 10 * i + 8] = (255, 128, 40)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=video.pix_fmt)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        t = np.arange(int(RATE * (FRAMES / FPS - audio_start))) / RATE + audio_start  # video clock
        tone = np.where((t >= TONE[0]) & (t < TONE[1]), 0.4 * np.sin(2 * np.pi * 440 * t), 0.0)
        x = np.stack([tone, tone]).astype(np.float32)
        for sound in sounds:
            start = round(audio_start * RATE)
            for a in range(0, x.shape[1], 4096):
                part = x[:, a : a + 4096]
                if fmt[2] == "s16":
                    part = np.rint(part * 32767).astype(np.int16).T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=fmt[2], layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = RATE, start + a, Fraction(1, RATE)
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))


def streams_of(path) -> list[tuple[str, str, float]]:
    """(type, codec, seconds decoded) of each stream of a media file."""
    av = load_av()
    out = []
    with av.open(str(path)) as c:
        for s in c.streams:
            with av.open(str(path)) as again:
                frames = list(again.decode(again.streams[s.index]))
            if s.type == "audio":
                seconds = sum(f.samples for f in frames) / s.codec_context.sample_rate
            else:
                seconds = len(frames) / float(s.average_rate)
            out.append((s.type, s.codec_context.name, seconds))
    return out


@pytest.fixture(scope="module")
def coded_movie(tmp_path_factory):
    """A 1 s mp4 movie with AAC stereo sound, and its mcodec file (hnerv fast q1 + rvq 6 kbit/s)."""
    folder = tmp_path_factory.mktemp("movie")
    src, bit = folder / "movie.mp4", folder / "movie.mcd"
    make_movie(src)
    with pytest.raises(SystemExit) as e:
        main(["-q", "encode", str(src), str(bit), "--preset", "fast", "--quality", "1"])
    assert e.value.code == 0
    return src, bit


def test_a_movie_is_two_streams_and_info_lists_them(capfd, coded_movie):
    _, bit = coded_movie
    c = read_container(bit.read_bytes())
    assert c.version == (1, 3)
    assert [(s.header.media, s.header.codec) for s in c.streams] == [("video", "hnerv"), ("audio", "rvq")]
    sound = c.more[0].header.params
    assert (sound["channels"], sound["sample_rate"], sound["samples"]) == (2, RATE, RATE * FRAMES // FPS)
    code, out, _ = run_cli(capfd, "info", bit)
    assert code == 0 and "stream 1  audio codec rvq" in out and "kbit/s" in out


@pytest.mark.parametrize("suffix, codecs", [(".mp4", ("h264", "aac")), (".mkv", ("ffv1", "flac"))])
def test_a_movie_decodes_with_both_tracks_in_sync(capfd, tmp_path, coded_movie, suffix, codecs):
    _, bit = coded_movie
    rec = tmp_path / f"rec{suffix}"
    code, _, err = run_cli(capfd, "decode", bit, rec)
    assert code == 0, err
    (vtype, vcodec, vsec), (atype, acodec, asec) = streams_of(rec)
    assert (vtype, atype) == ("video", "audio") and (vcodec, acodec) == codecs
    assert read_video(rec)[0].shape[0] == FRAMES
    # the same duration within one frame (AAC pads its last frame of 1024 samples)
    assert abs(asec - vsec) <= 1 / FPS and abs(vsec - FRAMES / FPS) < 1e-6


def sound_where(audio, rate) -> tuple[float, float]:
    """RMS of the silent part and of the tone part (TONE), a margin off each edge."""
    x = audio.mean(0).numpy()

    def rms(a, b):
        return float(np.sqrt(np.mean(x[int(a * rate) : int(b * rate)] ** 2)))

    return rms(0.05, TONE[0] - 0.1), rms(TONE[0] + 0.1, TONE[1] - 0.05)


def test_sound_that_starts_late_stays_in_sync(capfd, tmp_path):
    """The source's sound starts 0.2 s after its first frame: it is padded to the video's start, so the
    tone still sounds over TONE of the decoded movie."""
    src, bit, wav = tmp_path / "late.mkv", tmp_path / "late.mcd", tmp_path / "late.wav"
    make_movie(src, audio_start=0.2)
    code, _, err = run_cli(capfd, "encode", src, bit, "--preset", "fast", "--quality", "1")
    assert code == 0, err
    code, _, err = run_cli(capfd, "decode", bit, wav)  # an audio name takes the sound alone
    assert code == 0, err
    audio, rate = read_audio(wav)
    assert audio.shape == (2, RATE * FRAMES // FPS)
    silence, tone = sound_where(audio, rate)
    assert tone > 0.1 and silence < tone / 5


def test_a_frame_range_takes_its_span_of_sound(capfd, tmp_path, coded_movie):
    _, bit = coded_movie
    rec = tmp_path / "part.mkv"
    code, _, err = run_cli(capfd, "decode", bit, rec, "--frames", "1:3")
    assert code == 0, err
    (_, _, vsec), (_, _, asec) = streams_of(rec)
    assert abs(vsec - 2 / FPS) < 1e-6 and abs(asec - 2 / FPS) < 1e-3


def test_the_sound_is_never_dropped_silently(capfd, tmp_path, coded_movie):
    src, bit = coded_movie
    code, _, err = run_cli(capfd, "decode", bit, tmp_path / "rec.y4m")  # y4m holds no sound
    assert code == 1 and "mcodec: error:" in err and "--no-audio" in err and "Traceback" not in err
    code, _, err = run_cli(capfd, "decode", bit, tmp_path / "rec.y4m", "--no-audio")
    assert code == 0, err
    assert [t for t, _, _ in streams_of(tmp_path / "rec.y4m")] == ["video"]
    silent = tmp_path / "silent.mcd"
    code, _, err = run_cli(capfd, "encode", src, silent, "--preset", "fast", "--quality", "1", "--no-audio")
    assert code == 0, err
    c = read_container(silent.read_bytes())
    assert c.version == (1, 3) and not c.more  # one stream


def test_several_audio_tracks_code_the_first_and_say_so(capfd, tmp_path):
    src, bit = tmp_path / "two.mkv", tmp_path / "two.mcd"
    make_movie(src, tracks=2)
    code, _, err = run_cli(
        capfd, "encode", src, bit, "--preset", "fast", "--quality", "1", "--audio-bitrate", "3"
    )
    assert code == 0, err
    assert "2 audio tracks; the first was coded" in err
    c = read_container(bit.read_bytes())
    assert len(c.more) == 1 and c.more[0].header.params["kbps"] == 3.0


def test_audio_options_are_for_video(capfd, tmp_path, sample_path):
    code, _, err = run_cli(capfd, "encode", sample_path, tmp_path / "x.mcd", "--no-audio")
    assert code == 2 and "--no-audio and --audio-bitrate are for video files" in err
