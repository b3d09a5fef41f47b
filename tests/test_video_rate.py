"""The rate-aware fine-tune of the video INR codecs: its bit estimate against the coder's real bytes, the
rate term's effect on real bytes, and files that the unchanged decoder reads."""

import json
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from mcodec import decode_bytes, encode_bytes
from mcodec.codec.media_io import read_video
from mcodec.entropy import encode_indexed, read_container
from mcodec.nerv import codec as nerv_codec
from mcodec.nerv.fit import fit_group
from mcodec.nerv.quant import steps_for
from mcodec.nerv.rate import coder_scale, tensor_bits

# files laid out chunk by chunk: without key pictures (test_video_keypicture.py)
pytestmark = pytest.mark.usefixtures("no_key_pictures")

SAMPLE = Path(__file__).resolve().parents[1] / "api" / "samples" / "tree_128x96.mkv"


def tiny_clip(t=4):
    """t frames of the sample clip, 64x48 (real content: weights and embeddings of a real fit)."""
    frames, _ = read_video(SAMPLE, max_frames=t)
    return torch.nn.functional.avg_pool2d(frames.float(), 2).round().to(torch.uint8)


def real_bits(symbols: torch.Tensor) -> int:
    """Bits of the stream _write_group makes for one tensor's symbols: its table index, its bytes."""
    s = symbols.numpy().reshape(-1)
    idx = nerv_codec.scale_indexes(np.array([max(float(np.std(s)), 1e-3)]), nerv_codec._SCALES)
    return 8 * len(encode_indexed(s, np.full(s.size, idx[0], np.uint8), nerv_codec._TABLES))


@pytest.mark.parametrize("scale", [0.05, 0.7, 3.0, 20.0, 90.0])
def test_estimate_matches_the_coder_on_gaussian_symbols(scale):
    torch.manual_seed(0)
    symbols = torch.round(torch.randn(20000) * scale)
    estimate = float(tensor_bits(symbols, noise=False))
    assert estimate == pytest.approx(real_bits(symbols), rel=0.01, abs=64)


def test_coder_scale_is_the_tables_and_passes_the_std_gradient():
    y = (torch.randn(1000) * 5).requires_grad_()
    s = coder_scale(y)
    table = torch.from_numpy(nerv_codec._SCALES)
    assert s.item() == pytest.approx(float(table[table >= y.detach().std(correction=0)][0]), rel=1e-6)
    s.backward()
    assert torch.allclose(y.grad, torch.autograd.grad(y.std(correction=0), y)[0])


@pytest.fixture(scope="module")
def fits():
    """Two rate-aware fits of one tiny clip, at a small and a large lambda."""
    frames = tiny_clip()
    cfg = nerv_codec.network_for("hnerv", 48, 64, 4, 2)
    return frames, cfg, {lam: fit_group(frames, cfg, 8, (6, 30), lam=lam) for lam in (1e-4, 1e-1)}


def test_estimate_matches_the_real_bytes_of_fitted_tensors(fits):
    """The estimate of all the group's tensors against the real stream of its VGOP chunk (one stream: a
    stream per tensor would add a few words each)."""
    frames, cfg, by_lam = fits
    for fit in by_lam.values():
        parts = [sym for _, _, _, sym in nerv_codec._tensor_symbols(fit.decoder, fit.steps)]
        parts.append(fit.embed_symbols.transpose(0, 1).contiguous())
        estimate = sum(float(tensor_bits(s.float(), noise=False)) for s in parts)
        chunk, _ = nerv_codec._write_group(cfg, 0, 4, fit)
        (n,) = struct.unpack_from("<I", chunk)
        steps = sum(t["steps"] for t in json.loads(chunk[4 : 4 + n])["tensors"])
        real = 8 * (len(chunk) - 4 - n - 2 * steps)
        assert estimate == pytest.approx(real, rel=0.02)


def test_a_larger_lambda_spends_fewer_real_bytes(fits):
    frames, cfg, by_lam = fits
    small, large = (len(nerv_codec._write_group(cfg, 0, 4, by_lam[lam])[0]) for lam in (1e-4, 1e-1))
    assert large < 0.92 * small


