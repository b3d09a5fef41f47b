"""The RVQ audio codec (id ``rvq``): any rate and channel count in, 24 kHz mono inside, 1.5-12 kbit/s.

Encoding downmixes to mono (the original channel count is restored on decode by duplication; ``mcodec info``
shows both), resamples to 24 kHz, high-passes at 20 Hz (HIGH_PASS) and codes 10 s segments independently, each
with 2400 samples (0.1 s) of context on both sides that the decoder cross-fades, so a segment decodes alone.
Audio is read, coded, synthesized and written as a stream (``audio_stream``): memory holds a few segments,
whatever the file's length. Each segment is one ``ASEG`` chunk: the codes [n_q, T] stage by stage, table index
= stage, under per-stage priors learned from the training corpus (categorical tables shipped in the model
file), or under a uniform table where that is shorter (one flag byte per stage), so the real bitrate stays at
or below the nominal 0.75 kbit/s per stage. Profile ``tables``. A source sampled above 24 kHz also keeps the
levels of its band above 12 kHz, an ``AHBE`` chunk after each ``ASEG`` (highband.py), which the decoder fills
with noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mcodec.codec.base import Codec, CodecError, CodecInfo, Payload
from mcodec.codec.determinism import map_per_item
from mcodec.codec.media_io.audio_stream import AudioStream
from mcodec.codec.model_file import default_weights, load_state, load_weights
from mcodec.codec.schema import Int, Number, OneOf, Schema, media_fields
from mcodec.entropy import decode_indexed, encode_indexed
from mcodec.entropy.container import CHUNK_FRAMING

from . import highband
from .model import ARCH, HOP, SAMPLE_RATE, RVQAutoencoder, codebooks_for, sizes
from .postfilter import MAX_STRENGTH, pitch_postfilter
from .postfilter_choice import StrengthChooser
from .rvq import beam_search
from .stream import HighPass, MonoResampler, OverlapAdd, SampleBuffer

SEGMENT = 10 * SAMPLE_RATE  # samples of 24 kHz audio per chunk (a multiple of HOP)
CONTEXT = 2400  # samples of context each side of a segment, cross-faded on decode (a multiple of HOP)
# encoder presets: the RVQ search's beam width (rvq.beam_search); the decoder never knows. On the 16 speech
# files at 7 stages (rvq-v2), PESQ-WB 2.18 greedy, 2.25 with a beam of 4; 16 adds next to nothing (rvq-v10 on
# 52 held-back files: +0.02 mean, the median flat, at twice the encode time; codec/models/rvq.md, session 36).
BEAM = {"fast": 1, "medium": 4, "slow": 16}
# the pitch postfilter's strength in quarters (postfilter.py, FORMAT.md 6.3.1) that the encoder writes: on 64
# training files PESQ-WB at 6 kbit/s 2.32 -> 2.51 at 2, 2.52 at 3 with STOI and mel distance worse; at 3
# kbit/s 1.80 -> 1.87, 1.90, 1.91, 1.89 at 1..4 (codec/models/rvq.md, session 42). It is the strength where
# the encoder does not choose one per file (postfilter_choice.py), and where its choice ties
POSTFILTER = 2
# the encoder chooses the postfilter strength on the first this many samples of a file (5 s), which it
# synthesizes: on 2 threads ~0.3 s, so a long file costs no more than a short one (a 30 s clip at 6 kbit/s
# encodes at 26-29x real time against 29x without; the whole first segment, 10 s, made it 20x). Held-back 52:
# PESQ-WB at 3 kbit/s 2.131 -> 2.154, at 6 kbit/s 2.500 -> 2.508 (codec/models/rvq.md, session 47)
CHOOSE_SAMPLES = 5 * SAMPLE_RATE
# Hz: the encoder high-passes the 24 kHz mono signal here (2nd-order Butterworth) before coding, as speech
# codecs do (SILK, AMR-WB): a DC offset or rumble below hearing costs the codes what the voice needs. Some
# held-back syllables carry a DC offset of 20-34% of their RMS (hu) or most of their energy below 80 Hz (nl);
# held-back 52 (rvq-v11, the strength chosen): PESQ-WB at 3 kbit/s 2.154 -> 2.197 (syllables 2.104 ->
# 2.191), at 6 kbit/s 2.508 -> 2.536; 40 Hz and above did worse at 6 kbit/s (codec/models/rvq.md, session 47)
HIGH_PASS = 20.0
# rate control (reduce_rate): at this many stages and fewer, a file over its request drops its high band
# before a stage. On short held-back syllables, shedding the 4th stage to keep the band cost PESQ-WB 0.3
# (the 52 at 3 kbit/s: 1.909 -> 1.855) and the 8th next to nothing (2.445 -> 2.443), while on short music
# samples dropping the band cost more than the 8th stage (mel distance: codec/models/rvq.md, session 43)
BAND_FIRST = 4
# rate control (reduce_rate): before a stage goes, the codes of a file of at most this many segments are
# searched again rate-aware (rvq.beam_search with code lengths) for the bytes it is over the request itself
# (not its tolerance), kept where their latent error stays under the stage's. Held-back 52 at 3 kbit/s: with
# priors counted on 2400 s (session 45's b2 file), 16 of 18 files that shed their 4th stage keep it, PESQ-WB
# 2.105 -> 2.135 at 3.01 -> 3.09 real kbit/s; rvq-v11 2.114 -> 2.131 at 3.00 -> 3.09; rvq-v10's tighter
# priors save too little (6 of 23 keep it, 2.056 -> 2.057; codec/models/rvq.md, session 46). Aiming at
# the tolerance instead fills files to it (b2: 2.153 at 3.20). A longer file is not pushed over by its fixed
# bytes (each stage is capped at its rate)
RESEARCH_SEGMENTS = 6
INFO = CodecInfo(
    "rvq",
    "audio",
    (0.75, 12.0),
    6.0,
    "residual-vector-quantized convolutional codec, 24 kHz mono, 1.5-12 kbit/s from one model",
    points=(1.5, 3.0, 6.0, 12.0),
    unit="kbps",
    presets=tuple(BEAM),
    default_preset="medium",
)


def segment_bounds(n: int) -> list[tuple[int, int, int, int]]:
    """(start, end) of each segment's core and (lo, hi) of the span it codes, in 24 kHz samples."""
    out = []
    for start in range(0, n, SEGMENT):
        end = min(start + SEGMENT, n)
        out.append((start, end, max(0, start - CONTEXT), min(n, end + CONTEXT)))
    return out


