"""Video codecs ``hnerv`` (default) and ``nerv``: the encoder fits a network to each group of frames; the
bitstream carries the quantized, entropy-coded decoder (and HNeRV's embeddings).

Each group of frames is one ``VGOP`` chunk, decodable alone (``decode(..., frames=(a, b))`` touches only
the groups it needs). Chunk payload: u32 length + UTF-8 JSON (architecture, frame range, bits, one scale
index per tensor), the float16 quantization steps of every tensor in order, then one entropy-coded
stream of all integer symbols (decoder tensors in state-dict order, then embeddings) under the Gaussian
tables, each tensor with its own scale index. Profile ``tables``: decoding the symbols needs no network.
An hnerv group whose camera pans or zooms (motion.py) adds a JSON ``motion`` key (the canvas size) and 3
float16 motion numbers per frame after the steps: its network draws the canvas, each frame is sampled
from it (FORMAT.md 6.4.1). Any group may be drawn over a key picture, its median frame (a motion group's:
its median canvas) coded as an image file in a ``VKEY`` chunk before it (keypicture.py, FORMAT.md 6.4.2).
An hnerv group whose frames repeat exactly adds a JSON ``held`` key (run lengths): one embedding per run,
each run drawn once (held.py, FORMAT.md 6.4.3). A group over a key picture whose content moves inside the
frame adds a JSON ``blocks`` key: its key picture is then one of its frames, moved block by block for each
picture by vectors coded with its other integers (blocks.py, FORMAT.md 6.4.4). A group may instead be
drawn from some of its frames alone, a VKEY chunk each, then a VBLK chunk with no network: each block of
the other frames moved from the key before it, the key after it or both (FORMAT.md 6.4.5).
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import torch

from mcodec.codec.base import Codec, CodecError, CodecInfo, Payload
from mcodec.codec.determinism import map_beside, map_per_item, thread_independent
from mcodec.codec.media_io.video_source import VideoSource
from mcodec.codec.schema import Int, ListOf, Number, OneOf, Schema, Text, media_fields
from mcodec.entropy import decode_indexed, encode_indexed, gaussian_tables, scale_indexes, scale_table
from mcodec.entropy.gaussian import SCALE_LEVELS
from mcodec.entropy.tables import TableSet

from . import blocks as block_motion
from .blocks import Blocks
from .budget import LEAST, Budget, Pacer, duration, plan_epochs
from .fit import BATCH, PRESETS, fit_group, fit_steps, time_steps
from .held import first_frames, held_runs, picture_index, runs_of
from .keypicture import base_logits, canvas_picture, decode_key, encode_key, median_picture
from .model import (
    EMBED_DIM,
    STRIDE_CHOICES,
    TOTAL_STRIDES,
    WIDTHS,
    Decoder,
    NervConfig,
    over,
    parameter_count,
    plan,
    tensor_shapes,
)
from .motion import MAX_CANVAS, SCALE_RANGE, Motion, estimate, sample, window
from .progress import ClipProgress
from .quant import quantize, rebuild, steps_for
from .rate import MIN_STD

BITS = 8
QUALITIES = (1, 6)
MAX_GROUP_FRAMES = 120
GROUP_BYTES = 1 << 30  # float frames of one group in memory, at most
BPP_AT_Q1 = 0.02  # rate budget of quality 1 (bits per pixel); each level doubles it
BITS_PER_WEIGHT = 6.0  # what an 8-bit weight costs after entropy coding, for sizing the network
SLOW_NOTE_S = 1800  # a fit expected to take longer than this (no budget given) is announced
RATE_AWARE = True  # the encoder's default: the rate-aware fine-tune (fit.py), or steps max|w| / 127 (fewer
# bytes for about the same PSNR on tree and megamind)
# Each group after the first starts its fit from the previous group's networks (an encoder choice, alone
# it changes nothing in the file)
WARM_START = True
# ... and, but for every KEY_EVERY-th group, codes its decoder tensors as differences from the previous
# group's (a VDIF chunk): a frame range then reads the groups' weights back to its last VGOP (their
# streams only: no frames of those groups are synthesized)
DIFF_GROUPS = True
KEY_EVERY = 4
# hnerv: a group whose camera pans or zooms (motion.py's rule) is drawn on one canvas the frames are sampled
# from (FORMAT.md 6.4.1); every other group is coded as before
MOTION = True
# every group is drawn over a key picture, its median frame (a motion group's: its median canvas) coded by
# the image codec (a VKEY chunk before the group's; keypicture.py, FORMAT.md 6.4.2)
KEY_PICTURES = True
# ... and a group whose content moves inside the frame is drawn over one of its frames moved block by block
# (blocks.py's rule; FORMAT.md 6.4.4)
BLOCK_MOTION = True
# ... and any other group (but a motion group's) is drawn from keys every blocks.SPACING pictures alone, with
# no network (a VBLK chunk), where that costs less: its squared error and bits, at CHOICE_LAMBDA, against
# the fitted group's as decoded
BARE_BLOCKS = True
# The default preset: fast. On tree.avi's 120 frames medium (3.5x the fit steps) moved each point up its
# curve (+11% bytes for +0.3..0.6 dB) rather than the curve up (BD-PSNR vs x264 -1.08 dB at medium, -1.04
# at fast), and took 20-24 minutes a point on one core where the target is 10 minutes on two.
DEFAULT_PRESET = "fast"
LAMBDA_Q1 = 0.01  # rate-aware: weight on estimated bits per pixel at quality 1 (MSE on [0, 1] pixels)
LAMBDA_STEP = 3.0  # ... divided by this per quality level
# The choice between a fitted group and one drawn from keys alone weighs bits per pixel by the slope of the
# keys-alone curve at every quality (megamind, 48 frames, q1..q4: MSE falls ~0.01 per bpp), not by the
# fit's lambda, which falls 3x a level: with it q3 and q4 kept fitted groups of 0.116 and 0.182 bpp for
# 32.55 and 33.60 dB, where keys alone gave 0.045 / 31.88 and 0.052 / 32.34 (x264 medium: 40.1 dB at 0.116)
CHOICE_LAMBDA = LAMBDA_Q1
INFOS = {
    "hnerv": CodecInfo(
        "hnerv",
        "video",
        QUALITIES,
        3,
        "HNeRV: per-clip fitted decoder + per-frame embeddings (fitted on the GPU if any)",
        presets=tuple(PRESETS),
        default_preset=DEFAULT_PRESET,
    ),
    "nerv": CodecInfo(
        "nerv",
        "video",
        QUALITIES,
        3,
        "NeRV: per-clip fitted decoder driven by the frame index",
        presets=tuple(PRESETS),
        default_preset=DEFAULT_PRESET,
    ),
}
_TABLES = gaussian_tables()
_SCALES = scale_table()


# hnerv's grid: half the stride where the embeddings cost little. tree.avi's 120 frames are 19 pictures
# (held frames); on a 6x8 grid instead of 3x4 (embeddings 6% and 24% of the budget at q4 and q2): q4
# 0.1300 bpp / 30.78 dB -> 0.1578 / 31.61 (+0.5 dB over the curve), q2 0.0504 / 29.33 -> 0.0543 / 29.50
# (+0.1 only). At 1/8, q3 and q4 switch there, and a clip of distinct frames keeps its grid up to q5
# (embeddings 19% of the budget), where it was not measured.
FINE_GRID_SHARE = 0.125


def parameter_budget(height: int, width: int, frames: int, quality: float) -> float:
    """Decoder parameters a group of frames may spend at this quality."""
    return BPP_AT_Q1 * 2 ** (quality - 1) * height * width * frames / BITS_PER_WEIGHT


def rate_lambda(quality: float) -> float:
    """The rate-aware fine-tune's lambda at this quality: smaller at higher qualities (more bits)."""
    return LAMBDA_Q1 / LAMBDA_STEP ** (quality - 1)


