"""Block motion (FORMAT.md 6.4.4): a group's key picture moved block by block for each of its pictures, so
that what moves inside the frame (a character, a car, a camera the global motion of motion.py does not
catch) costs a vector per block instead of a network relearning it at every place.

Picture p's base is the key picture with every BLOCK x BLOCK block of the frame taken from the key at an
integer offset (dy, dx): sample (y, x) of block (y // BLOCK, x // BLOCK) is the key's sample at
(clamp(y + dy, 0, h - 1), clamp(x + dx, 0, w - 1)). An integer gather, so every machine builds the same
base. The file carries the vectors as differences from the previous picture's (the first picture's from
0), entropy-coded with the group's other integers under a table of their own: the group header holds the
differences' histogram, from which both sides build the same integer table (``vector_table``: integer
counts through IEEE operations that round the same everywhere). The Gaussian tables of the weights cost
twice the bits: a difference is mostly 0, with a tail that a narrow Gaussian escapes at 32 bits a value.

The encoder (``search``) matches each picture against the decoded key picture: the sum of absolute
differences of a block plus RATE_BIAS per pixel of change from the block's previous vector, found coarse
to fine (a quarter-resolution full search, then +-REFINE pixels at full resolution, the previous vector
always a candidate). A group uses block motion when its moved key leaves at most GAIN of the squared
error its median frame leaves (megamind, 24-frame groups: the median frame 23.6-24.5 dB, the middle frame
moved in 16 x 16 blocks 32.3-33.2 dB).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mcodec.entropy.tables import TableSet, quantize_pmf

BLOCK = 16
MAX_VECTOR = 128  # a reader refuses a larger component (pixels)
SEARCH = 24  # the encoder's search range (pixels, each direction)
REFINE = 3  # ... refined at full resolution this far around the coarse match
COARSE = 4  # the coarse search's downscale
# SAD units (a block's sum over RGB of 0..255 samples) per pixel of change from the previous vector.
# megamind's first 48 frames, the middle one the key: 4 -> 29.37 dB moved at 0.0180 bpp of vectors, 64 ->
# 29.19 dB at 0.0122, 256 -> 28.19 at 0.0087 (8 x 8 blocks at 64: 29.45 dB at 0.0312; 32 x 32: 26.44 at
# 0.0040); the bits are the differences' entropy under their histogram, what the file's table nearly gives
RATE_BIAS = 64.0
GAIN = 0.7  # block motion when the moved key's squared error is at most this share of the median frame's


def grid(height: int, width: int) -> tuple[int, int]:
    """Blocks (rows, columns) covering a frame."""
    return math.ceil(height / BLOCK), math.ceil(width / BLOCK)


def warp(picture: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """uint8 [3, h, w] key picture, int [by, bx, 2] vectors (dy, dx) -> uint8 [3, h, w]: each block taken
    from the picture at its offset, clamped to the picture's edges."""
    h, w = picture.shape[-2:]
    v = vectors.long()
    dy = v[..., 0].repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:h, :w]
    dx = v[..., 1].repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:h, :w]
    rows = (torch.arange(h)[:, None] + dy).clamp(0, h - 1)
    cols = (torch.arange(w)[None] + dx).clamp(0, w - 1)
    return picture[:, rows, cols]


def _blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    """[..., H, W] (multiples of size) -> [..., H / size, W / size, size, size]."""
    return x.unfold(-2, size, size).unfold(-2, size, size)


