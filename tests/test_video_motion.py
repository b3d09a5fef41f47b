"""hnerv's global motion (nerv/motion.py): the estimate, the canvas groups, their format and limits."""

import json
import math
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli

from mcodec.codec import CodecError
from mcodec.codec.base import Payload
from mcodec.codec.determinism import map_single_threaded, thread_independent
from mcodec.nerv import motion as mo
from mcodec.nerv.codec import NervCodec, check_group, motion_canvas
from mcodec.nerv.model import plan

# files laid out chunk by chunk: without key pictures (test_video_keypicture.py)
pytestmark = pytest.mark.usefixtures("no_key_pictures")

EPOCHS = (30, 6)


def texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random RGB picture [1, 3, h, w] in [0, 1] (detail at about 6 pixels)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 6, w // 6, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def shoot(picture: torch.Tensor, scale, u, v, h: int, w: int) -> torch.Tensor:
    """uint8 frames [T, 3, h, w]: frame t's pixel p is the picture at scale[t] p + (u[t], v[t])."""
    path = mo.Motion(None, picture.shape[-2:], *(np.asarray(x, float) for x in (scale, u, v)))
    t = len(scale)
    frames = mo.sample(picture.expand(t, -1, -1, -1), path, range(t), h, w)
    return frames.clamp(0, 1).mul(255).round().to(torch.uint8)


def pan(t: int = 8, h: int = 48, w: int = 64) -> torch.Tensor:
    """A camera panning right 2 px and down 0.5 px a frame across a textured picture."""
    return shoot(texture(160, 200), [1.0] * t, 10 + 2.0 * np.arange(t), 10 + 0.5 * np.arange(t), h, w)


def relative(m: mo.Motion) -> np.ndarray:
    """Each frame's (scale, u, v) relative to frame 0's (frame 0 pixels): what an estimate can know."""
    s0 = m.scale[0]
    return np.stack([m.scale / s0, (m.u - m.u[0]) / s0, (m.v - m.v[0]) / s0], 1)


def test_estimate_recovers_a_pan_and_zoom_within_a_fraction_of_a_pixel():
    t, h, w = 8, 96, 128
    scale = 0.97 ** np.arange(t)  # zooming out: frame t's pixels cover less of the picture
    u, v = 40 + 3.3 * np.arange(t), 30 + 1.7 * np.arange(t)
    frames = shoot(texture(320, 400, seed=1), scale, u, v, h, w)
    est = mo.estimate(frames)
    assert est is not None
    truth = mo.Motion(None, (0, 0), scale, u, v)
    got, want = relative(est), relative(truth)
    corner_error = np.abs(got[:, 1:] - want[:, 1:]).max() + np.abs(got[:, 0] - want[:, 0]).max() * w
    assert corner_error < 0.1, corner_error
    assert est.scale.min() == pytest.approx(1.0, abs=1e-3)  # the most zoomed-in frame is the reference
    assert est.canvas[0] * est.canvas[1] <= mo.MAX_CANVAS * h * w


def test_refine_undoes_the_drift_of_chained_pairs():
    """Places off by a drift that grows along the group (what chained pair estimates sum to: here 0.3 px
    and 0.4% scale a frame, 3+ px by the end) come back within a quarter of a pixel of the truth."""
    t, h, w = 12, 48, 64
    u, v = 20 + 2.5 * np.arange(t), 15 + 0.8 * np.arange(t)
    frames = shoot(texture(160, 200, seed=2), [1.0] * t, u, v, h, w)
    k = np.arange(t)
    drifted = mo.Motion(None, (0, 0), 1.004**k, u + 0.3 * k, v - 0.2 * k)
    truth = relative(mo.Motion(None, (0, 0), np.ones(t), u, v))

    def error(m):  # the farthest a corner is from the truth (pixels)
        got = relative(m)
        return np.abs(got[:, 1:] - truth[:, 1:]).max() + np.abs(got[:, 0] - 1).max() * w

    assert error(drifted) > 3
    assert error(mo.refine(frames, drifted)) < 0.25, error(mo.refine(frames, drifted))


def test_a_static_clip_has_no_motion_and_is_coded_as_before():
    picture = (texture(48, 64) * 255).round().to(torch.uint8)
    g = torch.Generator().manual_seed(3)
    noise = torch.randint(-2, 3, (6, 3, 48, 64), generator=g)
    frames = (picture.int() + noise).clamp(0, 255).to(torch.uint8)
    assert mo.estimate(frames) is None
    codec = NervCodec("hnerv")
    on = codec.encode((frames, 25), 3, preset="fast", progress=False, epochs=(1, 1))
    off = codec.encode((frames, 25), 3, preset="fast", progress=False, epochs=(1, 1), motion=False)
    assert on.chunks == off.chunks and "motion" not in header(on.chunks[0][1])


