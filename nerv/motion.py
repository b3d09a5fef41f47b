"""Global motion of a group of frames (a camera pan or zoom) for the video codecs: estimated by the
encoder, carried in the group's VGOP, and used by both sides to sample each frame out of one canvas.

A frame t's pixel (x, y) (column, row; pixel centres at integers) lies at canvas position
(s_t x + u_t, s_t y + v_t): a similarity without rotation. The file carries, per frame, three float16
numbers: for frame 0 (ln s_0, u_0, v_0); for frame t > 0 its motion from frame t - 1, (ln d_t, e_t, f_t),
frame t's pixel p being at d_t p + (e_t, f_t) in frame t - 1's pixels. ``compose`` chains them in float64
(s_t = s_{t-1} d_t, (u_t, v_t) = (u_{t-1}, v_{t-1}) + s_{t-1} (e_t, f_t)), the same on every machine.
Per-frame steps are small numbers, so float16 holds them to about 1/1000 of a pixel; an absolute
position of several hundred pixels would be off by a quarter pixel, and an error in frame 0's own
numbers only moves or scales the canvas as a whole.

The encoder (``estimate``) measures consecutive pairs: a translation by phase correlation on a
downscaled grey frame, then (ln d, e, f) refined by Gauss-Newton on a coarse-to-fine pyramid. The
reference frame (scale 1) is the most zoomed-in one, so the canvas loses no detail of any frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIN_TRAVEL = 8.0  # a group uses motion only when some frame corner moves more than this (canvas pixels)
MAX_CANVAS = 4.0  # ... and the canvas is at most this many times the frame's area
MIN_GAIN = 0.7  # ... and aligning consecutive frames leaves at most this fraction of their difference
SCALE_RANGE = (1 / 8, 8.0)  # a decoder refuses a frame scale outside (and a frame off the canvas)
MARGIN = 1.0  # canvas pixels kept left of and above the leftmost / topmost frame pixel
BASE_SIZE = 256  # the estimate works on grey frames downscaled (by an integer factor) to at most this side
GN_STEPS = 8  # Gauss-Newton steps per pyramid level (and per frame in refine)
MEDIAN_ROWS = 32  # canvas rows per band of median_canvas
MOSAIC_SLACK = 16.0  # canvas pixels added around the mosaic for frames that the alignment moves outwards


@dataclass(frozen=True)
class Motion:
    """A group's motion: the float16 numbers the file carries [T, 3], the canvas (unpadded) size, and the
    composed per-frame scale s and position (u, v) in canvas pixels (float64 [T] each)."""

    params: np.ndarray
    canvas: tuple[int, int]  # (height, width)
    scale: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def from_params(cls, params: np.ndarray, canvas: tuple[int, int]) -> Motion:
        s, u, v = compose(params)
        return cls(params, canvas, s, u, v)

    def travel(self, height: int, width: int) -> float:
        """The farthest any frame corner moves across the group (canvas pixels)."""
        out = 0.0
        for x, y in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)):
            cx, cy = self.scale * x + self.u, self.scale * y + self.v
            out = max(out, float(np.ptp(cx)), float(np.ptp(cy)))
        return out


def compose(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float16 [T, 3] (module docstring) -> float64 s, u, v [T], chained in order."""
    p = params.astype(np.float64)
    t = p.shape[0]
    s, u, v = np.empty(t), np.empty(t), np.empty(t)
    s[0], u[0], v[0] = math.exp(p[0, 0]), p[0, 1], p[0, 2]
    for i in range(1, t):
        s[i] = s[i - 1] * math.exp(p[i, 0])
        u[i] = u[i - 1] + s[i - 1] * p[i, 1]
        v[i] = v[i - 1] + s[i - 1] * p[i, 2]
    return s, u, v