def network_for(
    kind: str,
    height: int,
    width: int,
    frames: int,
    quality: float,
    canvas: tuple[int, int] | None = None,
    pictures: int | None = None,
) -> NervConfig:
    """The widest decoder whose parameters fit the quality's rate budget for this many pixels, drawing
    frames of height x width or, in a motion group, the canvas (height, width). hnerv: on a grid of half
    plan's stride where the embeddings of the group's ``pictures`` (held.py; default: one per frame) are
    at most FINE_GRID_SHARE of the budget, else on plan's."""
    budget = parameter_budget(height, width, frames, quality)
    ch, cw = canvas or (height, width)
    best = plan(kind, ch, cw, WIDTHS[0])
    stride = math.prod(best.strides)
    if kind == "hnerv" and stride > min(TOTAL_STRIDES):
        fine = plan(kind, ch, cw, WIDTHS[0], max_stride=stride // 2)
        values = (pictures or frames) * fine.embed_dim * math.prod(fine.grid)
        if values <= FINE_GRID_SHARE * budget and parameter_count(fine) <= budget:
            best, stride = fine, math.prod(fine.strides)
    for width0 in WIDTHS:
        cfg = plan(kind, ch, cw, width0, max_stride=stride)
        if parameter_count(cfg) > budget:
            break
        best = cfg
    return best


def max_parameters(
    kind: str, height: int, width: int, frames: int, canvas: tuple[int, int] | None = None
) -> int:
    """The most decoder parameters ``network_for`` gives a group of this size at any quality: the top
    quality's budget, or the narrowest network where even that is over it. A decoder refuses more."""
    narrowest = parameter_count(plan(kind, *(canvas or (height, width)), WIDTHS[0]))
    return max(narrowest, int(parameter_budget(height, width, frames, QUALITIES[1])))


def max_group_frames(height: int, width: int) -> int:
    """The most frames the encoder puts in one group (GROUP_BYTES of float frames in memory)."""
    return max(1, min(MAX_GROUP_FRAMES, GROUP_BYTES // (12 * height * width)))


def motion_canvas(kind: str, height: int, width: int, canvas: tuple[int, int]) -> tuple[int, int]:
    """The canvas (height, width) a motion group is coded with: ``canvas`` widened, where its padded size
    would pass for the clip's own padded size, until it no longer does. A reader that does not know motion
    groups then refuses them at its size check (FORMAT.md 6.4.1) instead of decoding a frame-sized picture."""
    ch, cw = canvas
    while True:
        cfg = plan(kind, ch, cw, WIDTHS[0])
        s = math.prod(cfg.strides)
        if cfg.height >= height + s or cfg.width >= width + s:
            return ch, cw
        cw = cfg.width + 1


def group_ranges(frames: int, height: int, width: int) -> list[tuple[int, int]]:
    groups = math.ceil(frames / max_group_frames(height, width))
    size = math.ceil(frames / groups)  # even groups
    return [(a, min(a + size, frames)) for a in range(0, frames, size)]


# What a decoder reads from the HEAD params (FORMAT.md 6.4); quality and preset are informative.
PARAMS = Schema(
    "video params",
    {**media_fields("video"), "quality": Number(*QUALITIES), "preset": Text(32, required=False)},
)
_BLOCKS = {  # a block-motion group's (FORMAT.md 6.4.4)
    "size": OneOf((block_motion.BLOCK,)),
    "low": Int(-2 * block_motion.MAX_VECTOR, 2 * block_motion.MAX_VECTOR),
    "counts": ListOf(Int(0, 1 << 30), 1, 4 * block_motion.MAX_VECTOR + 1),
}
# A VGOP's JSON header, field by field; check_group adds what depends on the clip and the architecture.
GROUP = Schema(
    "VGOP header",
    {
        "config": Schema(
            "config",
            {
                "kind": OneOf(tuple(INFOS)),
                "height": Int(1, 1 << 14),
                "width": Int(1, 1 << 14),
                "strides": ListOf(OneOf(STRIDE_CHOICES), 1, 8),
                "channels": ListOf(Int(1, WIDTHS[-1]), 2, 9),
                "embed_dim": Int(1, EMBED_DIM),
            },
        ),
        "first": Int(0, 1 << 20),
        "motion": Schema("motion", {"height": Int(1, 1 << 14), "width": Int(1, 1 << 14)}, required=False),
        "count": Int(1, MAX_GROUP_FRAMES),
        "held": ListOf(Int(1, MAX_GROUP_FRAMES), 1, MAX_GROUP_FRAMES, required=False),
        "blocks": Schema("blocks", _BLOCKS, required=False),
        "bits": OneOf((BITS,)),
        "tensors": ListOf(
            Schema(
                "tensor",
                {
                    "name": Text(64),
                    "shape": ListOf(Int(1, 1 << 40), 1, 4),
                    "idx": Int(0, SCALE_LEVELS),  # SCALE_LEVELS: block motion's own table (vectors)
                    "steps": Int(1, 1 << 40),
                },
            ),
            1,
            64,
        ),
    },
)

_HISTOGRAM = Schema("histogram", {"low": _BLOCKS["low"], "counts": _BLOCKS["counts"]})
# A VBLK's (FORMAT.md 6.4.5): a group drawn from its keys alone; check_bare adds what depends on the clip.
BARE = Schema(
    "VBLK header",
    {
        "first": Int(0, 1 << 20),
        "count": Int(1, MAX_GROUP_FRAMES),
        "held": ListOf(Int(1, MAX_GROUP_FRAMES), 1, MAX_GROUP_FRAMES, required=False),
        "blocks": Schema(
            "blocks",
            {
                "size": _BLOCKS["size"],
                "keys": ListOf(Int(0, MAX_GROUP_FRAMES - 1), 1, MAX_GROUP_FRAMES),
                "modes": ListOf(Int(0, 1 << 30), block_motion.MODES, block_motion.MODES),
                "dy": _HISTOGRAM,
                "dx": ListOf(_HISTOGRAM, 2, 2),
            },
        ),
    },
)


class NervCodec(Codec):
    profile = "tables"
    tables_hash = _TABLES.sha256()
    schema = PARAMS

    def __init__(self, kind: str, weights=None):
        if weights is not None:
            raise CodecError(f"{kind} has no model file: the network is fitted to each clip")
        self.kind, self.info, self.model_id = kind, INFOS[kind], kind

    def encode(
        self,
        item,
        quality: float,
        device: str = "cpu",
        preset: str = DEFAULT_PRESET,
        progress: bool = True,
        epochs: tuple[float, float] | None = None,
        max_minutes: float | None = None,
        log: Callable[[str], None] | None = None,
        rate_aware: bool | None = None,
        motion: bool | None = None,
        key_pictures: bool | None = None,
        block_motion: bool | None = None,
        **options,
    ) -> Payload:
        """item: a VideoSource (read group by group: memory holds one group, not the clip), or (uint8
        frames [T, 3, H, W], frame rate). epochs: (fit, fine-tune) epochs per group instead of the preset's.
        max_minutes: plan the epochs (at most the preset's) so the whole fit takes about that long here
        (budget.py). log: one-line messages for the user (the plan; the expected time of a slow clip).
        rate_aware: the fine-tune learns the steps with a rate term (fit.py; None: RATE_AWARE). Either way
        the file is the same format, decoded the same way. motion: hnerv codes a group whose camera pans or
        zooms on a canvas (motion.py; None: MOTION); off, every group is coded as without it.
        key_pictures: each group is drawn over its key picture (keypicture.py; None: KEY_PICTURES).
        block_motion: a group over a key picture may move it block by block, and a group (not a motion
        group's) may be drawn from keys alone where that costs less (BARE_BLOCKS; blocks.py; None:
        BLOCK_MOTION)."""
        source = item if isinstance(item, VideoSource) else _tensor_source(item)
        self.check_preset(preset)
        if epochs is not None and not all(isinstance(e, (int, float)) and 0 < e < 1e6 for e in epochs):
            raise CodecError(f"epochs {epochs} must be two positive numbers")
        if max_minutes is not None and not 0 < max_minutes < 1e7:
            raise CodecError(f"a time budget of {max_minutes:g} minutes: give a positive number")
        if epochs is not None and max_minutes is not None:
            raise CodecError("give epochs or a time budget, not both")
        lam = rate_lambda(quality) if (RATE_AWARE if rate_aware is None else rate_aware) else None
        use_motion = self.kind == "hnerv" and (MOTION if motion is None else motion)
        use_keys = KEY_PICTURES if key_pictures is None else key_pictures
        use_blocks = use_keys and (BLOCK_MOTION if block_motion is None else block_motion)
        t, h, w = source.frames, source.height, source.width
        rate = Fraction(source.rate).limit_denominator(1 << 20)
        ranges = group_ranges(t, h, w)
        # the time planner's networks; each group's own is chosen once its frames are read (motion, runs)
        configs = [network_for(self.kind, h, w, b - a, quality) for a, b in ranges]
        per_epoch = [math.ceil((b - a) / BATCH) for a, b in ranges]
        chosen = f"{epochs[0]:g} + {epochs[1]:g} epochs" if epochs else f"preset {preset}"
        epochs = epochs or PRESETS[preset]
        budget = step_s = None
        if max_minutes is not None:
            budget = Budget(max_minutes, epochs)
            epochs, step_s = self._plan(budget, source, configs, per_epoch, preset, device, log, lam)

        def steps_from(g: int) -> int:
            return sum(sum(fit_steps(epochs, b - a)) for a, b in ranges[g:])

        def estimate(seconds: float) -> None:
            if log is not None and budget is None and seconds > SLOW_NOTE_S:
                log(
                    f"note: {w}x{h} frames are slow to fit on {device}: about {duration(seconds)} for the "
                    f"{t} frames at {chosen} (--max-minutes plans the epochs for a time budget)"
                )

        bar = ClipProgress(steps_from(0), f"{self.kind} {t} frames", progress, estimate)
        chunks, fit, rebuilt, previous = [], None, None, None
        try:
            for g, ((a, b), frames) in enumerate(zip(ranges, source.groups(ranges), strict=True)):
                on_step = bar.on_step
                if budget is not None:  # re-plan from the steps so far; pace the group to its share
                    if g > 0 and (measured := bar.step_seconds()) is not None:
                        step_s = measured
                        epochs = budget.plan(sum(per_epoch[g:]), step_s).epochs
                        bar.set_total(bar.done + steps_from(g))
                    until = budget.until(per_epoch[g] / sum(per_epoch[g:]))
                    on_step = _paced(bar, Pacer(until, fit_steps(epochs, b - a), step_s), steps_from(g + 1))
                bar.group = f"group {g + 1}/{len(ranges)} " if len(ranges) > 1 else ""
                start = fit if WARM_START else None
                moves = self._motion(frames, h, w) if use_motion else None
                runs = held_runs(frames) if self.kind == "hnerv" else [1] * (b - a)
                canvas = None if moves is None else moves.canvas
                cfg = network_for(self.kind, h, w, b - a, quality, canvas, len(runs))
                ref = rebuilt if DIFF_GROUPS and g % KEY_EVERY and cfg == previous else None
                keys, base, moved, vectors = [], None, None, None
                if use_keys:
                    picture = median_picture(frames) if moves is None else canvas_picture(frames, moves)
                    keys = [encode_key(picture, quality)]
                    # the fit draws over the picture as the decoder will have it: decoded, not the median
                    decoded = decode_key(keys[0], *picture.shape[-2:])
                    block_key = None
                    if use_blocks and moves is None:
                        block_key = _block_motion(frames, runs, decoded, quality)
                    if block_key is None:
                        base = base_logits(decoded, cfg.height, cfg.width)
                    else:
                        keys[0], vectors, moved = block_key
                fit = fit_group(
                    frames,
                    cfg,
                    BITS,
                    epochs,
                    device,
                    on_step=on_step,
                    lam=lam,
                    start=start,
                    ref=ref,
                    motion=moves,
                    base=base,
                    pictures=picture_index(runs),
                    moved=moved,
                )
                data, built = _write_group(cfg, a, b, fit, moves, ref, runs, vectors)
                group = [*(("VKEY", k) for k in keys), ("VGOP" if ref is None else "VDIF", data)]
                if use_blocks and BARE_BLOCKS and moves is None:
                    fitted = (group, _decoded_error(group, (h, w), self.kind, ref, frames))
                    group = _cheaper(fitted, _bare(frames, a, runs, quality), CHOICE_LAMBDA, (b - a) * h * w)
                chunks.extend(group)
                # a VBLK group passes no decoder on: the next group's is a VGOP
                rebuilt, previous = (built, cfg) if group[-1][0] != "VBLK" else (None, None)
                del frames, start  # before the next group is read: one in memory, not two
        finally:
            bar.close()
        params = {
            "width": w,
            "height": h,
            "frames": t,
            "fps_num": rate.numerator,
            "fps_den": rate.denominator,
            "quality": float(quality),
            "preset": preset,
        }
        return Payload(params, chunks)

    def _motion(self, frames: torch.Tensor, height: int, width: int) -> Motion | None:
        """The group's global motion if it is coded with one (motion.estimate's rule, on the canvas it
        would be coded with), else None."""
        moves = estimate(frames)
        if moves is None:
            return None
        # the canvas rounded up to the frame's total stride: plan then keeps (at least) the frame's grid
        # cell, where a canvas padded by plan alone often got a smaller stride and several times the cells
        s = math.prod(plan(self.kind, height, width, WIDTHS[0]).strides)
        ch, cw = (-(-n // s) * s for n in moves.canvas)
        ch, cw = motion_canvas(self.kind, height, width, (ch, cw))
        return replace(moves, canvas=(ch, cw)) if ch * cw <= MAX_CANVAS * height * width else None

    def _plan(self, budget: Budget, source: VideoSource, configs, per_epoch, preset, device, log, lam):
        """The epochs per group that fit the budget, from the measured step times of the first group's
        network (a one-line CodecError where even budget.LEAST would not)."""
        t, h, w = source.frames, source.height, source.width
        step_s = time_steps(configs[0], BITS, device, clock=budget.clock, lam=lam)
        plan = budget.plan(sum(per_epoch), step_s)
        full = plan_epochs(float("inf"), sum(per_epoch), step_s, budget.most).seconds
        speed = f"a step of {BATCH} frames takes {step_s[0]:.2f} s fitting, {step_s[1]:.2f} s fine-tuning"
        if not plan.fits:
            raise CodecError(
                f"--max-minutes {budget.minutes:g} is too short for {t} frames of {w}x{h} on "
                f"{device}: {speed}, so even {LEAST[0]} + {LEAST[1]} epochs take about "
                f"{duration(plan.seconds)} (preset {preset}: {duration(full)})"
            )
        if log is not None:
            groups = f"{len(configs)} groups, re-planned after each" if len(configs) > 1 else "1 group"
            log(
                f"{self.kind}: {plan.epochs[0]} + {plan.epochs[1]} epochs per group to fit the time budget "
                f"(preset {preset}: {budget.most[0]:g} + {budget.most[1]:g}, about {duration(full)}); "
                f"{speed}; "
                f"expected {duration(plan.seconds)} for {t} frames of {w}x{h} ({groups})"
            )
        return plan.epochs, step_s

    def decode(self, payload: Payload, device: str = "cpu", frames: tuple[int, int] | None = None, **options):
        """(uint8 frames [T, 3, H, W] of the range ``frames`` (a, b), or all; frame rate), whole in memory."""
        return torch.cat(list(self.decode_groups(payload, device, frames))), _rate(payload.params)

    def decode_groups(
        self, payload: Payload, device: str = "cpu", frames: tuple[int, int] | None = None
    ) -> Iterator[torch.Tensor]:
        """The frames a..b-1 of ``frames`` (a, b), or all, as uint8 [n, 3, H, W] groups decoded while they
        are consumed (memory holds one group). Every group's header is checked here first; a group outside
        the range is not decoded."""
        p = payload.params
        t, h, w = p["frames"], p["height"], p["width"]
        a, b = frames or (0, t)
        if not 0 <= a < b <= t:
            raise CodecError(f"frame range {a}:{b} outside the clip's 0:{t}")
        groups = self.groups(payload)

        def decoded():
            needed = [i for i, (_, g) in enumerate(groups) if g.head["first"] < b and g.end > a]
            key = max(i for i in range(needed[0] + 1) if not groups[i][1].diff)  # where the chain starts
            ref = None
            for data, group in groups[key : needed[-1] + 1]:
                out, ref = _decode_group(data, group, ref, (h, w), device, (a, b))
                if out is not None:
                    yield out

        return decoded()

    def groups(self, payload: Payload) -> list[tuple[bytes, CheckedGroup | BareGroup]]:
        """Every VGOP, VDIF or VBLK with its checked header (check_group, check_bare), in file order, after
        checking that they cover frames 0..T-1 in order, contiguous and without overlap (FORMAT.md 6.4),
        each with the key picture files before it (6.4.2: their own checks come when they are decoded;
        a VBLK takes its keys', 6.4.5, any other group one or none). Cheap: no group's
        stream is decoded, so a frame-range decode checks them all and decodes only those it needs."""
        out, end, keys = [], 0, []
        for ctype, data in payload.chunks:
            if ctype == "VKEY":
                if len(keys) >= MAX_GROUP_FRAMES:
                    raise CodecError(f"over {MAX_GROUP_FRAMES} video key pictures (VKEY) before a group")
                keys.append(data)
                continue
            if ctype not in ("VGOP", "VDIF", "VBLK"):
                raise CodecError(f"unexpected chunk {ctype}")
            if ctype == "VBLK":
                group = check_bare(data, payload.params)
            else:
                group = check_group(data, payload.params, self.kind, diff=ctype == "VDIF")
            if "blocks" in group.head and not keys:
                raise CodecError("a video group with block motion has no key picture (VKEY) before it")
            if keys and len(keys) != group.key_count:
                raise CodecError(
                    f"{len(keys)} video key pictures (VKEY) for a group that takes {group.key_count}"
                )
            group, keys = replace(group, keys=tuple(keys)), []
            if group.diff and (not out or out[-1][1].cfg != group.cfg):
                raise CodecError(
                    f"video group {len(out)} is coded as differences from a previous group of another "
                    "architecture"
                    if out
                    else "the first video group is coded as differences (VDIF) from no group"
                )
            if group.head["first"] != end:
                raise CodecError(
                    f"video group {len(out)} starts at frame {group.head['first']}, not {end} "
                    "(groups must be in order, contiguous and not overlap)"
                )
            end += group.head["count"]
            out.append((data, group))
        if keys:
            raise CodecError("a video key picture (VKEY) with no group after it")
        if end != payload.params["frames"]:
            raise CodecError(f"video groups cover {end} of the clip's {payload.params['frames']} frames")
        return out


def _block_motion(
    frames: torch.Tensor, runs: list[int], median: torch.Tensor, quality: float
) -> tuple[bytes, torch.Tensor, torch.Tensor] | None:
    """A group's key picture moved block by block (blocks.py), if it pays: (the VKEY payload of its middle
    picture, the vectors [P, by, bx, 2], the moved pictures uint8 [P, 3, h, w]) when those leave at most
    blocks.GAIN of the squared error the decoded median frame ``median`` leaves, else None."""
    pictures = frames[first_frames(runs)]
    median_error = block_motion.squared_error(median, pictures, runs)
    middle = pictures[len(pictures) // 2]
    key = encode_key(middle, quality)
    decoded = decode_key(key, *middle.shape[-2:])
    vectors = block_motion.group_vectors(decoded, pictures)
    moved = torch.stack([block_motion.warp(decoded, v) for v in vectors])
    moved_error = block_motion.squared_error(moved, pictures, runs)
    if moved_error > block_motion.GAIN * median_error:
        return None
    return key, vectors, moved


Coded = tuple[list[tuple[str, bytes]], float]  # a group's chunks, and the squared error they decode to


def _bare(frames: torch.Tensor, first: int, runs: list[int], quality: float) -> Coded:
    """The group drawn from keys alone (FORMAT.md 6.4.5): its pictures at blocks.key_positions coded by the
    image codec at the video quality + blocks.KEY_STEP, every other picture moved block by block from the
    keys around it (blocks.between_keys)."""
    pictures = frames[first_frames(runs)]
    positions = block_motion.key_positions(len(pictures))
    keys = [encode_key(pictures[p], quality, block_motion.KEY_STEP) for p in positions]
    decoded = [decode_key(k, *pictures.shape[-2:]) for k in keys]
    vectors, modes, bases = block_motion.between_keys(decoded, positions, pictures)
    data = _write_bare(first, len(frames), runs, Blocks(vectors, modes, positions))
    return [*(("VKEY", k) for k in keys), ("VBLK", data)], block_motion.squared_error(bases, pictures, runs)


def _decoded_error(
    group: list[tuple[str, bytes]], size: tuple[int, int], kind: str, ref: dict | None, frames: torch.Tensor
) -> float:
    """The squared error of a fitted group's chunks (its keys, then its VGOP or VDIF) as a reader decodes
    them; ref: the previous group's decoder tensors (a VDIF)."""
    (ctype, data), keys = group[-1], [k for _, k in group[:-1]]
    params = {"height": size[0], "width": size[1]}
    checked = replace(check_group(data, params, kind, diff=ctype == "VDIF"), keys=tuple(keys))
    decoded = _decode_group(data, checked, ref, size, "cpu", (checked.head["first"], checked.end))[0]
    return block_motion.squared_error(decoded, frames, [1] * len(frames))


def _cheaper(fitted: Coded, bare: Coded, lam: float, pixels: int) -> list[tuple[str, bytes]]:
    """The chunks of the coding that costs less: MSE (of 0..1 samples) + lam x bits per pixel."""

    def cost(coded: Coded) -> float:
        chunks, error = coded
        return error / (255**2 * 3 * pixels) + lam * 8 * sum(len(d) for _, d in chunks) / pixels

    return min(fitted, bare, key=cost)[0]


def _decode_group(
    data: bytes,
    group: CheckedGroup | BareGroup,
    ref: dict | None,
    size: tuple[int, int],
    device: str,
    span: tuple[int, int],
) -> tuple[torch.Tensor | None, dict | None]:
    """A checked group's frames within the clip's frames span (a, b), uint8 [n, 3, H, W] (None for a group
    that ends before a: it only passes its decoder on), and the decoder tensors it passes on (None after a
    VBLK). ref: the decoder tensors the previous group passed on (a VDIF's reference)."""
    (h, w), (a, b) = size, span
    first, count = group.head["first"], group.head["count"]
    lo, hi = max(a, first) - first, min(b, first + count) - first
    pic = group.pictures[lo:hi]
    if isinstance(group, BareGroup):
        if group.end <= a:
            return None, None
        blocks = _read_bare(data, group, h, w)
        return _draw_bare(group.keys, blocks, pic, h, w), None
    decoder, inputs, vectors = _read_tensors(data, group, ref if group.diff else None)
    out = None
    if group.end > a:
        moved = key = None
        if group.key is not None:
            size, cfg = (h, w) if group.motion is None else group.motion.canvas, group.cfg
            if vectors is None:  # decoded beside the first frames (reconstruct)
                key = lambda: base_logits(decode_key(group.key, *size), cfg.height, cfg.width)  # noqa: E731
            else:
                moved = _moved([decode_key(group.key, *size)], Blocks(vectors), pic)
        out = reconstruct(decoder, inputs[pic], h, w, device, group.motion, lo, runs_of(pic), moved, key)
    return out, dict(decoder.state_dict())


def _draw_bare(keys: tuple[bytes, ...], blocks: Blocks, pictures: torch.Tensor, h: int, w: int):
    """A VBLK group's ``pictures`` (picture indexes, one per frame) -> uint8 [n, 3, h, w]: the keys they
    take decoded one per thread, then each distinct picture drawn, one per thread. Keys are the decoder's
    cost (~165 ms a 320x240 key on one core, against ~3 ms a moved picture), and one key on each core
    beats two cores on one key (its layers are too small to split well): megamind cropped to 320x240, 96
    frames at q2, 8 keys, 2 threads: 66-68 -> 116-120 frames/s. A key no picture takes (a range decode)
    is not decoded."""
    distinct = sorted({int(p) for p in pictures})
    taken = sorted({k for p in distinct for k in block_motion.references(p, blocks.positions)})
    decoded = dict(zip(taken, map_per_item(lambda k: decode_key(keys[k], h, w), taken, "cpu"), strict=True))
    ordered = [decoded.get(k) for k in range(len(keys))]
    drawn = dict(zip(distinct, map_per_item(lambda p: blocks.base(ordered, p), distinct, "cpu"), strict=True))
    return torch.stack([drawn[int(p)] for p in pictures])


def _paced(bar: ClipProgress, pacer: Pacer, later_steps: int) -> Callable[[str, float], bool]:
    """fit_group's on_step under a time budget: the bar, then the pacer (the bar's total follows a phase
    the pacer ends early; later_steps: the planned steps of the groups after this one)."""

    def on_step(phase: str, mse: float) -> bool:
        bar.on_step(phase, mse)
        if pacer(phase):
            bar.set_total(bar.done + sum(pacer.left) + later_steps)
            return True
        return False

    return on_step


def _tensor_source(item) -> VideoSource:
    frames, rate = item
    if frames.ndim != 4 or frames.shape[0] < 1 or frames.shape[1] != 3:
        raise CodecError("video needs at least one RGB frame")
    if frames.dtype != torch.uint8:
        raise CodecError(f"video frames must be uint8, not {frames.dtype}")
    return VideoSource.from_tensor(frames, rate)


def _rate(params: dict) -> Fraction:
    return Fraction(params["fps_num"], params["fps_den"])


def _tensor_symbols(decoder: Decoder, learned: dict[str, torch.Tensor] | None = None, ref=None):
    """(name, tensor, float16-exact steps, int64 symbols) of each decoder tensor in state-dict order, under
    the fit's learned steps or, without them, steps_for's; with ``ref`` (a VDIF group), the symbols of
    each tensor's difference from ref's."""
    for name, param in decoder.state_dict().items():
        coded = param if ref is None else param - ref[name]
        steps = steps_for(coded, BITS) if learned is None else learned[name]
        yield name, param, steps, quantize(coded, steps)


def _write_group(
    cfg: NervConfig,
    first: int,
    last: int,
    fit,
    motion: Motion | None = None,
    ref=None,
    runs: list[int] | None = None,
    vectors: torch.Tensor | None = None,
) -> tuple[bytes, dict]:
    """(the group's chunk payload, the decoder tensors as a decoder rebuilds them: the next VDIF
    group's reference). ref: this group's reference (a VDIF group), or None (VGOP). runs: the group's
    runs of equal frames (held.py; its embeddings are one per run), written where any run is longer
    than 1. vectors: a block-motion group's [P, by, bx, 2] (blocks.py), coded after the embeddings."""
    symbols, indexes, steps, tensors = [], [], [], []
    parts = list(_tensor_symbols(fit.decoder, fit.steps, ref))
    rebuilt = {name: rebuild(sym, st, None if ref is None else ref[name]) for name, _, st, sym in parts}
    if fit.embed_symbols is not None:  # embeddings: one step per channel, coded like a [d, ...] tensor
        parts.append(("embeddings", None, fit.embed_steps, fit.embed_symbols.transpose(0, 1).contiguous()))
    tables = _TABLES
    if vectors is not None:  # differences from the previous picture's, under their histogram's table
        moves = block_motion.to_symbols(vectors)
        low, counts = block_motion.histogram(moves)
        tables = block_motion.with_vector_table(_TABLES, low, counts)
        parts.append(("vectors", None, torch.ones(2), torch.from_numpy(moves)))
    for name, _, st, sym in parts:
        s = sym.numpy().reshape(-1)
        idx = int(scale_indexes(np.array([max(float(np.std(s)), MIN_STD)]), _SCALES)[0])
        if name == "vectors":
            idx = VECTOR_TABLE
        tensors.append({"name": name, "shape": list(sym.shape), "idx": idx, "steps": int(st.numel())})
        symbols.append(s)
        indexes.append(np.full(s.size, idx, dtype=np.uint8))
        steps.append(st.half().numpy())
    head = {"config": cfg.to_json(), "first": first, "count": last - first, "bits": BITS, "tensors": tensors}
    if runs is not None and len(runs) < last - first:
        head = {**head, "held": runs}
    if vectors is not None:
        head = {**head, "blocks": {"size": block_motion.BLOCK, "low": low, "counts": counts}}
    moves = b""
    if motion is not None:  # after the steps: 3 float16 per frame (motion.py)
        head = {**head, "motion": {"height": motion.canvas[0], "width": motion.canvas[1]}}
        moves = motion.params.astype("<f2").tobytes()
    header = json.dumps(head, separators=(",", ":")).encode()
    stream = encode_indexed(np.concatenate(symbols), np.concatenate(indexes), tables)
    steps = np.concatenate(steps).astype("<f2").tobytes()
    return struct.pack("<I", len(header)) + header + steps + moves + stream, rebuilt


VECTOR_TABLE = SCALE_LEVELS  # block motion's own table (FORMAT.md 6.4.4)


def _write_bare(first: int, count: int, runs: list[int], blocks: Blocks) -> bytes:
    """A VBLK chunk's payload (FORMAT.md 6.4.5): u32 header length, the JSON header, the u32 lengths of the
    first two streams, then three streams: the coded pictures' mode changes, the used vectors' dy, their dx
    (blocks.bare_symbols), each under tables from the header's histograms (_bare_tables)."""
    changes, dy, dx = block_motion.bare_symbols(blocks.vectors, blocks.modes, blocks.positions)
    moved = dy != 0
    hist = lambda x: dict(zip(("low", "counts"), block_motion.histogram(x), strict=True))  # noqa: E731
    b = {
        "size": block_motion.BLOCK,
        "keys": blocks.positions,
        "modes": np.bincount(changes.reshape(-1), minlength=block_motion.MODES).tolist(),
        "dy": hist(dy),
        "dx": [hist(dx[~moved]), hist(dx[moved])],
    }
    head = {"first": first, "count": count, "blocks": b}
    if len(runs) < count:
        head["held"] = runs
    header = json.dumps(head, separators=(",", ":")).encode()
    tables = _bare_tables(b)
    streams = [
        encode_indexed(changes, np.zeros(changes.size, np.uint8), tables),
        encode_indexed(dy, np.ones(dy.size, np.uint8), tables),
        encode_indexed(dx, 2 + moved.astype(np.uint8), tables),
    ]
    return b"".join(
        [struct.pack("<I", len(header)), header, struct.pack("<II", *map(len, streams[:2])), *streams]
    )


def _bare_tables(blocks: dict) -> TableSet:
    """A VBLK's four tables from its header's histograms: the mode changes', the dy's, the dx's where dy
    is 0 and where it is not."""
    hists = [(0, blocks["modes"]), *((h["low"], h["counts"]) for h in (blocks["dy"], *blocks["dx"]))]
    return TableSet.from_pmfs([np.asarray(c, np.float64) for _, c in hists], [low for low, _ in hists])


class _Frames:
    """A group's frames, from its checked JSON header ``head``."""

    head: dict

    @property
    def end(self) -> int:
        return self.head["first"] + self.head["count"]

    @property
    def pictures(self) -> torch.Tensor:
        """Each frame's picture: its index into the group's inputs or pictures (held.py)."""
        return picture_index(self.head.get("held", [1] * self.head["count"]))


@dataclass(frozen=True)
class BareGroup(_Frames):
    """A VBLK chunk (FORMAT.md 6.4.5), its header checked: a group drawn from its key pictures alone."""

    head: dict
    stream_at: int
    keys: tuple[bytes, ...] = ()
    diff = False  # the groups' common face (CheckedGroup's): no decoder, so no chain
    cfg = None
    motion = None

    @property
    def key_count(self) -> int:
        return len(self.head["blocks"]["keys"])


def check_bare(data: bytes, params: dict) -> BareGroup:
    """A VBLK chunk's header checked against BARE and the clip's ``params`` before anything is allocated."""
    head, pos = _parse(data)
    BARE.check(head)
    count, held, keys = head["count"], head.get("held"), head["blocks"]["keys"]
    if count > max_group_frames(params["height"], params["width"]):
        raise CodecError(f"VBLK header: count = {count} over the frames a group holds")
    if held is not None and sum(held) != count:
        raise CodecError(f"VBLK header: held frames add up to {sum(held)}, not the group's {count}")
    pictures = count if held is None else len(held)
    if keys != sorted(set(keys)) or keys[-1] >= pictures:
        raise CodecError(f"VBLK header: keys {keys} are not increasing pictures of the group's {pictures}")
    return BareGroup(head, pos)


def _read_bare(data: bytes, group: BareGroup, height: int, width: int) -> Blocks:
    """A checked VBLK group's motion: vectors [P, by, bx, 4], modes [P, by, bx], its keys' pictures."""
    blocks, pictures, at = group.head["blocks"], len(group.pictures), group.stream_at
    by, bx = block_motion.grid(height, width)
    if len(data) < at + 8:
        raise CodecError("truncated video group")
    first, second = struct.unpack_from("<II", data, at)
    at += 8
    if first + second > len(data) - at:
        raise CodecError("truncated video group (its streams)")
    streams = data[at : at + first], data[at + first : at + first + second], data[at + first + second :]
    tables, keys = _bare_tables(blocks), blocks["keys"]
    coded = int(block_motion.coded_pictures(keys, pictures).sum())
    changes = decode_indexed(streams[0], np.zeros(coded * by * bx, np.uint8), tables).astype(np.int64)
    if changes.size and not 0 <= int(changes.min()) <= int(changes.max()) < block_motion.MODES:
        raise CodecError("corrupt video group (a block mode change other than 0, 1 or 2)")
    modes = block_motion.bare_modes(changes.reshape(coded, by, bx), keys, pictures, by, bx)
    used = block_motion.used_vectors(modes, keys)
    dy = decode_indexed(streams[1], np.ones(int(used.sum()), np.uint8), tables).astype(np.int64)
    dx = decode_indexed(streams[2], 2 + (dy != 0).astype(np.uint8), tables).astype(np.int64)
    vectors = _within_reach(block_motion.bare_vectors(dy, dx, used, keys))
    return Blocks(vectors, torch.from_numpy(modes), keys)


def _parse(data: bytes) -> tuple[dict, int]:
    if len(data) < 4:
        raise CodecError("truncated video group")
    (n,) = struct.unpack_from("<I", data)
    if n > len(data) - 4 or n > 1 << 20:
        raise CodecError("bad video group header length")
    try:
        return json.loads(data[4 : 4 + n]), 4 + n
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..."
        raise CodecError("video group header is not valid JSON") from None


@dataclass(frozen=True)
class CheckedGroup(_Frames):
    head: dict  # the JSON header, every field checked
    cfg: NervConfig
    steps_at: int  # offset of the float16 steps in the chunk
    n_steps: int
    motion: Motion | None = None  # a motion group's, checked (its float16 numbers follow the steps)
    diff: bool = False  # a VDIF chunk: decoder tensors coded as differences from the previous group's
    keys: tuple[bytes, ...] = ()  # the VKEY chunks before it: image files of the key pictures it draws over

    @property
    def key(self) -> bytes | None:
        return self.keys[0] if self.keys else None

    key_count = 1  # the VKEY chunks it takes, if any (a VBLK group's: its keys)

    @property
    def stream_at(self) -> int:
        return self.steps_at + 2 * self.n_steps + (0 if self.motion is None else 6 * self.head["count"])


def check_group(data: bytes, params: dict, kind: str, diff: bool = False) -> CheckedGroup:
    """A VGOP chunk's header checked against GROUP and the clip's checked ``params``, before anything is
    allocated: the config is one ``plan`` can give for this clip (strides, padded size) and no larger
    than ``network_for`` makes at the top quality; the group no longer than the encoder makes; the
    tensors exactly the architecture's, with their step counts; the steps inside the chunk."""
    head, pos = _parse(data)
    GROUP.check(head)
    cfg = NervConfig.from_json(head["config"])
    height, width, count = params["height"], params["width"], head["count"]
    s = math.prod(cfg.strides)
    if cfg.kind != kind:
        raise CodecError(f"VGOP header: config.kind {cfg.kind!r} in a {kind} file")
    if s not in TOTAL_STRIDES or len(cfg.channels) != len(cfg.strides) + 1:
        raise CodecError(f"VGOP header: config.strides {list(cfg.strides)} or channels do not fit together")
    canvas = None
    if "motion" in head and kind != "hnerv":
        raise CodecError(f"VGOP header: motion in a {kind} file (only hnerv groups have it)")
    if "motion" in head:
        canvas = _check_canvas(head["motion"], cfg, kind, height, width, s)
    elif (
        cfg.height % s
        or cfg.width % s
        or not (height <= cfg.height < height + s and width <= cfg.width < width + s)
    ):
        raise CodecError(
            f"VGOP header: config size {cfg.width}x{cfg.height} is not the {width}x{height} clip padded "
            f"to a multiple of {s}"
        )
    if count > max_group_frames(height, width):
        raise CodecError(
            f"VGOP header: count = {count} over the {max_group_frames(height, width)} frames a group holds"
        )
    n, most = parameter_count(cfg), max_parameters(kind, height, width, count, canvas)
    if n > most:
        raise CodecError(f"VGOP header: a decoder of {n} parameters, over the {most} the encoder makes")
    held = head.get("held")
    if held is not None and kind != "hnerv":
        raise CodecError(f"VGOP header: held frames in a {kind} file (only hnerv groups have them)")
    if held is not None and sum(held) != count:
        raise CodecError(f"VGOP header: held frames add up to {sum(held)}, not the group's {count}")
    expected = [(name, list(shape)) for name, shape in tensor_shapes(cfg).items()]
    pictures = count if held is None else len(held)
    if kind == "hnerv":  # one embedding per picture (a run of held frames), FORMAT.md 6.4.3
        expected.append(("embeddings", [cfg.embed_dim, pictures, *cfg.grid]))
    if "blocks" in head:  # block motion, FORMAT.md 6.4.4
        if "motion" in head:
            raise CodecError("VGOP header: block motion in a motion group")
        expected.append(("vectors", [2, pictures, *block_motion.grid(height, width)]))
    if [(t["name"], t["shape"]) for t in head["tensors"]] != expected:
        raise CodecError("VGOP header: tensors do not match its architecture")
    if any((t["idx"] == VECTOR_TABLE) != (t["name"] == "vectors") for t in head["tensors"]):
        raise CodecError(f"VGOP header: table {VECTOR_TABLE} is the block vectors' and theirs only")
    for t in head["tensors"]:  # one step per index of the first dimension, or one for a vector
        if t["steps"] != (t["shape"][0] if len(t["shape"]) >= 2 else 1):
            raise CodecError(f"VGOP header: tensor {t['name']} has {t['steps']} steps")
    n_steps = sum(t["steps"] for t in head["tensors"])
    if pos + 2 * n_steps > len(data):
        raise CodecError("truncated video group (quantization steps)")
    motion = None
    if canvas is not None:
        at = pos + 2 * n_steps
        if at + 6 * count > len(data):
            raise CodecError("truncated video group (motion)")
        motion = _check_motion(
            np.frombuffer(data, "<f2", 3 * count, at).reshape(count, 3), canvas, height, width
        )
    return CheckedGroup(head, cfg, pos, n_steps, motion, diff)


def _check_canvas(
    motion: dict, cfg: NervConfig, kind: str, height: int, width: int, s: int
) -> tuple[int, int]:
    """A motion group's canvas (height, width), checked: at least the frame, at most MAX_CANVAS times its
    area, the config its size padded to a multiple of S (and, as ``motion_canvas`` makes it, not a size
    the clip's own padding gives, so that a reader without motion groups refuses them)."""
    ch, cw = motion["height"], motion["width"]
    if not (height <= ch and width <= cw and ch * cw <= MAX_CANVAS * height * width):
        raise CodecError(
            f"VGOP header: motion canvas {cw}x{ch} outside 1..{MAX_CANVAS:g} times the {width}x{height} frame"
        )
    if cfg.height % s or cfg.width % s or not (ch <= cfg.height < ch + s and cw <= cfg.width < cw + s):
        raise CodecError(
            f"VGOP header: config size {cfg.width}x{cfg.height} is not the {cw}x{ch} canvas padded "
            f"to a multiple of {s}"
        )
    if not (cfg.height >= height + s or cfg.width >= width + s):
        raise CodecError(f"VGOP header: motion canvas {cw}x{ch} pads to the clip's own padded size")
    return ch, cw


def _check_motion(params: np.ndarray, canvas: tuple[int, int], height: int, width: int) -> Motion:
    """A motion group's float16 numbers [count, 3] -> its Motion, refused unless finite with every frame's
    scale within SCALE_RANGE and its pixels on the canvas (to within a pixel)."""
    if not np.isfinite(params).all():
        raise CodecError("corrupt video group (a motion parameter is not finite)")
    lo, hi = SCALE_RANGE
    if np.abs(params[:, 0].astype(np.float64)).max() > 2 * math.log(hi / lo):
        raise CodecError("corrupt video group (a motion scale step is out of range)")
    motion = Motion.from_params(params.copy(), canvas)
    if not ((motion.scale >= lo) & (motion.scale <= hi)).all():
        raise CodecError(f"corrupt video group (a frame's motion scale is outside {lo:g}..{hi:g})")
    ch, cw = canvas
    right, bottom = motion.u + motion.scale * (width - 1), motion.v + motion.scale * (height - 1)
    if (motion.u < -1).any() or (motion.v < -1).any() or (right > cw).any() or (bottom > ch).any():
        raise CodecError(f"corrupt video group (a frame's motion places it beyond the {cw}x{ch} canvas)")
    return motion


def _read_tensors(
    data: bytes, group: CheckedGroup, ref: dict | None
) -> tuple[Decoder, torch.Tensor, torch.Tensor | None]:
    """A checked group's decoder, its pictures' inputs (HNeRV embeddings [pictures, d, h0, w0], NeRV
    times [count]) and a block-motion group's vectors [pictures, by, bx, 2] (else None); ref: the previous
    group's decoder tensors, for a VDIF group."""
    tensors, cfg, pos = group.head["tensors"], group.cfg, group.steps_at
    steps = np.frombuffer(data, "<f2", group.n_steps, pos).astype(np.float32)
    if not np.isfinite(steps).all():
        raise CodecError("corrupt video group (a quantization step is not finite)")
    counts = [math.prod(t["shape"]) for t in tensors]
    indexes = np.concatenate([np.full(c, t["idx"], np.uint8) for c, t in zip(counts, tensors, strict=True)])
    tables = _TABLES
    if "blocks" in group.head:
        blocks = group.head["blocks"]
        tables = block_motion.with_vector_table(_TABLES, blocks["low"], blocks["counts"])
    symbols = decode_indexed(data[group.stream_at :], indexes, tables)
    values, s_pos, st_pos, vectors = [], 0, 0, None
    for t, c in zip(tensors, counts, strict=True):
        sym = torch.from_numpy(symbols[s_pos : s_pos + c].astype(np.int64)).view(t["shape"])
        st = torch.from_numpy(steps[st_pos : st_pos + t["steps"]].copy())
        if t["name"] == "vectors":  # block motion (FORMAT.md 6.4.4; check_group puts it last): integers
            vectors = _vectors(sym, st)
        else:
            values.append(rebuild(sym, st, None if ref is None else ref.get(t["name"])))
        s_pos, st_pos = s_pos + c, st_pos + t["steps"]
    decoder = Decoder(cfg)
    names = list(tensor_shapes(cfg))
    decoder.load_state_dict(dict(zip(names, values[: len(names)], strict=True)))
    count = group.head["count"]
    if cfg.kind == "hnerv":
        inputs = values[-1].transpose(0, 1).contiguous()
    else:
        inputs = torch.arange(count, dtype=torch.float32) / count
    return decoder, inputs, vectors


def _moved(keys: list[torch.Tensor], blocks: Blocks, pictures: torch.Tensor) -> Callable[[int], torch.Tensor]:
    """reconstruct's ``moved`` for frames whose pictures are ``pictures``: input i's base."""
    return lambda i: blocks.base(keys, int(pictures[i]))


def _vectors(symbols: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """A block-motion group's coded integers [C, P, by, bx] -> its vectors [P, by, bx, C], refused unless
    its steps are 1 and every component is within blocks.MAX_VECTOR."""
    if not bool((steps == 1).all()):
        raise CodecError("corrupt video group (block motion vectors with a step other than 1)")
    return _within_reach(block_motion.from_symbols(symbols))


def _within_reach(vectors: torch.Tensor) -> torch.Tensor:
    """Decoded block vectors, refused where a component is beyond blocks.MAX_VECTOR."""
    if vectors.numel() and int(vectors.abs().max()) > block_motion.MAX_VECTOR:
        raise CodecError(f"corrupt video group (a block vector beyond {block_motion.MAX_VECTOR} pixels)")
    return vectors


# Frames drawn while a group's key picture decodes wait for it holding their logits, at most this many
# bytes of them (a 320x240 pan's window: ~1 MB a frame); the frames after wait for the key itself.
HELD_BYTES = 256 << 20


def reconstruct(
    decoder: Decoder,
    inputs: torch.Tensor,
    height: int,
    width: int,
    device: str = "cpu",
    motion: Motion | None = None,
    first: int = 0,
    runs: list[int] | None = None,
    moved: Callable[[int], torch.Tensor] | None = None,
    key: Callable[[], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Decoder inputs (HNeRV embeddings [T, d, h0, w0], NeRV times [T]) -> uint8 frames [T, 3, height,
    width]. Each frame is computed alone, a batch of one: its bytes do not depend on which other frames
    are decoded (a frame range needs only its frames) nor, on the CPU, on the thread count. One frame's
    full-resolution tensors also stay in cache, which batches of 8 did not: 2.5x faster. motion: the
    group's, whose frame ``first + i`` input i is: the decoder draws the canvas, the frame is sampled
    from it (motion.sample). runs: the frames in runs of equal inputs (held frames, held.py), each
    drawn once (a motion group samples each frame of a run from its one canvas), or None: runs of 1.
    moved: a block-motion group's base of input i (uint8 [3, height, width], its keys moved by its vectors,
    blocks.Blocks.base): each frame is drawn over it, not over ``decoder.base``. key: the logits of the
    picture every frame is drawn over (a key picture's, base_logits), instead of ``decoder.base``: on the
    CPU it is computed on one thread while the others draw the first frames' logits (a 720x320 key takes
    ~0.4 s on one core, a third of a pan's decoding)."""
    decoder = decoder.to(device).eval()
    cfg, runs = decoder.cfg, runs or [1] * inputs.shape[0]
    starts = np.cumsum([0] + runs[:-1]).tolist()

    def logits(run: int) -> tuple:
        """(the run's logits, and the canvas window they cover or None: the whole picture)."""
        x = inputs[starts[run] : starts[run] + 1].to(device)
        if motion is None:
            return decoder.logits(x), None
        # only the canvas window the frames read (a pan's 320x240 frames read a third of a 720x320 canvas)
        span = range(first + starts[run], first + starts[run] + runs[run])
        where = window(motion, span, height, width, cfg.height, cfg.width)
        return decoder.window(x, *where), where

    def drawn(run: int, y: torch.Tensor, where: tuple | None, base: torch.Tensor | None) -> torch.Tensor:
        """The run's uint8 frames from its logits, over ``base`` (the group's; a moved group's: its own)."""
        i, n = starts[run], runs[run]
        if moved is not None:
            base = base_logits(moved(i), cfg.height, cfg.width).to(device)
        if where is None:  # one picture, its copies as views
            return _to_uint8(over(y, base)[:, :, :height, :width]).expand(n, -1, -1, -1)
        (r0, r1), (c0, c1) = where
        x = over(y, None if base is None else base[..., r0:r1, c0:c1])
        part = (r0, c0, cfg.height, cfg.width)
        return torch.cat(
            [_to_uint8(sample(x, motion, [t], height, width, part)) for t in range(first + i, first + i + n)]
        )

    if key is None or not str(device).startswith("cpu"):
        base = decoder.base if key is None else key().to(device)
        out = map_per_item(lambda run: drawn(run, *logits(run), base), range(len(runs)), device)
    else:
        held = _Allowance(HELD_BYTES)

        def early(run: int, base: Future) -> torch.Tensor | tuple:
            y, where = logits(run)
            if not base.done() and held.take(y.numel() * y.element_size()):
                return run, y, where  # drawn once the key is there
            return drawn(run, y, where, base.result())

        with thread_independent(device):
            base, out = map_beside(key, early, range(len(runs)))
        late = [k for k, o in enumerate(out) if isinstance(o, tuple)]
        for k, frames in zip(late, map_per_item(lambda k: drawn(*out[k], base), late, device), strict=True):
            out[k] = frames
    return torch.cat(out) if out else torch.zeros(0, 3, height, width, dtype=torch.uint8)


class _Allowance:
    """A byte budget that threads take from."""

    def __init__(self, size: int):
        self.left, self.lock = size, threading.Lock()

    def take(self, size: int) -> bool:
        with self.lock:
            if size > self.left:
                return False
            self.left -= size
            return True


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
