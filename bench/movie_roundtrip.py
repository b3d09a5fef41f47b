"""A movie with sound through `mcodec encode` and `mcodec decode`, as a user would run them.

    python bench/movie_roundtrip.py [--seconds 10] [--size 320x240] [--fps 25] [--bitrate 6]
                                    [--encode-args "--preset fast"] [--json out.json]

Makes an mp4 (H.264 and AAC stereo at 44.1 kHz): a pan across a shared photo, with stereo music from
the shared media under it. Encodes it with the default codecs (video and sound in one file), decodes it
to mp4 (x264 and AAC) and to mkv (FFV1 and FLAC), and reports:
- the tracks of each output, their frame and sample counts, and whether every frame sits at i / fps;
- the video PSNR (mkv, lossless output) against the source frames;
- the sound against the source's (mel distance, SI-SDR), next to the same sound coded alone as a WAV by
  `mcodec encode --bitrate B`: "within what the codec promises" means these two agree.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torchaudio

from mcodec.codec.media_io import read_audio, read_image, read_video, write_audio
from mcodec.codec.media_io.av_lib import load_av
from mcodec.evaluation import audio_metrics, metrics

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
PHOTO = MEDIA / "images" / "lomiri_bridge.png"
MUSIC = MEDIA / "audio" / "music"
RATE = 44100


def pan(photo: torch.Tensor, frames: int, w: int, h: int) -> torch.Tensor:
    """uint8 [frames, 3, h, w]: a window moving left to right (and a little down) across ``photo``."""
    _, ph, pw = photo.shape
    scale = max(h / ph, w / pw * 2)  # room to move: the photo is at least twice the window wide
    if scale > 1:
        photo = torch.nn.functional.interpolate(photo[None].float(), scale_factor=scale, mode="bilinear")[0]
        photo = photo.round().clamp(0, 255).to(torch.uint8)
    _, ph, pw = photo.shape
    xs = np.linspace(0, pw - w, frames).round().astype(int)
    ys = np.linspace(0, (ph - h) // 4, frames).round().astype(int)
    return torch.stack([photo[:, y : y + h, x : x + w] for x, y in zip(xs, ys, strict=True)])


def music(files: list[Path], seconds: float) -> np.ndarray:
    """float32 [2, n] at RATE: the files one after another (stereo at RATE), as long as asked."""
    parts, n = [], 0
    while n < seconds * RATE:
        for f in files:
            x, r = read_audio(f)
            x = torchaudio.functional.resample(x, r, RATE) if r != RATE else x
            parts.append(x.expand(2, -1).numpy() if x.shape[0] == 1 else x[:2].numpy())
            n += parts[-1].shape[1]
            if n >= seconds * RATE:
                break
    return np.concatenate(parts, axis=1)[:, : round(seconds * RATE)]


def write_movie(path: Path, frames: torch.Tensor, fps: int, sound: np.ndarray) -> None:
    av = load_av()
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[3], frames.shape[2], "yuv420p"
        video.options = {"crf": "12"}
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        audio.bit_rate = 192000
        step = RATE // fps
        for i, img in enumerate(frames.permute(0, 2, 3, 1).numpy()):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            out.mux(video.encode(frame.reformat(format="yuv420p")))
            block = np.ascontiguousarray(sound[:, i * step : (i + 1) * step])
            if block.shape[1]:
                a = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                a.sample_rate, a.pts = RATE, i * step
                out.mux(audio.encode(a))
        out.mux(video.encode())
        out.mux(audio.encode(None))


def tracks(path: Path) -> list[dict]:
    """Per stream: type, codec, frames or samples decoded, and (video) whether frame i is at i / fps."""
    av = load_av()
    rows = []
    with av.open(str(path)) as c:
        for s in c.streams:
            with av.open(str(path)) as again:
                decoded = list(again.decode(again.streams[s.index]))
            row = {"type": s.type, "codec": s.codec_context.name}
            if s.type == "audio":
                row["samples"], row["rate"] = sum(f.samples for f in decoded), s.codec_context.sample_rate
                row["seconds"] = row["samples"] / row["rate"]
            else:
                fps = Fraction(s.average_rate)
                times = [f.pts * f.time_base for f in decoded]
                row["frames"], row["seconds"] = len(decoded), float(len(decoded) / fps)
                row["frames_on_time"] = all(abs(t - i / fps) < Fraction(1, 1000) for i, t in enumerate(times))
            rows.append(row)
    return rows


def sound_quality(ref: torch.Tensor, est: torch.Tensor) -> dict:
    n = min(ref.shape[1], est.shape[1])
    ref, est = ref[:, :n], est[:, :n]
    return {
        "mel_distance": audio_metrics.mel_distance(ref, est, RATE),
        "si_sdr": audio_metrics.si_sdr(ref, est),
    }


def mcodec(*args) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "mcodec", "-q", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"mcodec {' '.join(map(str, args))} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--bitrate", type=float, default=6.0, help="the sound's kbit/s")
    ap.add_argument("--encode-args", default="", help="more `mcodec encode` options, e.g. '--preset fast'")
    ap.add_argument("--photo", type=Path, default=PHOTO, help="the photo the camera pans across")
    ap.add_argument("--music", type=Path, nargs="+", help="sound files (default: the shared music)")
    ap.add_argument("--json", type=Path, help="write the report to this file")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    frames = round(args.seconds * args.fps)
    extra = shlex.split(args.encode_args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src, bits = tmp / "movie.mp4", tmp / "movie.mcd"
        sound = music(args.music or sorted(MUSIC.glob("*.flac")), args.seconds)
        write_movie(src, pan(read_image(args.photo), frames, w, h), args.fps, sound)
        source, _ = read_video(src)
        sound, _ = read_audio(src)
        sound = sound[:, : round(args.seconds * RATE)]
        enc_s = mcodec("encode", src, bits, "--audio-bitrate", args.bitrate, *extra)
        report = {"seconds": args.seconds, "size": args.size, "fps": args.fps, "encode_s": enc_s}
        report["bytes"] = bits.stat().st_size
        for suffix in (".mp4", ".mkv"):
            rec = tmp / f"rec{suffix}"
            report[f"decode{suffix}_s"] = mcodec("decode", bits, rec)
            report[f"tracks{suffix}"] = tracks(rec)
            decoded_sound, _ = read_audio(rec)
            report[f"sound{suffix}"] = sound_quality(sound, decoded_sound)
            if suffix == ".mkv":  # lossless: the codec's own video quality
                report["video_psnr_rgb"] = metrics.psnr_rgb(source, read_video(rec)[0])
        wav, alone, alone_rec = tmp / "sound.wav", tmp / "sound.mcd", tmp / "sound_rec.wav"
        write_audio(wav, sound, RATE)
        mcodec("encode", wav, alone, "--bitrate", args.bitrate)
        mcodec("decode", alone, alone_rec)
        report["sound_coded_alone"] = sound_quality(sound, read_audio(alone_rec)[0])
        report["source_frames"] = source.shape[0]
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
