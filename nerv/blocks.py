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

Such a group may instead be drawn over several keys, one every SPACING pictures (``between_keys``): each
other picture's block comes from the key before it, the key after it or their mean, like a classical
codec's B pictures, with a vector from each key and a mode per block (FORMAT.md 6.4.4, several keys). One
key 24 pictures away leaves what it never saw (a turned head, a cut) for the network to learn; keys 4
pictures away on both sides leave little.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

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
# A group drawn from keys alone (FORMAT.md 6.4.5, ``between_keys``): a key every SPACING pictures, coded at
# the video quality + KEY_STEP, each other picture's block moved from the key before it, the key after it or
# their mean (MODES), its vectors and modes priced at their rough bits (VECTOR_WEIGHT, MODE_WEIGHT): no
# network then pays for what they leave. Session 24's measurements, with vectors charged 256 SAD units a
# pixel of change and every vector and mode in the file:
# megamind's first 48 frames, the pictures alone (real bytes), then x264 medium's rate at that PSNR: keys
# every 12 at image q1 0.0347 bpp / 30.54 dB (1.9x x264's), q2 0.0395 / 31.35 (1.9x), q4 0.0524 / 32.34
# (2.2x), q6 0.0714 / 32.81 (2.9x); at q1 every 8 0.0425 / 30.91 (2.2x), every 16 0.0300 / 29.84 (1.8x),
# every 24 0.0242 / 28.88 (1.7x), one key 0.0134 / 27.45 (1.1x, below x264's lowest point). At q1, every
# 8: bias 64 0.0498 / 31.25 (2.5x), 256 0.0425 / 30.91 (2.2x), 512 0.0390 / 30.50 (2.2x), 1024 (2.4x).
# The fitted network over one moved key (below) gave 0.0682 / 31.81 (3.2x) at video q1.
SPACING = 12
MODES = 3  # a block's base: 0 the key before it, 1 the key after it, 2 their mean
KEY_STEP = 0  # (a fitted group's one key: + keypicture.KEY_STEP)


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


def search(
    key: torch.Tensor,
    frame: torch.Tensor,
    previous: torch.Tensor | None = None,
    bias: float = RATE_BIAS,
    per_bit: float | None = None,
) -> torch.Tensor:
    """The vectors [by, bx, 2] (int64) that move the uint8 key [3, h, w] onto the uint8 frame, each block's
    change from ``previous`` (the previous picture's vectors, or 0) charged ``bias`` per pixel; with
    ``per_bit``, the full-resolution match is the squared error + per_bit x the change's rough bits
    (vector_bits) instead."""
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
        if per_bit is None:
            cost = (cand - target).abs().sum((-3, -2, -1)) + bias * (v - prev).abs().sum(-1)
        else:
            cost = (cand - target).square().sum((-3, -2, -1)) + per_bit * vector_bits(v - prev)
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


@dataclass(frozen=True)
class Blocks:
    """A block-motion group's motion: vectors [P, by, bx, 2] from its one key, or, with several keys,
    vectors [P, by, bx, 4] (from the key before, then the key after), the blocks' modes [P, by, bx] and the
    keys' pictures ``positions``."""

    vectors: torch.Tensor
    modes: torch.Tensor | None = None
    positions: list[int] | None = None

    def base(self, keys: list[torch.Tensor], picture: int) -> torch.Tensor:
        """Picture ``picture``'s base (uint8 [3, h, w]) from the group's decoded keys, in order."""
        if self.modes is None:
            return warp(keys[0], self.vectors[picture])
        if picture in self.positions:  # a key picture is itself
            return keys[self.positions.index(picture)]
        i, j = references(picture, self.positions)
        return predict(keys[i], keys[j], self.vectors[picture], self.modes[picture])