@pytest.fixture(scope="module")
def panned():
    """(frames, motion payload, payload without motion, decoded with motion) of the tiny pan."""
    frames = pan()
    codec = NervCodec("hnerv")
    # module-scoped: the no_key_pictures fixture does not reach here
    on = codec.encode((frames, 25), 3, progress=False, epochs=EPOCHS, key_pictures=False)
    off = codec.encode((frames, 25), 3, progress=False, epochs=EPOCHS, motion=False, key_pictures=False)
    return frames, on, off, codec.decode(on)[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(255**2 / (a.float() - b.float()).pow(2).mean().item())


def test_motion_beats_the_same_encode_without_it_on_a_pan(panned):
    frames, on, off, decoded = panned
    assert "motion" in header(on.chunks[0][1])
    size = lambda p: sum(len(d) for _, d in p.chunks)  # noqa: E731
    with_motion, without = psnr(decoded, frames), psnr(NervCodec("hnerv").decode(off)[0], frames)
    assert with_motion > without + 4, (with_motion, without)
    assert size(on) < 1.25 * size(off), (size(on), size(off))


def test_motion_group_range_decode_and_threads(panned):
    _, on, _, decoded = panned
    codec = NervCodec("hnerv")
    assert torch.equal(codec.decode(on, frames=(3, 7))[0], decoded[3:7])
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.decode(on)[0]
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one, decoded)
    with thread_independent("cpu"):  # each frame alone: the same bytes whichever thread decodes it
        alone = map_single_threaded(lambda i: codec.decode(on, frames=(i, i + 1))[0], range(8))
    assert torch.equal(torch.cat(alone), decoded)


def header(data: bytes) -> dict:
    (n,) = struct.unpack_from("<I", data)
    return json.loads(data[4 : 4 + n])


def with_header(data: bytes, head: dict) -> bytes:
    (n,) = struct.unpack_from("<I", data)
    raw = json.dumps(head).encode()
    return struct.pack("<I", len(raw)) + raw + data[4 + n :]


def with_motion_param(data: bytes, frame: int, k: int, value: float) -> bytes:
    """The chunk with frame ``frame``'s motion number k set to float16 ``value``."""
    (n,) = struct.unpack_from("<I", data)
    at = 4 + n + 2 * sum(t["steps"] for t in header(data)["tensors"]) + 2 * (3 * frame + k)
    return data[:at] + np.array([value], "<f2").tobytes() + data[at + 2 :]


def refuse(payload: Payload, data: bytes, match: str) -> None:
    with pytest.raises(CodecError, match=match) as e:
        NervCodec("hnerv").decode(Payload(payload.params, [("VGOP", data)]))
    assert "\n" not in str(e.value)


def test_corrupt_motion_is_refused_in_one_line(panned):
    _, on, _, _ = panned
    data = on.chunks[0][1]
    head = header(data)
    refuse(on, with_motion_param(data, 3, 1, float("nan")), "not finite")
    refuse(on, with_motion_param(data, 0, 0, 3.0), r"scale is outside")  # e^3 > 8
    refuse(on, with_motion_param(data, 2, 0, 60000.0), "scale step is out of range")
    refuse(on, with_motion_param(data, 4, 2, 60000.0), "beyond")
    huge = {**head, "motion": {"height": 400, "width": 400}}
    refuse(on, with_header(data, huge), "motion canvas 400x400 outside")
    small = {**head, "motion": {"height": 40, "width": head["motion"]["width"]}}
    refuse(on, with_header(data, small), "outside")
    other = {**head, "motion": {**head["motion"], "width": head["motion"]["width"] + 40}}
    refuse(on, with_header(data, other), "is not the")
    (n,) = struct.unpack_from("<I", data)
    cut = data[: 4 + n + 2 * sum(t["steps"] for t in head["tensors"]) + 10]  # into the motion numbers
    refuse(on, cut, r"truncated video group \(motion\)")


def test_a_reader_without_motion_groups_refuses_them(panned):
    """A reader older than motion groups ignores the unknown "motion" key (FORMAT.md section 1) and sees a
    config of the canvas's size, which ``motion_canvas`` keeps from passing for the clip's padded size."""
    _, on, _, _ = panned
    data = on.chunks[0][1]
    old = {k: v for k, v in header(data).items() if k != "motion"}
    with pytest.raises(CodecError, match="is not the 64x48 clip padded"):
        check_group(with_header(data, old), on.params, "hnerv")


@pytest.mark.parametrize("canvas", [(48, 70), (50, 64), (48, 64), (60, 90)])
def test_motion_canvas_never_pads_to_the_clips_own_size(canvas):
    ch, cw = motion_canvas("hnerv", 48, 64, canvas)
    cfg = plan("hnerv", ch, cw, 8)
    s = cfg.height // cfg.grid[0]
    assert (ch, cw) >= canvas and ch == canvas[0] and cw >= canvas[1]
    assert cfg.height >= 48 + s or cfg.width >= 64 + s