def _frames(span: int) -> int:
    return -(-span // HOP)


class RVQAudioCodec(Codec):
    info = INFO
    profile = "tables"

    def __init__(self, weights: Path | None = None):
        w = load_weights(default_weights("rvq", weights, "mcodec train audio DIR --out FILE"), ARCH)
        self.tables = w.tables("tables")
        self.model = RVQAutoencoder(*sizes(w))
        load_state(self.model, w, lambda key: ".ema_" in key)  # EMA statistics are training state
        if self.tables.num_tables != self.model.n_q + 1:
            raise CodecError(
                f"{w.path.name}: {self.tables.num_tables} tables for {self.model.n_q} stages + 1"
            )
        # a code under the uniform (last) table costs log2(codebook size) bits: the most a stage may cost
        self.bits_uniform = math.log2(self.model.quantizer.size)
        self.model.eval()
        self.model_id = w.model_id("rvq")
        self.weights_hash, self.tables_hash = w.sha256, self.tables.sha256()
        self.schema = params_schema(self.model.n_q)

    def stages(self, kbps: float) -> int:
        n_q = codebooks_for(kbps)
        if not 1 <= n_q <= self.model.n_q:
            raise CodecError(f"bitrate {kbps} kbit/s is outside 0.75..{0.75 * self.model.n_q:g}")
        return n_q

    def encode(
        self,
        item,
        quality: float,
        device: str = "cpu",
        preset: str = INFO.default_preset,
        postfilter: int | None = None,
        high_band: bool = True,
        **options,
    ) -> Payload:
        """item: an ``AudioStream`` (read as it is coded: memory stays a segment's worth), or (audio
        float32 [C, N], sample rate in Hz); quality: the nominal bitrate in kbit/s; preset: the search
        effort (BEAM); postfilter: the decoder's pitch postfilter strength, 0 (off) .. 4, or None to choose
        it for the file (postfilter_choice.py, CHOOSE_SAMPLES); high_band: code
        the levels of the band above 12 kHz of a source sampled above 24 kHz (highband.py)."""
        self.check_preset(preset)
        if postfilter is not None and postfilter not in range(MAX_STRENGTH + 1):
            raise CodecError(f"postfilter must be an integer 0..{MAX_STRENGTH}, not {postfilter!r}")
        stream = item if isinstance(item, AudioStream) else AudioStream.from_tensor(*item)
        n_q, beam = self.stages(quality), BEAM[preset]
        model = self.model.to(device)
        high = highband.Analyser(int(stream.rate)) if high_band and stream.rate > SAMPLE_RATE else None
        chooser = StrengthChooser(POSTFILTER) if postfilter is None else None

        def code(span: np.ndarray, start: int, end: int) -> list[tuple[str, bytes]]:
            x = torch.from_numpy(span.copy())
            x = torch.nn.functional.pad(x, (0, _frames(span.size) * HOP - span.size))
            with torch.no_grad():
                codes = model.encode(x[None, None].to(device), n_q, beam)  # [n_q, 1, T]
                if chooser is not None and start == 0:  # the first span starts at sample 0 (segment_bounds)
                    n = min(end, CHOOSE_SAMPLES)
                    y = model.decode(codes[..., : _frames(n)])[0, 0, :n].cpu()
                    chooser.add(x[:n], y, slice(0, n))
            codes = codes[:, 0].cpu().numpy()  # [n_q, T]
            out = [("ASEG", self._code_segment(codes))]
            if high is not None:  # the levels of the core's 80 ms frames
                nonlocal silent
                levels = high.levels(*highband.frame_range(start, end), samples)
                silent = silent and levels.max(initial=0) < highband.AUDIBLE
                out.append((highband.CHUNK, highband.pack(levels)))
            return out

        # A segment whose span lies whole in the buffer is the same whatever follows (segment_bounds), so
        # it is coded at once and the buffer keeps only the next span's start onwards.
        resampler, mono = MonoResampler(stream.rate, SAMPLE_RATE), SampleBuffer()
        rumble = HighPass(HIGH_PASS, SAMPLE_RATE)
        chunks, samples, start, silent = [], 0, 0, True
        for block in stream.blocks:
            if not np.isfinite(block).all():
                raise CodecError("audio must have no NaN or infinite values")
            samples += block.shape[1]
            downmix = block.mean(0)
            mono.append(rumble.push(resampler.push(downmix)))
            if high is not None:
                high.push(downmix)
            while mono.end >= start + SEGMENT + CONTEXT:
                chunks += code(
                    mono.take(max(0, start - CONTEXT), start + SEGMENT + CONTEXT), start, start + SEGMENT
                )
                start += SEGMENT
                mono.drop_before(start - CONTEXT)
        if samples == 0:
            raise CodecError("audio must have samples")
        mono.append(rumble.push(resampler.flush()))
        if high is not None:
            high.push(np.zeros(0, np.float32), final=True)
        if mono.end == 0:  # a few source samples may resample to none
            mono.append(np.zeros(1, np.float32))
        for s, e, lo, hi in segment_bounds(mono.end):
            if s >= start:
                chunks += code(mono.take(lo, hi), s, e)
        if silent:  # nothing audible above 12 kHz (say, a source upsampled from 24 kHz or less): no band
            chunks = [(t, d) for t, d in chunks if t != highband.CHUNK]
        params = {
            "sample_rate": int(stream.rate),
            "channels": stream.channels,
            "coded_channels": 1,
            "samples": samples,
            "kbps": float(quality),
            "n_q": n_q,
            "model_samples": mono.end,
        }
        if chooser is not None:
            postfilter = chooser.best()
        if postfilter:  # absent means 0: files from before the postfilter decode as they did
            params["postfilter"] = postfilter
        return Payload(params, chunks)

    def decode(self, payload: Payload, device: str = "cpu", **options):
        """(audio float32 [channels, samples], sample rate) of a payload, whole in memory."""
        return self.decode_stream(payload, device).collect()

    def decode_stream(self, payload: Payload, device: str = "cpu") -> AudioStream:
        """The payload's audio as blocks, synthesized while they are consumed. Every segment's codes are
        entropy-decoded and checked here first, so a corrupt file fails before a sample is produced."""
        p = payload.params
        codes, levels = self.codes(payload), self.high_band(payload)
        bounds = segment_bounds(p["model_samples"])
        high = None if levels is None else highband.Synthesizer(p["sample_rate"], levels)
        return AudioStream(p["sample_rate"], p["channels"], self._synthesize(p, bounds, codes, high, device))

    def codes(self, payload: Payload) -> list[np.ndarray]:
        """Each segment's codes, int16 [n_q, T], of a payload whose params the schema accepted."""
        return [
            self._decode_segment(flags, stream, t).astype(np.int16)
            for flags, stream, t in self._segments(payload)
        ]

    def high_band(self, payload: Payload) -> np.ndarray | None:
        """The high band's levels int32 [bands, frames] over the whole file (FORMAT.md 6.3.2), or None
        where the file has no AHBE chunks."""
        p, pairs = payload.params, self._chunk_pairs(payload)
        if pairs[0][1] is None:
            return None
        if p["sample_rate"] <= SAMPLE_RATE:
            raise CodecError(f"{highband.CHUNK} chunks in a file sampled at {p['sample_rate']} Hz")
        n_bands = len(highband.bands(p["sample_rate"]))
        levels = []
        for (start, end, _, _), (_, data) in zip(segment_bounds(p["model_samples"]), pairs, strict=True):
            k0, k1 = highband.frame_range(start, end)
            levels.append(highband.unpack(data, n_bands, k1 - k0))
        return np.concatenate(levels, axis=1)

    def _chunk_pairs(self, payload: Payload) -> list[tuple[bytes, bytes | None]]:
        """(ASEG payload, AHBE payload or None) per segment: either every ASEG is followed by an AHBE or
        none is (the count from model_samples)."""
        m, chunks = payload.params["model_samples"], payload.chunks
        n, types = -(-m // SEGMENT), [t for t, _ in chunks]
        if types == ["ASEG"] * n:
            return [(data, None) for _, data in chunks]
        if types == ["ASEG", highband.CHUNK] * n:
            return [(chunks[2 * i][1], chunks[2 * i + 1][1]) for i in range(n)]
        raise CodecError(
            f"expected {n} ASEG chunks, each followed by an {highband.CHUNK} or none, found {len(chunks)}"
        )

    def _segments(self, payload: Payload) -> list[tuple[bytes, bytes, int]]:
        """(stage flags, stream, frames T) of each ASEG chunk: the in-chunk checks, all made before any
        segment is decoded (the count from model_samples, the chunk types, n_q flag bytes in {0, 1})."""
        n_q, m = payload.params["n_q"], payload.params["model_samples"]
        out = []
        for (_, _, lo, hi), (data, _) in zip(segment_bounds(m), self._chunk_pairs(payload), strict=True):
            if len(data) < n_q or any(f > 1 for f in data[:n_q]):
                raise CodecError("corrupt audio segment (stage flags)")
            out.append((data[:n_q], data[n_q:], _frames(hi - lo)))
        return out

    def _synthesize(self, p: dict, bounds: list, codes: list[np.ndarray], high, device: str):
        model = self.model.to(device)
        rate, channels, samples = p["sample_rate"], p["channels"], p["samples"]
        strength = p.get("postfilter", 0)

        def synthesize(item: tuple[np.ndarray, int]) -> torch.Tensor:  # (codes, span length) -> samples
            c, n = item
            y = model.decode(torch.from_numpy(c[:, None].astype(np.int64)).to(device))[0, 0].cpu()
            return pitch_postfilter(y[:n], strength)

        def emit(mono: np.ndarray) -> np.ndarray:  # cut to the source length, add the high band, clamp,
            nonlocal written  # restore the channels
            mono = mono[: samples - written]
            if high is not None:
                mono = mono + high.render(written, written + mono.size)
            mono = np.clip(mono, -1, 1)
            written += mono.size
            return np.broadcast_to(mono, (channels, mono.size))

        # As many segments at once as there are threads (one thread each; see map_per_item): with oneDNN
        # off, ELU splits a tensor between threads at offsets that depend on the thread count, and the
        # samples at a seam differed in the last bit. A sample is final once no later span reaches it.
        group = max(1, torch.get_num_threads()) if str(device).startswith("cpu") else 1
        resampler, mix, written = MonoResampler(SAMPLE_RATE, rate), OverlapAdd(), 0
        for i in range(0, len(bounds), group):
            spans = bounds[i : i + group]
            items = [(c, hi - lo) for c, (_, _, lo, hi) in zip(codes[i : i + group], spans, strict=True)]
            ys = map_per_item(synthesize, items, device)
            for (start, end, lo, hi), y in zip(spans, ys, strict=True):
                w = _crossfade(hi - lo, start - lo, hi - end).numpy()
                mix.add(lo, y.numpy(), w)
            final = bounds[i + group][2] if i + group < len(bounds) else bounds[-1][3]
            yield emit(resampler.push(mix.pop(final)))
        yield emit(resampler.flush())
        if written < samples:
            yield emit(np.zeros(samples - written, np.float32))

    def reduce_rate(
        self, payload: Payload, excess: int | None = None, aim: int | None = None
    ) -> Payload | None:
        """The payload at the next lower rate, or None at one stage and no high band. Above BAND_FIRST
        stages the finest stage goes first (re-coded from the decoded codes: the first k stages of a search
        over more are still a good k-stage code; see rvq.beam_search) and the high band (the AHBE chunks)
        stays; at BAND_FIRST stages and fewer the band goes first where that alone sheds ``excess`` bytes
        (or the excess is unknown). ``kbps`` keeps the requested rate. The postfilter param stays: its ~15
        header bytes make some short files shed a stage, but dropping it first measured worse (held-back
        52, PESQ-WB 2.445 -> 2.423 at 6 kbit/s and 1.909 -> 1.818 at 3, as every file that sheds anyway
        then loses the filter). Before a stage goes, a short file's codes are searched again for ``aim``
        fewer bytes (at least ``excess``; RESEARCH_SEGMENTS, ``_fewer_bytes``)."""
        band = sum(len(d) + CHUNK_FRAMING for t, d in payload.chunks if t == highband.CHUNK)
        n_q = payload.params["n_q"]
        if band and (n_q <= 1 or (n_q <= BAND_FIRST and (excess is None or band >= excess))):
            return Payload(payload.params, [(t, d) for t, d in payload.chunks if t != highband.CHUNK])
        if n_q <= 1:
            return None
        codes = self.codes(payload)
        if excess is not None and len(codes) <= RESEARCH_SEGMENTS:
            if (fewer := self._fewer_bytes(payload, codes, max(excess, aim or 0))) is not None:
                return fewer
        asegs = [self._code_segment(c[: n_q - 1].astype(np.int64)) for c in codes]
        return Payload({**payload.params, "n_q": n_q - 1}, self._with_bands(asegs, payload))

    def _fewer_bytes(self, payload: Payload, codes: list[np.ndarray], need: int) -> Payload | None:
        """The payload at its n_q stages, its codes searched again to take at least ``need`` fewer ASEG
        bytes: a rate-aware beam search (squared error + lam x code lengths under the priors) towards the
        latent they decode to, lam the least of a doubling-then-halving search that saves enough. None
        where no lam does, or where the latent error it leaves is not under dropping the finest stage's
        (the energy of that stage's codewords)."""
        n_q, pairs = payload.params["n_q"], self._chunk_pairs(payload)
        embs = [cb.embedding for cb in self.model.quantizer.codebooks[:n_q]]
        bits = [torch.from_numpy(self.tables.code_lengths(k, e.shape[0])).float() for k, e in enumerate(embs)]

        def latent(c: np.ndarray) -> torch.Tensor:  # codes [n_q, T] -> the latent [T, D] they decode to
            return sum(e[torch.from_numpy(c[k].astype(np.int64))] for k, e in enumerate(embs))

        targets = [latent(c) for c in codes]
        shed = sum(float(embs[-1][torch.from_numpy(c[-1].astype(np.int64))].square().sum()) for c in codes)
        before = sum(len(aseg) for aseg, _ in pairs)
        if shed == 0:  # the finest stage adds nothing: dropping it costs nothing
            return None

        def search(lam: float) -> tuple[list[bytes], int, float]:  # (ASEG payloads, bytes saved, error)
            new = [beam_search(x, embs, BEAM["medium"], bits, lam).numpy() for x in targets]
            segments = [self._code_segment(c) for c in new]
            error = sum(float((x - latent(c)).square().sum()) for x, c in zip(targets, new, strict=True))
            return segments, before - sum(map(len, segments)), error

        # lam in error per bit: start at a tenth of the finest stage's error per frame
        lo, hi, found = 0.0, shed / sum(c.shape[1] for c in codes) / 10, None
        for _ in range(12):
            if (result := search(hi))[1] >= need:
                found = result
                break
            lo, hi = hi, 2 * hi
        if found is None:
            return None
        for _ in range(6):
            mid = (lo + hi) / 2
            if (result := search(mid))[1] >= need:
                found, hi = result, mid
            else:
                lo = mid
        segments, _, error = found
        return None if error >= shed else Payload(payload.params, self._with_bands(segments, payload))

    def _with_bands(self, asegs: list[bytes], payload: Payload) -> list[tuple[str, bytes]]:
        """New ASEG payloads, one per segment, as chunks: each followed by its segment's AHBE chunk where
        ``payload`` has them."""
        chunks = []
        for aseg, (_, high) in zip(asegs, self._chunk_pairs(payload), strict=True):
            chunks += [("ASEG", aseg)] + ([] if high is None else [(highband.CHUNK, high)])
        return chunks

    def _code_segment(self, codes: np.ndarray) -> bytes:
        """codes [n_q, T] -> one flag byte per stage (0: the stage's learned prior, 1: uniform 10 bits,
        whichever is shorter, so no stage costs more than its nominal rate) + the entropy-coded stream."""
        n_q, t = codes.shape
        uniform = self.tables.num_tables - 1
        flags = [
            int(self.tables.information_bits(codes[k], np.full(t, k)) > self.bits_uniform * t)
            for k in range(n_q)
        ]
        indexes = np.repeat([uniform if f else k for k, f in enumerate(flags)], t)
        return bytes(flags) + encode_indexed(codes.reshape(-1), indexes, self.tables)

    def _decode_segment(self, flags: bytes, stream: bytes, t: int) -> np.ndarray:
        """One segment's codes [n_q, T] (n_q = len(flags), each flag checked to be 0 or 1)."""
        uniform = self.tables.num_tables - 1
        indexes = np.repeat([uniform if f else k for k, f in enumerate(flags)], t)
        codes = decode_indexed(stream, indexes, self.tables).reshape(len(flags), t)
        if codes.min() < 0 or codes.max() >= self.model.quantizer.size:
            raise CodecError("code out of the codebook's range (corrupt stream)")
        return codes


def params_schema(model_stages: int) -> Schema:
    """The HEAD params the rvq decoder reads (FORMAT.md 6.3), for a model of ``model_stages`` stages.
    ``kbps`` is informative, but its range is the codec's; ``coded_channels`` 1 is the only layout."""

    def model_samples_near_source(p: dict) -> str | None:  # no header may ask for unbounded padding
        expected = p["samples"] * SAMPLE_RATE / p["sample_rate"]  # the resampled length, give or take
        if not expected - HOP <= p["model_samples"] <= math.ceil(expected) + HOP:
            return (
                f"model_samples = {p['model_samples']} is not the resampled length of {p['samples']} samples"
            )
        return None

    return Schema(
        "rvq params",
        {
            **media_fields("audio"),
            "coded_channels": OneOf((1,)),
            "kbps": Number(*INFO.qualities),
            "n_q": Int(1, model_stages),
            "model_samples": Int(1, (1 << 36) * SAMPLE_RATE),
            "postfilter": Int(0, MAX_STRENGTH, required=False),
        },
        rules=(model_samples_near_source,),
    )


def _crossfade(n: int, lead: int, tail: int) -> torch.Tensor:
    """Weights over a span: linear ramps across the 2 x CONTEXT samples shared with each neighbour."""
    w = torch.ones(n)
    if lead:
        ramp = min(2 * lead, n)
        w[:ramp] = torch.linspace(0, 1, ramp + 2)[1:-1]
    if tail:
        ramp = min(2 * tail, n)
        w[n - ramp :] = torch.minimum(w[n - ramp :], torch.linspace(1, 0, ramp + 2)[1:-1])
    return w