def search(key: torch.Tensor, frame: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """The vectors [by, bx, 2] (int64) that move the uint8 key [3, h, w] onto the uint8 frame, each block's
    change from ``previous`` (the previous picture's vectors, or 0) charged RATE_BIAS per pixel."""
    h, w = frame.shape[-2:]
    by, bx = grid(h, w)
    ph, pw = by * BLOCK - h, bx * BLOCK - w
    cur = F.pad(frame.float()[None], (0, pw, 0, ph), mode="replicate")[0]
    prev = torch.zeros(by, bx, 2, dtype=torch.long) if previous is None else previous.long()
    # coarse: grey, a quarter of the resolution, every offset within SEARCH
    r, b = SEARCH // COARSE, BLOCK // COARSE
    grey = lambda t: F.avg_pool2d(t.mean(0, keepdim=True)[None], COARSE)[0, 0]  # noqa: E731
    ks = F.pad(key.float().mean(0, keepdim=True)[None], (r * COARSE,) * 4, mode="replicate")
    ks = F.avg_pool2d(F.pad(ks, (0, pw, 0, ph), mode="replicate"), COARSE)[0, 0]
    target = _blocks(grey(cur), b)
    best = torch.full((by, bx), float("inf"))
    coarse = torch.zeros(by, bx, 2, dtype=torch.long)
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            cand = _blocks(ks[r + oy : r + oy + by * b, r + ox : r + ox + bx * b], b)
            cost = (cand - target).abs().sum((-2, -1)) * (3 * COARSE * COARSE)
            better = cost < best
            best = torch.where(better, cost, best)
            coarse[better] = torch.tensor([oy * COARSE, ox * COARSE])
    # fine: full resolution, RGB, +-REFINE around the coarse match, and the previous vector itself
    pad = SEARCH + REFINE
    kp = F.pad(key.float()[None], (pad, pad + pw, pad, pad + ph), mode="replicate")[0]
    windows = kp.unfold(1, BLOCK, 1).unfold(2, BLOCK, 1)  # [3, H', W', BLOCK, BLOCK], a view
    target = _blocks(cur, BLOCK).permute(1, 2, 0, 3, 4)
    top = torch.arange(by)[:, None] * BLOCK + pad
    left = torch.arange(bx)[None] * BLOCK + pad
    best = torch.full((by, bx), float("inf"))
    out = prev.clone().clamp(-pad, pad)
    candidates = [prev.clamp(-pad, pad)] + [
        (coarse + torch.tensor([oy, ox])).clamp(-pad, pad)
        for oy in range(-REFINE, REFINE + 1)
        for ox in range(-REFINE, REFINE + 1)
    ]
    for v in candidates:
        cand = windows[:, top + v[..., 0], left + v[..., 1]].permute(1, 2, 0, 3, 4)
        cost = (cand - target).abs().sum((-3, -2, -1)) + RATE_BIAS * (v - prev).abs().sum(-1)
        better = cost < best
        best = torch.where(better, cost, best)
        out[better] = v[better]
    return out


def group_vectors(key: torch.Tensor, pictures: torch.Tensor) -> torch.Tensor:
    """int64 [P, by, bx, 2]: each uint8 picture [P, 3, h, w] matched against the key, in order."""
    out, previous = [], None
    for p in pictures:
        previous = search(key, p, previous)
        out.append(previous)
    return torch.stack(out)


def squared_error(bases: torch.Tensor, pictures: torch.Tensor, weights: list[int]) -> float:
    """Sum over uint8 pictures [P, 3, h, w] of weight x squared difference from its base (bases: one per
    picture, or one [3, h, w] for all); weights: how many frames each picture stands for."""
    bases = bases.expand_as(pictures)
    return sum(
        w * float(((b.float() - p.float()) ** 2).sum())
        for w, b, p in zip(weights, bases, pictures, strict=True)
    )


def histogram(symbols: np.ndarray) -> tuple[int, list[int]]:
    """(the smallest value, the count of each value from it to the largest) of the coded integers."""
    low = int(symbols.min())
    return low, np.bincount(symbols.reshape(-1) - low).tolist()


def with_vector_table(tables: TableSet, low: int, counts: list[int]) -> TableSet:
    """``tables`` plus one more (the last index): the vector differences' table from their histogram
    (values ``low`` ...). The escape slot, which the encoder never uses, gets the least frequency."""
    freqs = quantize_pmf(np.asarray(counts, dtype=np.float64))
    width = max(tables.freqs.shape[1], freqs.size)
    rows = np.zeros((tables.num_tables + 1, width), np.int32)
    rows[:-1, : tables.freqs.shape[1]] = tables.freqs
    rows[-1, : freqs.size] = freqs
    offsets = np.append(tables.offsets, low).astype(np.int32)
    return TableSet(rows, offsets, np.append(tables.lengths, len(counts)).astype(np.int32))


def to_symbols(vectors: torch.Tensor) -> np.ndarray:
    """int [P, by, bx, 2] -> the integers the file carries, [2, P, by, bx]: each picture's vectors minus the
    previous picture's (the first picture's minus 0)."""
    v = vectors.long().permute(3, 0, 1, 2)
    return torch.diff(v, dim=1, prepend=torch.zeros_like(v[:, :1])).numpy()


def from_symbols(symbols: torch.Tensor) -> torch.Tensor:
    """The file's integers [2, P, by, bx] -> vectors int64 [P, by, bx, 2]."""
    return symbols.long().cumsum(1).permute(1, 2, 3, 0).contiguous()