def test_a_nerv_file_has_no_motion_groups(panned):
    _, on, _, _ = panned
    data = on.chunks[0][1]
    head = header(data)
    nerv = {**head, "config": {**head["config"], "kind": "nerv"}}
    with pytest.raises(CodecError, match="motion in a nerv file"):
        check_group(with_header(data, nerv), on.params, "nerv")


def test_cli_motion(tmp_path, capfd):
    """--motion / --no-motion reach hnerv (a motion group or none); an image refuses the flag."""
    from mcodec.codec.media_io import write_video
    from mcodec.entropy import read_container

    write_video(tmp_path / "in.mkv", pan(t=6), 25)

    for flag in ("--motion", "--no-motion"):
        out = tmp_path / f"{flag}.mcd"
        code, _, _ = run_cli(
            capfd, "encode", tmp_path / "in.mkv", out, "--preset", "fast", "--quality", 1, flag
        )
        assert code == 0
        chunk = read_container(out.read_bytes()).chunks[0][1]
        assert ("motion" in header(chunk)) == (flag == "--motion")
    code, _, err = run_cli(
        capfd, "encode", tmp_path / "in.mkv", tmp_path / "n.mcd", "--codec", "nerv", "--motion"
    )
    assert code == 2 and "--motion is for the hnerv codec" in err, err


def test_motion_groups_coded_as_differences(monkeypatch):
    """A pan longer than a group: each group is drawn on its own canvas; where two neighbours' canvases
    (so their networks) match, as here, the later one is a VDIF (its weights as differences from the
    earlier's) and still decodes alone in a range, from its own motion and the chained weights."""
    from mcodec.nerv import codec as nerv_codec

    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 4)
    # 4 px a frame: a group's corners travel 12 px, past motion.estimate's threshold
    frames = shoot(texture(160, 200), [1.0] * 8, 10 + 4.0 * np.arange(8), 10 + np.arange(8.0), 48, 64)
    codec = NervCodec("hnerv")
    payload = codec.encode((frames, 25), 3, progress=False, epochs=EPOCHS)
    heads = [header(d) for _, d in payload.chunks]
    assert all("motion" in h for h in heads)
    assert heads[0]["motion"] == heads[1]["motion"]  # the same canvas size: the same network
    assert [t for t, _ in payload.chunks] == ["VGOP", "VDIF"]
    decoded = codec.decode(payload)[0]
    assert psnr(decoded, frames) > 24  # 27.1 dB; 20.4 without motion
    assert torch.equal(codec.decode(payload, frames=(5, 8))[0], decoded[5:])


@pytest.mark.parametrize("strides", [(5, 4, 4), (4, 2, 2, 2)])
def test_a_canvas_is_drawn_only_where_its_frame_reads(strides):
    """Decoder.window draws each level only where the next needs it: the window's logits are those of the
    whole picture (up to the order of float sums); and a frame's window is what sample reads."""
    from mcodec.nerv.model import Decoder, NervConfig

    torch.manual_seed(0)
    s = math.prod(strides)
    cfg = NervConfig("hnerv", 4 * s, 9 * s, strides, (8, 12, 12, 12, 12)[: len(strides) + 1], 16)
    decoder = Decoder(cfg).eval()
    embedding = torch.randn(1, 16, *cfg.grid)
    with torch.no_grad(), thread_independent():
        full = decoder.logits(embedding)
        for rows, cols in [
            ((0, cfg.height), (0, cfg.width)),
            ((37, cfg.height - 20), (99, cfg.width - 30)),
            ((0, 1), (cfg.width - 5, cfg.width)),
        ]:
            drawn = decoder.window(embedding, rows, cols)
            assert drawn.shape == (1, 3, rows[1] - rows[0], cols[1] - cols[0])
            assert torch.allclose(drawn, full[..., slice(*rows), slice(*cols)], atol=1e-6)
    u, v = np.array([0.0, 30.5, 61.25]), np.array([2.0, 2.5, 3.0])  # a pan, a little down
    motion = mo.Motion(np.zeros((3, 3)), (120, 260), np.ones(3), u, v)
    (r0, r1), (c0, c1) = mo.window(motion, range(3), 48, 64, 120, 260)
    canvas = torch.rand(1, 3, 120, 260)
    cut = canvas[..., r0:r1, c0:c1]
    for t in range(3):
        drawn = mo.sample(cut, motion, [t], 48, 64, (r0, c0, 120, 260))
        assert torch.equal(drawn, mo.sample(canvas, motion, [t], 48, 64))