def test_learned_steps_keep_symbols_in_8_bits(fits):
    """Learned steps are never below max|w| / 127: every symbol stays in +-127 (the header's bits: 8)."""
    _, _, by_lam = fits
    for fit in by_lam.values():
        for name, w, steps, sym in nerv_codec._tensor_symbols(fit.decoder, fit.steps):
            assert torch.equal(steps, steps.half().float()), name
            assert (steps >= steps_for(w, 8)).all() and sym.abs().max() <= 127, name
        assert fit.embed_symbols.abs().max() <= 127
    learned = by_lam[1e-1]
    assert any((learned.steps[k] > steps_for(w, 8)).any() for k, w in learned.decoder.state_dict().items()), (
        "lambda 0.1 learned no coarser step"
    )


@pytest.mark.parametrize("kind", ["hnerv", "nerv"])
def test_rate_aware_files_decode_with_the_unchanged_decoder(kind):
    """The file of a rate-aware encode is the same format: same header fields, learned float16 steps in
    place of steps_for's, and the decoder reproduces the encoder's own quantized network."""
    frames = tiny_clip(t=3)
    item = (frames, Fraction(25))
    data = encode_bytes(item, "video", kind, 2, preset="fast", progress=False, epochs=(2, 3), rate_aware=True)
    container, (decoded, rate) = decode_bytes(data)
    assert decoded.shape == frames.shape and rate == 25
    ((ctype, chunk),) = container.chunks
    (n,) = struct.unpack_from("<I", chunk)
    head = json.loads(chunk[4 : 4 + n])
    assert ctype == "VGOP" and head["bits"] == 8
    plain = encode_bytes(
        item, "video", kind, 2, preset="fast", progress=False, epochs=(2, 3), rate_aware=False
    )
    assert read_container(plain).chunks[0][1] != chunk
    mse = ((decoded.float() - frames.float()) ** 2).mean()
    assert 10 * torch.log10(255**2 / mse) > 12


def test_cli_rate_aware(tmp_path, capfd):
    """--rate-aware reaches the video codec (its file differs from --no-rate-aware's and decodes); an
    image refuses it with a usage error."""
    from mcodec.codec.media_io import write_video

    write_video(tmp_path / "in.mkv", tiny_clip(t=2), Fraction(12))

    for flag in ("--rate-aware", "--no-rate-aware"):
        out = tmp_path / f"{flag}.mcd"
        code, _, _ = run_cli(
            capfd, "encode", tmp_path / "in.mkv", out, "--preset", "fast", "--quality", 1, flag
        )
        assert code == 0
        assert run_cli(capfd, "decode", out, tmp_path / f"{flag}.mkv")[0] == 0
    assert (tmp_path / "--rate-aware.mcd").read_bytes() != (tmp_path / "--no-rate-aware.mcd").read_bytes()
    code, _, err = run_cli(
        capfd, "encode", SAMPLE.with_name("fruits_400x300.png"), tmp_path / "x.mcd", "--rate-aware"
    )
    assert code == 2 and "--rate-aware is for video codecs" in err, err


def test_learned_steps_stay_finite_in_float16():
    """A step the rate term drove far up is held at MAX_STEP: float16 keeps it finite (the decoder
    refuses a file with an infinite step)."""
    from mcodec.nerv.fit import MAX_STEP, _Fit

    frames = tiny_clip(t=2)
    fit = _Fit(frames, nerv_codec.network_for("hnerv", 48, 64, 2, 1), 8, "cpu", 2, 1e-3, lam=1.0)
    fit.start_qat()
    with torch.no_grad():
        for p in fit.log_steps.values():
            p.fill_(100.0)
    fit._floor_log_steps()
    steps = fit.finish()
    for s in [*steps.values(), fit.embed_steps]:
        assert torch.isfinite(s.half()).all() and (s <= MAX_STEP).all()
    assert fit.embed_symbols.abs().max() == 0
