"""Decoded outputs kept for report.html: what a few files look or sound like after each codec.

While the grid runs, every point of the first file(s) of each medium (the showcase files) leaves its real
decoded output under ``DIR/media/<file slug>/``, written by the worker that measured it (re-encoding later
would mean fitting video again). Only what the page shows is kept, small:

- image: the CROP x CROP window of the original with the most detail, as PNG (``<codec>-<point>.png``);
- video: that window of the middle frame (``-frame.png``) and STRIP_FRAMES evenly spaced frames side by
  side (``-strip.png``);
- audio: the first AUDIO_SECONDS as 16-bit WAV (``.wav``) and its spectrogram (``-spec.png``).
The original's versions are named ``original...``. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcodec.codec.atomic_write import atomic_output

MEDIA_DIR = "media"
CROP = 128  # pixels; shown at 2x (artefacts visible), four side by side in a 1200-pixel window
STRIP_FRAMES = 6
STRIP_HEIGHT = 96  # pixels per frame in the strip (at most the frame's own height)
AUDIO_SECONDS = 12.0
SPEC_DB_RANGE = (-100.0, 0.0)  # dB relative to a full-scale sine: one scale for every spectrogram


def folder(out: Path, file: str | Path) -> Path:
    """out/media/<stem>-<hash of the path>: one folder per showcase file, the same in every process."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(file).stem)[:40] or "file"
    return Path(out) / MEDIA_DIR / f"{stem}-{hashlib.sha1(str(file).encode()).hexdigest()[:6]}"


def name(contender: str, point: float) -> str:
    """File name stem of one reconstruction (``original`` for the source)."""
    return contender if contender == "original" else f"{contender}-{float(point):g}"


SUFFIXES = {"image": (".png",), "video": ("-frame.png", "-strip.png"), "audio": (".wav", "-spec.png")}


def paths(out: Path, file: str | Path, media: str, contender: str, point: float = 0.0) -> list[Path]:
    """The files kept for one reconstruction (or the original), in the order of SUFFIXES."""
    base = folder(out, file) / name(contender, point)
    return [base.with_name(base.name + s) for s in SUFFIXES[media]]


def save(media_folder: Path, media: str, contender: str, point: float, item, decoded) -> None:
    """Keep the showcase views of ``decoded`` (and of the original ``item`` if not kept yet).
    item/decoded: image uint8 [C, H, W]; video (uint8 [T, 3, H, W], rate); audio (float [C, N], Hz)."""
    media_folder.mkdir(parents=True, exist_ok=True)
    original = media_folder / "original"
    if not all(p.exists() for p in _with_suffixes(original, media)):
        _save_views(original, media, item, item)
    _save_views(media_folder / name(contender, point), media, item, decoded)


def _with_suffixes(base: Path, media: str) -> list[Path]:
    return [base.with_name(base.name + s) for s in SUFFIXES[media]]


def _save_views(base: Path, media: str, original, view) -> None:
    targets = _with_suffixes(base, media)
    if media == "image":
        top, left, h, w = crop_box(original)
        _png(targets[0], view[:, top : top + h, left : left + w])
    elif media == "video":
        frames, ref = view[0], original[0]
        mid = ref.shape[0] // 2
        top, left, h, w = crop_box(ref[mid])
        _png(targets[0], frames[mid, :, top : top + h, left : left + w])
        _png(targets[1], strip(frames))
    else:
        samples, rate = view
        n = min(samples.shape[1], int(AUDIO_SECONDS * rate))
        excerpt = torch.as_tensor(samples[:, :n], dtype=torch.float32).clamp(-1, 1)
        from mcodec.codec.media_io import write_audio

        write_audio(targets[0], excerpt, int(rate), force=True)
        spectrogram_png(targets[1], excerpt.mean(0).numpy(), int(rate))


def crop_box(image: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the CROP x CROP window (or the whole image, if smaller) with the most
    detail: the largest mean absolute luma gradient, over windows on a grid of half the crop's size."""
    _, h, w = image.shape
    ch, cw = min(CROP, h), min(CROP, w)
    luma = image.float().mean(0)
    detail = torch.zeros(h, w)
    detail[:, 1:] += (luma[:, 1:] - luma[:, :-1]).abs()
    detail[1:, :] += (luma[1:, :] - luma[:-1, :]).abs()
    best, box = -1.0, (0, 0, ch, cw)
    for top in sorted({*range(0, h - ch + 1, max(ch // 2, 1)), h - ch}):
        for left in sorted({*range(0, w - cw + 1, max(cw // 2, 1)), w - cw}):
            score = float(detail[top : top + ch, left : left + cw].mean())
            if score > best:
                best, box = score, (top, left, ch, cw)
    return box


def strip(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [3, h, W]: STRIP_FRAMES evenly spaced frames of [T, 3, H, W], each scaled to height h, side by
    side with 2-pixel white gaps."""
    t, _, h, w = frames.shape
    picks = sorted({round(i) for i in np.linspace(0, t - 1, min(STRIP_FRAMES, t))})
    height = min(h, STRIP_HEIGHT)
    width = max(1, round(w * height / h))
    tiles = []
    for i in picks:
        im = Image.fromarray(frames[i].permute(1, 2, 0).numpy())
        if (width, height) != (w, h):
            im = im.resize((width, height), Image.Resampling.LANCZOS)
        tiles.append(np.asarray(im))
    gap = np.full((height, 2, 3), 255, np.uint8)
    row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    return torch.from_numpy(row).permute(2, 0, 1)


def _png(path: Path, image: torch.Tensor) -> None:
    arr = image.permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    with atomic_output(path, force=True) as tmp:
        im.save(tmp, format="PNG", optimize=True)


def spectrogram_png(path: Path, mono: np.ndarray, rate: int) -> None:
    """Log-magnitude spectrogram of ``mono`` (float [N], full scale 1) as a PNG, in dB relative to a
    full-scale sine, on the fixed scale SPEC_DB_RANGE so that spectrograms of one run compare."""
    from matplotlib.figure import Figure

    n_fft = 2 ** max(6, round(math.log2(rate * 0.032)))  # ~32 ms frames
    hop = n_fft // 4
    window = np.hanning(n_fft)
    x = np.pad(np.asarray(mono, np.float64), (n_fft // 2, n_fft // 2))
    count = max(1, 1 + (len(x) - n_fft) // hop)
    frames = np.stack([x[i * hop : i * hop + n_fft] for i in range(count)]) * window
    mag = np.abs(np.fft.rfft(frames, axis=1)) / (window.sum() / 2)
    db = 20 * np.log10(mag.T + 1e-10)
    fig = Figure(figsize=(4.8, 1.9), dpi=100)
    ax = fig.subplots()
    seconds = len(mono) / rate
    image = ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=SPEC_DB_RANGE[0],
        vmax=SPEC_DB_RANGE[1],
        extent=(0, seconds, 0, rate / 2000),
    )
    ax.set_xlabel("s", fontsize=8, labelpad=1)
    ax.set_ylabel("kHz", fontsize=8, labelpad=1)
    ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=ax, pad=0.01).ax.tick_params(labelsize=6)
    fig.tight_layout(pad=0.3)
    with atomic_output(path, force=True) as tmp:
        fig.savefig(tmp, format="png")