def canvas_extent(s: np.ndarray, u: np.ndarray, v: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """(height, width) of the canvas that holds every frame's pixels and their cubic taps."""
    return (
        math.ceil(float(np.max(v + s * (height - 1)))) + 2,
        math.ceil(float(np.max(u + s * (width - 1)))) + 2,
    )


def _keys(f: torch.Tensor) -> list[torch.Tensor]:
    """Keys' cubic (a = -0.5) weights of the taps at -1, 0, 1, 2 for fractional positions f (float64)."""
    a = -0.5

    def near(x):  # |x| <= 1
        return (a + 2) * x**3 - (a + 3) * x**2 + 1

    def far(x):  # 1 < |x| < 2
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a

    return [far(1 + f), near(f), near(1 - f), far(2 - f)]


def _taps(scale: float, offset: float, n: int, size: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Indexes (clamped to 0..size-1) and float32 weights of the 4 cubic taps at positions scale i + offset,
    i = 0..n-1, computed in float64 (deterministic)."""
    pos = torch.arange(n, dtype=torch.float64) * scale + offset
    base = pos.floor()
    weights = [w.float() for w in _keys(pos - base)]
    base = base.long()
    index = [(base + k).clamp(0, size - 1) for k in (-1, 0, 1, 2)]
    return index, weights


def window(motion: Motion, frames: range, height: int, width: int, ch: int, cw: int) -> tuple[tuple, tuple]:
    """((r0, r1), (c0, c1)): the canvas rows and columns (of a ch x cw canvas) that ``sample`` reads for
    any of ``frames``."""
    rows, cols = [], []
    for t in frames:  # a frame's first and last taps
        rows += _taps(float(motion.scale[t]), float(motion.v[t]), height, ch)[0][0::3]
        cols += _taps(float(motion.scale[t]), float(motion.u[t]), width, cw)[0][0::3]

    def span(taps: list[torch.Tensor]) -> tuple[int, int]:
        return int(min(i.min() for i in taps)), int(max(i.max() for i in taps)) + 1

    return span(rows), span(cols)


def sample(
    canvas: torch.Tensor,
    motion: Motion,
    frames: torch.Tensor | range,
    height: int,
    width: int,
    part: tuple[int, int, int, int] | None = None,
):
    """canvas [B, C, CH, CW] (one per frame of ``frames``, the group's frame indexes) -> [B, C, height,
    width]: each frame's pixels read from its canvas by separable cubic interpolation (rows, then
    columns), edges clamped. Element-wise float32 sums in a fixed order: the result depends on neither the
    thread count nor the batch. Differentiable in ``canvas``. part (r0, c0, CH, CW): ``canvas`` holds only
    the rows from r0 and the columns from c0 of a CH x CW canvas, all that the frames read (``window``)."""
    out = []
    r0, c0, ch, cw = part or (0, 0, *canvas.shape[-2:])
    for b, t in enumerate(frames):
        t = int(t)
        rows, wy = _taps(float(motion.scale[t]), float(motion.v[t]), height, ch)
        cols, wx = _taps(float(motion.scale[t]), float(motion.u[t]), width, cw)
        lo, hi = int(cols[0].min()) - c0, int(cols[3].max()) + 1 - c0  # the columns the frame reads
        dev = canvas.device
        # each pass gathers its 4 taps at once (index_select: faster than 4 advanced indexings)
        g = (
            canvas[b, :, :, lo:hi]
            .index_select(1, (torch.cat(rows) - r0).to(dev))
            .view(-1, 4, height, hi - lo)
        )
        y = g[:, 0] * wy[0].to(dev)[:, None]
        for k in (1, 2, 3):
            y = y + g[:, k] * wy[k].to(dev)[:, None]
        # columns gathered as rows of the transposed rows (a gather along the last dimension was 1.5x slower)
        g = y.transpose(1, 2).contiguous().index_select(1, (torch.cat(cols) - c0 - lo).to(dev))
        g = g.view(-1, 4, width, height)
        x = g[:, 0] * wx[0].to(dev)[:, None]
        for k in (1, 2, 3):
            x = x + g[:, k] * wx[k].to(dev)[:, None]
        out.append(x.transpose(1, 2))
    return out[0][None] if len(out) == 1 else torch.stack(out)  # one frame (decoding): no copy


def place(
    frames: torch.Tensor,
    motion: Motion,
    index: torch.Tensor,
    height: int,
    width: int,
    mode: str = "bilinear",
    edges: str = "zeros",
    top: int = 0,
) -> torch.Tensor:
    """frames [B, C, h, w] -> [B, C, height, width]: each frame drawn on a canvas of that size at its place
    (grid_sample's ``mode``; where the frame does not reach, zeros or with ``edges="border"`` its nearest
    edge sample), or on the band of canvas rows top..top + height - 1. The encoder's input in a motion
    group; its key picture (median_canvas)."""
    b, _, h, w = frames.shape
    dev = frames.device
    idx = index.cpu().numpy()
    s = torch.as_tensor(motion.scale[idx], dtype=torch.float32, device=dev)[:, None, None]
    u = torch.as_tensor(motion.u[idx], dtype=torch.float32, device=dev)[:, None, None]
    v = torch.as_tensor(motion.v[idx], dtype=torch.float32, device=dev)[:, None, None]
    yy, xx = torch.meshgrid(
        torch.arange(top, top + height, dtype=torch.float32, device=dev),
        torch.arange(width, dtype=torch.float32, device=dev),
        indexing="ij",
    )
    fx = (xx[None] - u) / s  # frame pixel of each canvas pixel
    fy = (yy[None] - v) / s
    grid = torch.stack([fx / max(w - 1, 1) * 2 - 1, fy / max(h - 1, 1) * 2 - 1], dim=-1)
    return F.grid_sample(frames, grid, mode=mode, padding_mode=edges, align_corners=True)


# --- estimation (encoder only) ---------------------------------------------------------------------------


def _grey(frames: torch.Tensor) -> tuple[torch.Tensor, int]:
    """uint8 [T, 3, H, W] -> (float grey [T, 1, h, w] in [0, 1] downscaled by an integer factor f to at
    most BASE_SIZE a side, f)."""
    f = max(1, math.ceil(max(frames.shape[-2:]) / BASE_SIZE))
    g = frames.float().mean(1, keepdim=True) / 255
    if f > 1:
        g = F.avg_pool2d(g, f)
    return g, f


def _phase_shift(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """The integer (dx, dy) with b(p) ~ a(p + (dx, dy)), by phase correlation (a, b: [h, w])."""
    h, w = a.shape
    win = torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)[None]
    fa = torch.fft.rfft2((a - a.mean()) * win)
    fb = torch.fft.rfft2((b - b.mean()) * win)
    r = fa * fb.conj()
    r = r / r.abs().clamp_min(1e-9)
    corr = torch.fft.irfft2(r, s=(h, w))
    k = int(corr.argmax())
    dy, dx = divmod(k, w)
    dy = dy - h if dy > h // 2 else dy
    dx = dx - w if dx > w // 2 else dx
    return float(dx), float(dy)


def _sobel(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central-difference gradients of [1, 1, h, w] (replicated edges)."""
    p = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return gx, gy


def _pair(a: torch.Tensor, b: torch.Tensor, levels: int) -> tuple[float, float, float]:
    """(ln d, e, f): b's pixel p is at d p + (e, f) in a's pixels (a, b: [1, 1, h, w] base-level grey).
    Gauss-Newton on the pyramid, coarse to fine, from phase correlation's translation."""
    h, w = a.shape[-2:]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    tx, ty = _phase_shift(a[0, 0], b[0, 0])
    ls = 0.0  # centred form: q = c + e^ls (p - c) + t
    pa, pb = [a], [b]
    for _ in range(levels - 1):
        pa.append(F.avg_pool2d(pa[-1], 2))
        pb.append(F.avg_pool2d(pb[-1], 2))
    for lvl in reversed(range(levels)):
        A, B = pa[lvl], pb[lvl]
        k = 2**lvl
        hl, wl = A.shape[-2:]
        gxA, gyA = _sobel(A)
        yy, xx = torch.meshgrid(
            torch.arange(hl, dtype=torch.float64), torch.arange(wl, dtype=torch.float64), indexing="ij"
        )
        px, py = k * xx + (k - 1) / 2, k * yy + (k - 1) / 2  # base-level coordinates of level pixels
        for _ in range(GN_STEPS):
            d = math.exp(ls)
            qx, qy = cx + d * (px - cx) + tx, cy + d * (py - cy) + ty
            lx, ly = (qx - (k - 1) / 2) / k, (qy - (k - 1) / 2) / k  # level coordinates
            grid = torch.stack([lx / max(wl - 1, 1) * 2 - 1, ly / max(hl - 1, 1) * 2 - 1], -1)[None].float()
            stack = torch.cat([A, gxA, gyA], 1)
            warped = F.grid_sample(stack, grid, mode="bilinear", padding_mode="border", align_corners=True)
            aw, gx, gy = (warped[0, i].double() / (k if i else 1) for i in range(3))
            inside = (lx >= 0) & (lx <= wl - 1) & (ly >= 0) & (ly <= hl - 1)
            r = (aw - B[0, 0].double())[inside]
            gx, gy = gx[inside], gy[inside]
            j = torch.stack([gx * d * (px - cx)[inside] + gy * d * (py - cy)[inside], gx, gy], 1)
            if r.numel() < 16:
                break
            jtj = j.T @ j + 1e-9 * torch.eye(3, dtype=torch.float64)
            delta = torch.linalg.solve(jtj, -(j.T @ r))
            ls, tx, ty = ls + float(delta[0]), tx + float(delta[1]), ty + float(delta[2])
            ls = max(-0.5, min(0.5, ls))
    d = math.exp(ls)
    return ls, cx * (1 - d) + tx, cy * (1 - d) + ty


def _residual(a: torch.Tensor, b: torch.Tensor, pair: tuple[float, float, float] | None) -> float:
    """Mean squared difference between b and a warped by ``pair`` (or not warped), over b's pixels that
    land inside a."""
    h, w = a.shape[-2:]
    ls, e, f = pair or (0.0, 0.0, 0.0)
    d = math.exp(ls)
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    qx, qy = d * xx + e, d * yy + f
    grid = torch.stack([qx / max(w - 1, 1) * 2 - 1, qy / max(h - 1, 1) * 2 - 1], -1)[None].float()
    warped = F.grid_sample(a, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    if int(inside.sum()) < 16:
        return float("inf")
    return float(((warped[0, 0].double() - b[0, 0].double())[inside] ** 2).mean())


def pairs(frames: torch.Tensor) -> tuple[list[tuple[float, float, float]], float, float]:
    """uint8 [T, 3, H, W] -> (per consecutive pair t - 1, t: (ln d, e, f) in full-resolution pixels
    (module docstring), summed aligned residual, summed unaligned residual)."""
    g, f = _grey(frames)
    levels = 1
    while min(g.shape[-2:]) >> levels >= 24 and levels < 3:
        levels += 1
    out, aligned, plain = [], 0.0, 0.0
    for t in range(1, g.shape[0]):
        a, b = g[t - 1 : t], g[t : t + 1]
        ls, e, ff = _pair(a, b, levels)
        aligned += _residual(a, b, (ls, e, ff))
        plain += _residual(a, b, None)
        d = math.exp(ls)
        # base-level pixel i is full-resolution f i + (f - 1) / 2
        out.append((ls, f * e + (1 - d) * (f - 1) / 2, f * ff + (1 - d) * (f - 1) / 2))
    return out, aligned, plain


def to_params(steps: list[tuple[float, float, float]], height: int, width: int) -> Motion:
    """Per-pair motion -> the group's Motion, float16 as the file carries it (from_absolute)."""
    t = len(steps) + 1
    s, u, v = np.ones(t), np.zeros(t), np.zeros(t)
    for i, (ls, e, f) in enumerate(steps, 1):
        s[i] = s[i - 1] * math.exp(ls)
        u[i], v[i] = u[i - 1] + s[i - 1] * e, v[i - 1] + s[i - 1] * f
    return from_absolute(s, u, v, height, width)


def _normalised(s: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame places (float64 [T] each) moved and scaled as a whole so that the most zoomed-in frame is at
    scale 1 and the frames' union starts MARGIN pixels from the canvas's top-left corner."""
    ref = float(s.min())
    s, u, v = s / ref, u / ref, v / ref
    return s, u - u.min() + MARGIN, v - v.min() + MARGIN


def from_absolute(s: np.ndarray, u: np.ndarray, v: np.ndarray, height: int, width: int) -> Motion:
    """Each frame's scale and place (float64 [T] each, any origin and unit) -> the group's Motion, float16
    as the file carries it (per-frame steps, module docstring), normalised (_normalised)."""
    s, u, v = _normalised(s, u, v)
    steps = np.stack([np.log(s[1:] / s[:-1]), (u[1:] - u[:-1]) / s[:-1], (v[1:] - v[:-1]) / s[:-1]], 1)
    params = np.concatenate([np.array([[math.log(s[0]), u[0], v[0]]]), steps]).astype(np.float16)
    s, u, v = compose(params)
    return Motion(params, canvas_extent(s, u, v, height, width), s, u, v)


def median_canvas(frames: torch.Tensor, motion: Motion) -> torch.Tensor:
    """float [T, C, H, W] -> [C, CH, CW] (motion.canvas): each canvas sample the median over the frames
    that cover it (each frame drawn at its place, bicubic), so the scene once, without what crosses it;
    samples no frame covers take the nearest frame edge's (the frames drawn with their edges extended),
    which codes cheaper than a jump and is never shown. In bands of MEDIAN_ROWS canvas rows: T bands in
    memory, not T canvases (a 720p group's would be gigabytes)."""
    ch, cw = motion.canvas
    index = torch.arange(frames.shape[0])
    out = torch.empty(frames.shape[1], ch, cw)
    for top in range(0, ch, MEDIAN_ROWS):
        rows = min(MEDIAN_ROWS, ch - top)
        covered = place(torch.ones_like(frames[:, :1]), motion, index, rows, cw, top=top) > 0.999
        drawn = place(frames, motion, index, rows, cw, mode="bicubic", edges="border", top=top)
        inside = torch.where(covered, drawn, torch.nan).nanmedian(dim=0).values
        out[:, top : top + rows] = torch.where(torch.isnan(inside), drawn.median(dim=0).values, inside)
    return out


def _align(
    stack: torch.Tensor, frame: torch.Tensor, place0: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Gauss-Newton of one frame's place (ln s, u, v) on a canvas: stack [1, 4, CH, CW] holds the canvas,
    its x and y gradients and where it is valid (1); frame: grey [H, W]. Only the frame's pixels that land
    where the canvas is valid count."""
    ch, cw = stack.shape[-2:]
    h, w = frame.shape
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    ls, a, b = place0
    for _ in range(GN_STEPS):
        d = math.exp(ls)
        qx, qy = d * xx + a, d * yy + b
        grid = torch.stack([qx / (cw - 1) * 2 - 1, qy / (ch - 1) * 2 - 1], -1)[None].float()
        warped = F.grid_sample(stack, grid, mode="bicubic", padding_mode="border", align_corners=True)
        k, gx, gy = (warped[0, i].double() for i in range(3))
        inside = (qx >= 0) & (qx <= cw - 1) & (qy >= 0) & (qy <= ch - 1) & (warped[0, 3] > 0.999)
        if int(inside.sum()) < 16:
            break
        r = (k - frame.double())[inside]
        gx, gy = gx[inside], gy[inside]
        j = torch.stack([gx * d * xx[inside] + gy * d * yy[inside], gx, gy], 1)
        delta = torch.linalg.solve(j.T @ j + 1e-9 * torch.eye(3, dtype=torch.float64), -(j.T @ r))
        ls, a, b = ls + float(delta[0]), a + float(delta[1]), b + float(delta[2])
    return ls, a, b


def _stack(canvas: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """canvas, valid [1, 1, CH, CW] -> _align's stack; valid shrunk by 2 pixels, where the gradients and
    the cubic taps reach outside it."""
    valid = -F.max_pool2d(-valid.float(), 5, stride=1, padding=2)
    return torch.cat([canvas, *_sobel(canvas), valid], 1)


def refine(frames: torch.Tensor, motion: Motion) -> Motion:
    """The frames' places re-measured against a canvas, by Gauss-Newton on full-resolution grey. Chained
    pair estimates drift: on a 48-frame pan across a photo (no zoom) the pairs summed to a 4% zoom and the
    last frames sat 6 px off the first ones' canvas, so a canvas drawn from them was a blur of misaligned
    copies (29.2 dB for the frames sampled from it; 42.1 dB after this). A mosaic: frame by frame, each
    frame is placed by its pair step from the previous one's new place, aligned to the mean of the frames
    already aligned, then added to it. (Aligning every frame again to the median canvas of them all
    changed nothing on four clips.)"""
    t, _, h, w = frames.shape
    g = frames.float().mean(1, keepdim=True) / 255
    cs, cu, cv = _normalised(motion.scale, motion.u, motion.v)
    s, u, v = cs.copy(), cu + MOSAIC_SLACK, cv + MOSAIC_SLACK
    ch, cw = (n + 2 * int(MOSAIC_SLACK) for n in canvas_extent(cs, cu, cv, h, w))
    acc, count = torch.zeros(1, 1, ch, cw), torch.zeros(1, 1, ch, cw)
    ones = torch.ones(1, 1, h, w)
    for i in range(t):
        if i:
            r = s[i - 1] / cs[i - 1]  # the pair step, at the previous frame's new scale
            s[i], u[i], v[i] = (
                s[i - 1] * cs[i] / cs[i - 1],
                u[i - 1] + r * (cu[i] - cu[i - 1]),
                v[i - 1] + r * (cv[i] - cv[i - 1]),
            )
            mosaic = acc / count.clamp_min(1)
            ls, u[i], v[i] = _align(_stack(mosaic, count > 0), g[i, 0], (math.log(s[i]), u[i], v[i]))
            s[i] = math.exp(ls)
        here = Motion(motion.params, (ch, cw), s, u, v)
        covered = (place(ones, here, torch.tensor([i]), ch, cw) > 0.999).float()
        acc += place(g[i : i + 1], here, torch.tensor([i]), ch, cw, mode="bicubic") * covered
        count += covered
    return from_absolute(s, u, v, h, w)


def estimate(frames: torch.Tensor) -> Motion | None:
    """uint8 [T, 3, H, W] -> the group's Motion where the camera really moves (a corner travels more than
    MIN_TRAVEL canvas pixels, aligning frames removes most of their difference, and the canvas is at most
    MAX_CANVAS times a frame), else None: the group is coded without motion."""
    t, _, h, w = frames.shape
    if t < 2:
        return None
    steps, aligned, plain = pairs(frames)
    if not (math.isfinite(aligned) and aligned <= MIN_GAIN * plain):
        return None  # frames too small to align, or aligning them does not explain their difference
    if not (np.isfinite(steps).all() and np.abs(steps).max() < max(h, w)):
        return None  # a wild estimate: no frame moves by more than its size
    motion = refine(frames, to_params(steps, h, w))
    ch, cw = motion.canvas
    if motion.travel(h, w) <= MIN_TRAVEL or ch * cw > MAX_CANVAS * h * w:
        return None
    return motion