def key_positions(pictures: int) -> list[int]:
    """The pictures a group of this many keeps as keys when it has several: one per SPACING, centred."""
    n = math.ceil(pictures / SPACING)
    return [(2 * i + 1) * pictures // (2 * n) for i in range(n)]


def references(position: int, keys: list[int]) -> tuple[int, int]:
    """Picture ``position``'s two keys (indexes into the sorted ``keys``): the last at or before it and the
    first at or after it; before the first key both are the first, after the last both are the last."""
    before = max(bisect_right(keys, position) - 1, 0)
    after = min(bisect_left(keys, position), len(keys) - 1)
    return before, after


def _per_pixel(values: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return values.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:h, :w]


def predict(
    before: torch.Tensor, after: torch.Tensor, vectors: torch.Tensor, modes: torch.Tensor
) -> torch.Tensor:
    """A picture's base from its two keys (uint8 [3, h, w]), its vectors [by, bx, 4] (dy, dx from the key
    before, then from the key after) and its blocks' modes [by, bx] (MODES): uint8 [3, h, w]. The mean is
    (a + b + 1) // 2 in integers."""
    h, w = before.shape[-2:]
    a, b = warp(before, vectors[..., :2]), warp(after, vectors[..., 2:])
    mean = ((a.int() + b.int() + 1) >> 1).to(torch.uint8)
    m = _per_pixel(modes, h, w)
    return torch.where(m == 0, a, torch.where(m == 1, b, mean))


def _block_errors(picture: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Squared error of each block [by, bx] (float64)."""
    h, w = frame.shape[-2:]
    by, bx = grid(h, w)
    e = (picture.double() - frame.double()).square().sum(0)
    return _blocks(F.pad(e, (0, bx * BLOCK - w, 0, by * BLOCK - h)), BLOCK).sum((-2, -1))


# A block's vectors are those of least squared error + SSE_PER_BIT x VECTOR_WEIGHT x their rough bits
# (vector_bits), its mode the one of least squared error + SSE_PER_BIT x MODE_WEIGHT x its bits (_mode_bits):
# the encoder's choice between a fitted group and this one (nerv/codec.py CHOICE_LAMBDA) prices a bit at
# 0.01 of a squared error of 0..1 samples per pixel, 0.01 x 255^2 x 3 of a block's sum over RGB. megamind's
# first 48 frames, q1-q4, BD-rate of the keys-alone curve: the mode by its bits -7.6% (weight 0.5 -6.4%, 2
# -7.8%) against the least error; then the vectors by their bits -5.3% against 256 SAD units a pixel of
# change (weight 0.5 -3.6%, 2 -5.6%).
SSE_PER_BIT = 0.01 * 255**2 * 3
MODE_WEIGHT = 1.0
VECTOR_WEIGHT = 1.0


def vector_bits(change: torch.Tensor) -> torch.Tensor:
    """Rough bits [...] of vectors' changes [..., 2] from the previous picture's: ~0.5 when 0, else 4 + 2 log2
    of the change's length in pixels (megamind's histograms)."""
    length = change.abs().sum(-1).double()
    return torch.where(length == 0, 0.5, 4 + 2 * torch.log2(length.clamp_min(1)))


def _mode_bits(change: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Rough bits [3, by, bx] of each mode of each block: its change from the previous picture's mode
    ``previous`` [by, bx] (~0.3 bits when kept, ~3.5 when not, as in megamind's histograms) and the vectors
    it uses, from their changes [by, bx, 4] (vector_bits)."""
    vec = vector_bits(change.view(*change.shape[:2], 2, 2))
    used = torch.stack([vec[..., 0], vec[..., 1], vec.sum(-1)])
    kept = torch.arange(MODES)[:, None, None] == previous
    return used + torch.where(kept, 0.3, 3.5)


def between_keys(
    keys: list[torch.Tensor], positions: list[int], pictures: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each uint8 picture [P, 3, h, w] drawn from the decoded keys at ``positions``: (vectors [P, by, bx, 4],
    modes [P, by, bx], the bases uint8 [P, 3, h, w]). A key picture is its own base (vectors 0, mode 0);
    each block takes the mode of least squared error; a vector no mode uses (a picture with one reference's
    second, the other key's of a block of mode 0 or 1) is the previous picture's, which the file then does
    not carry (``used_vectors``). After a key its neighbours are the nearest pictures of both its sides, so
    their vectors start again from 0 (kept from before the key, megamind's first 48 frames lost 0.16 dB)."""
    h, w = pictures.shape[-2:]
    by, bx = grid(h, w)
    last, per_bit = torch.zeros(by, bx, 4, dtype=torch.long), VECTOR_WEIGHT * SSE_PER_BIT
    vectors, modes, bases = [], [torch.zeros(by, bx, dtype=torch.long)], []
    for p, picture in enumerate(pictures):
        i, j = references(p, positions)
        v, m = last.clone(), torch.zeros(by, bx, dtype=torch.long)
        if p in positions:
            v.zero_()
        else:
            v[..., :2] = search(keys[i], picture, last[..., :2], per_bit=per_bit)
            if i != j:
                v[..., 2:] = search(keys[j], picture, last[..., 2:], per_bit=per_bit)
                a, b = warp(keys[i], v[..., :2]), warp(keys[j], v[..., 2:])
                mean = ((a.int() + b.int() + 1) >> 1).to(torch.uint8)
                errors = torch.stack([_block_errors(x, picture) for x in (a, b, mean)])
                m = (errors + _mode_bits(v - last, modes[-1]) * (MODE_WEIGHT * SSE_PER_BIT)).argmin(0)
                # a vector its block's mode leaves unused stays the previous picture's: a 0 to code
                v = torch.where((m == 0)[..., None] & torch.tensor([False, False, True, True]), last, v)
                v = torch.where((m == 1)[..., None] & torch.tensor([True, True, False, False]), last, v)
        vectors.append(v)
        modes.append(m)
        bases.append(keys[i] if p in positions else predict(keys[i], keys[j], v, m))
        last = v
    return torch.stack(vectors), torch.stack(modes[1:]), torch.stack(bases)


# What a VBLK group's file carries of its motion (FORMAT.md 6.4.5): only what the reader cannot infer. A
# picture's modes when it has two references (else all 0), as the change from the previous picture's modes
# mod MODES (blocks keep their mode over pictures); then only the vectors a mode uses, as differences from
# the previous picture's (a key picture's are 0), their dy and then their dx, dx under one table where dy
# is 0 and another where it is not. megamind's first 48 frames, keys every 12 at image q1, bits per pixel:
# vectors 0.0144 -> 0.0105, modes 0.0061 -> 0.0023 (every vector and mode, under one table each, before).


def coded_pictures(positions: list[int], pictures: int) -> np.ndarray:
    """bool [P]: the pictures whose modes the file carries (not keys, two different references)."""
    return np.array([p not in positions and len(set(references(p, positions))) == 2 for p in range(pictures)])


def used_vectors(modes: np.ndarray, positions: list[int]) -> np.ndarray:
    """bool [P, 2, by, bx]: the vectors (from the key before, from the key after) the blocks' modes
    [P, by, bx] use; a key picture uses none, a picture with one reference only the first."""
    other = np.array([p not in positions for p in range(len(modes))])[:, None, None]
    two = coded_pictures(positions, len(modes))[:, None, None]
    return np.stack([other & (modes != 1), two & (modes != 0)], 1)


def bare_symbols(vectors: torch.Tensor, modes: torch.Tensor, positions: list[int]) -> list[np.ndarray]:
    """A VBLK group's integers: [the mode changes, the dy, the dx] of its vectors [P, by, bx, 4] and modes
    [P, by, bx] (between_keys'). A ValueError if a vector the modes leave unused is not the previous
    picture's (the file could not carry it)."""
    m = modes.numpy()
    coded = coded_pictures(positions, len(m))
    changes = (m - np.concatenate([np.zeros_like(m[:1]), m[:-1]])) % MODES
    v = vectors.numpy().reshape(*m.shape, 2, 2).transpose(0, 3, 1, 2, 4)  # [P, 2, by, bx, (dy, dx)]
    diffs = np.diff(v, axis=0, prepend=np.zeros_like(v[:1]))
    used, key = used_vectors(m, positions), np.isin(np.arange(len(m)), positions)
    moved = (diffs[~key] != 0).any(-1) & ~used[~key]
    if moved.any() or v[key].any() or m[~coded].any():
        raise ValueError("an unused vector moved, a key picture's is not 0, or an uncoded mode is not 0")
    return [changes[coded], diffs[used][:, 0], diffs[used][:, 1]]


def bare_modes(changes: np.ndarray, positions: list[int], pictures: int, by: int, bx: int) -> np.ndarray:
    """The modes [P, by, bx] from the file's mode changes (the coded pictures' [n, by, bx] in order)."""
    modes = np.zeros((pictures, by, bx), np.int64)
    for k, p in enumerate(np.flatnonzero(coded_pictures(positions, pictures))):
        modes[p] = (modes[p - 1] + changes[k]) % MODES  # a coded picture is never the first
    return modes


def bare_vectors(dy: np.ndarray, dx: np.ndarray, used: np.ndarray, positions: list[int]) -> torch.Tensor:
    """The vectors [P, by, bx, 4] from the file's dy and dx of the ``used`` ones [P, 2, by, bx]."""
    diffs = np.zeros((*used.shape, 2), np.int64)
    diffs[used] = np.stack([dy, dx], 1)
    v = np.zeros_like(diffs)
    for p in range(len(v)):
        if p not in positions:
            v[p] = (v[p - 1] if p else 0) + diffs[p]
    v = v.transpose(0, 2, 3, 1, 4)
    return torch.from_numpy(np.ascontiguousarray(v.reshape(*v.shape[:3], 4)))


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
    if not symbols.size:  # a table nothing is coded under
        return 0, [1]
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
