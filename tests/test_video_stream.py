"""Video in bounded memory (read and written group by group) and the encode time budget (--max-minutes)."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
import torch
from conftest import random_image

from mcodec import decode_bytes, encode_bytes, encode_file
from mcodec.codec import CodecError, media_io, registry
from mcodec.codec.base import Payload
from mcodec.entropy import read_container
from mcodec.nerv import codec as nerv_codec
from mcodec.nerv.budget import LEAST, SHARE, Budget, Pacer, plan_epochs
from mcodec.nerv.fit import fit_steps
from mcodec.nerv.progress import ClipProgress

# files laid out chunk by chunk: without key pictures (test_video_keypicture.py)
pytestmark = pytest.mark.usefixtures("no_key_pictures")

FEW = (3, 1)  # epochs: a real fit, short


def clip(t=5, h=32, w=48):
    base = random_image(3, h, w, seed=3).float()
    return torch.stack([base.roll(2 * i, dims=2) for i in range(t)]).round().clamp(0, 255).to(torch.uint8)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_open_video_reads_group_by_group(tmp_path):
    frames = clip(t=7)
    media_io.write_video(tmp_path / "in.mkv", frames, Fraction(12))
    source = media_io.open_video(tmp_path / "in.mkv")
    assert (source.frames, source.width, source.height, source.rate) == (7, 48, 32, 12)
    parts = list(source.groups([(0, 3), (3, 5), (6, 7)]))  # a frame may be skipped
    assert [p.shape[0] for p in parts] == [3, 2, 1]
    assert torch.equal(torch.cat(parts), frames[[0, 1, 2, 3, 4, 6]])
    assert torch.equal(source.read()[0], frames)
    assert media_io.open_video(tmp_path / "in.mkv", max_frames=4).frames == 4


def test_streamed_encode_is_the_whole_tensor_encode(tmp_path, monkeypatch):
    """The encoder reads one group of a VideoSource at a time (the source has not been read past a
    group when it is fitted) and writes the same file as from the whole clip in memory."""
    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    frames = clip(t=5)
    media_io.write_video(tmp_path / "in.mkv", frames, Fraction(12))  # FFV1 RGB: lossless
    source = media_io.open_video(tmp_path / "in.mkv")
    read, read_at_fit = [0], []

    def counted():
        for f in media_io.open_video(tmp_path / "in.mkv").read_frames():
            read[0] += 1
            yield f

    source.read_frames = counted
    fit_group = nerv_codec.fit_group
    monkeypatch.setattr(
        nerv_codec, "fit_group", lambda *a, **k: read_at_fit.append(read[0]) or fit_group(*a, **k)
    )
    streamed = encode_bytes(source, "video", "hnerv", 2, epochs=FEW, progress=False)
    assert read_at_fit == [2, 4, 5]
    whole = encode_bytes((frames, Fraction(12)), "video", "hnerv", 2, epochs=FEW, progress=False)
    assert streamed == whole
    encode_file(tmp_path / "in.mkv", tmp_path / "f.mcd", "hnerv", 2, epochs=FEW, progress=False)
    assert (tmp_path / "f.mcd").read_bytes() == whole


def test_decode_groups_of_a_frame_range(monkeypatch):
    monkeypatch.setattr(nerv_codec, "MAX_GROUP_FRAMES", 2)
    frames = clip(t=5)
    data = encode_bytes((frames, 25), "video", "nerv", 1, epochs=FEW, progress=False)
    container = read_container(data)
    payload = Payload(container.header.params, container.chunks)
    codec = registry.get("nerv")
    _, (whole, _) = decode_bytes(data)
    # groups [0, 2) VGOP, then [2, 4) and [4, 5) VDIF: weights as differences from the previous group's
    assert [t for t, _ in container.chunks] == ["VGOP", "VDIF", "VDIF"]
    read_tensors, reconstruct, read, synthesized = nerv_codec._read_tensors, nerv_codec.reconstruct, [], []
    monkeypatch.setattr(
        nerv_codec, "_read_tensors", lambda *a: read.append(a[1].head["first"]) or read_tensors(*a)
    )
    monkeypatch.setattr(
        nerv_codec, "reconstruct", lambda d, x, *a: synthesized.append(len(x)) or reconstruct(d, x, *a)
    )
    groups = codec.decode_groups(payload, frames=(1, 3))
    assert read == []  # decoded as they are consumed
    parts = list(groups)
    assert [p.shape for p in parts] == [(1, 3, 32, 48), (1, 3, 32, 48)] and read == [0, 2]
    assert torch.equal(torch.cat(parts), whole[1:3])
    read.clear(), synthesized.clear()
    (part,) = codec.decode_groups(payload, frames=(2, 4))  # group 1 needs group 0's weights, not its frames
    assert read == [0, 2] and synthesized == [2] and torch.equal(part, whole[2:4])
    read.clear(), synthesized.clear()
    (part,) = codec.decode_groups(payload, frames=(4, 5))  # the chain back to the VGOP
    assert read == [0, 2, 4] and synthesized == [1] and torch.equal(part, whole[4:])
    assert [p.shape[0] for p in codec.decode_groups(payload)] == [2, 2, 1]
    with pytest.raises(CodecError, match="frame range"):
        codec.decode_groups(payload, frames=(3, 9))  # refused before any group is decoded


def test_write_video_stream_round_trip_and_atomic(tmp_path):
    frames = clip(t=5)
    media_io.write_video_stream(tmp_path / "out.mkv", (frames[a:b] for a, b in ((0, 2), (2, 5))), 12, 48, 32)
    back, rate = media_io.read_video(tmp_path / "out.mkv")
    assert torch.equal(back, frames) and rate == 12

    def failing():
        yield frames[:2]
        raise CodecError("corrupt video group")

    (tmp_path / "keep.mkv").write_bytes(b"old")
    for name, force in (("new.mkv", False), ("keep.mkv", True)):
        with pytest.raises(CodecError, match="corrupt"):
            media_io.write_video_stream(tmp_path / name, failing(), 12, 48, 32, force=force)
    assert not (tmp_path / "new.mkv").exists() and (tmp_path / "keep.mkv").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mkv", "out.mkv"]  # no temporary left
    with pytest.raises(media_io.MediaError, match="even dimensions"):
        media_io.write_video_stream(tmp_path / "odd.mp4", iter([]), 12, 47, 32)


def test_plan_epochs_fits_the_budget():
    """The preset where it fits; else the longest schedule at the preset's ratio of fit to fine-tune
    epochs whose steps fit; LEAST (not fitting) where nothing does."""
    step_s, per_epoch, most = (0.4, 0.5), 60, (150, 20)
    full = per_epoch * (150 * 0.4 + 20 * 0.5)
    assert plan_epochs(full, per_epoch, step_s, most).epochs == most
    plan = plan_epochs(300, per_epoch, step_s, most)
    (fit, qat), cost = plan.epochs, plan.seconds
    assert plan.fits and cost == per_epoch * (fit * 0.4 + qat * 0.5) <= 300
    assert per_epoch * ((fit + 1) * 0.4 + qat * 0.5) > 300  # the longest that fits
    assert qat == round(fit * 20 / 150) and fit == 11
    tight = plan_epochs(10, per_epoch, step_s, most)
    assert tight.epochs == LEAST and not tight.fits and tight.seconds == pytest.approx(per_epoch * 0.9)


def test_budget_replans_from_the_time_left():
    clock = FakeClock()
    budget = Budget(5, (150, 20), clock)
    first = budget.plan(60, (0.4, 0.5))
    assert first.seconds <= SHARE * 300
    clock.now += 200  # the first group took longer than planned: fewer epochs for the rest
    later = budget.plan(30, (0.6, 0.7))
    assert later.epochs[0] < first.epochs[0] and later.seconds <= SHARE * 100
    clock.now += 200  # past the deadline
    assert budget.left() < 0 and budget.plan(30, (0.6, 0.7)).epochs == LEAST


def run_pacer(pacer: Pacer, clock: FakeClock, seconds) -> list[str]:
    """The phases a fit makes under ``pacer`` when its k-th step takes seconds(k) s."""
    made = []
    for phase in ("fit", "qat"):
        for _ in range(pacer.left[0 if phase == "fit" else 1]):
            clock.now += seconds(len(made))
            made.append(phase)
            if pacer(phase):
                break
    return made


def test_pacer_ends_a_phase_when_the_machine_slows_down():
    """At the planned pace a group makes all its steps; where the steps slow down after the plan, the
    fit phase ends early and the fine-tune steps are kept; a slow step alone does not end anything."""
    clock = FakeClock()
    made = run_pacer(
        Pacer(clock.now + 120, (40, 8), (2.0, 2.0), clock), clock, lambda k: 2.0 if k != 5 else 20
    )
    assert made == ["fit"] * 40 + ["qat"] * 8  # 114 s of steps against 120: one slow step is not a trend
    clock = FakeClock()
    pacer = Pacer(clock.now + 100, (40, 8), (2.0, 2.0), clock)
    made = run_pacer(pacer, clock, lambda k: 2.0 if k < 10 else 4.0)
    assert made.count("qat") == 8 and 20 < made.count("fit") < 40 and pacer.skipped == 40 - made.count("fit")
    assert clock.now - 100 <= 100 + 4.0 * 2
    clock = FakeClock()  # so slow that the fine-tune overruns too: it ends where its next step would
    made = run_pacer(
        Pacer(clock.now + 30, (10, 8), (1.0, 1.0), clock), clock, lambda k: 1.0 if k < 3 else 6.0
    )
    assert made.count("qat") < 8 and clock.now - 100 <= 30 + 6.0


def test_one_bar_over_the_clip_estimates_the_whole_fit():
    clock, estimates = FakeClock(), []
    bar = ClipProgress(50, "hnerv", enabled=False, on_estimate=estimates.append, clock=clock)
    clock.now += 20.0  # before the first step ends: the group's frames read, its key pictures coded
    bar.on_step("fit", 0.01)
    for i in range(1, 10):
        clock.now += 2.0 if i < 6 else 3.0
        bar.on_step("fit" if i < 6 else "qat", 0.01)
    assert estimates == [2.0 * 50]  # once, after the first steps, timed from the first step's end
    assert bar.step_seconds() == ((20.0 + 5 * 2.0) / 6, 3.0)
    bar.close()


def test_fractional_epochs_cut_the_last_epoch():
    assert fit_steps((3, 1), 5) == (9, 3)
    assert fit_steps((0.1, 0.01), 120) == (6, 1)


@pytest.fixture
def one_thread():
    """A tiny network's step takes 10 ms on one thread, and 1 s on two where the cores are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_max_minutes_plans_and_says_so(tmp_path, capfd, one_thread):
    from mcodec.cli.main import main

    media_io.write_video(tmp_path / "in.mkv", clip(t=3), Fraction(12))

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        return e.value.code, capfd.readouterr().err

    code, err = run("encode", tmp_path / "in.mkv", tmp_path / "v.mcd", "--max-minutes", 0.05)
    assert code == 0, err
    (line,) = [x for x in err.splitlines() if "time budget" in x]
    assert re.search(r"hnerv: \d+ \+ \d+ epochs per group .*preset fast: 40 \+ 8.*expected", line)
    assert decode_bytes((tmp_path / "v.mcd").read_bytes())[1][0].shape == (3, 3, 32, 48)
    code, err = run("encode", tmp_path / "in.mkv", tmp_path / "w.mcd", "--max-minutes", 1e-5)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(r"--max-minutes 1e-05 is too short for 3 frames of 48x32 .* even 1 \+ 1 epochs", err)
    assert not (tmp_path / "w.mcd").exists()


def test_max_minutes_is_refused_for_images_and_audio(tmp_path, capfd, sample_path):
    from mcodec.cli.main import main

    media_io.write_audio(tmp_path / "a.wav", torch.zeros(1, 8000), 8000)
    for src in (sample_path, tmp_path / "a.wav"):
        with pytest.raises(SystemExit) as e:
            main(["encode", str(src), str(tmp_path / "x.mcd"), "--max-minutes", "5"])
        err = capfd.readouterr().err
        assert e.value.code == 2 and "--max-minutes is for video codecs" in err, err
    assert not (tmp_path / "x.mcd").exists()


@pytest.mark.parametrize("keys", [False, True])  # True: key pictures and block motion come first
def test_a_slow_clip_is_announced_with_its_expected_time(monkeypatch, keys):
    """Without a budget, a fit expected to take longer than SLOW_NOTE_S says so once, after its first
    steps, with the expected time (here every fit counts as slow)."""
    monkeypatch.setattr(nerv_codec, "SLOW_NOTE_S", 0)
    lines = []
    encode_bytes(
        (clip(t=4), 25), "video", "nerv", 1, epochs=FEW, progress=False, log=lines.append, key_pictures=keys
    )
    (line,) = lines
    assert re.fullmatch(
        r"note: 48x32 frames are slow to fit on cpu: about \d+ s for the 4 frames at 3 \+ 1 "
        r"epochs \(--max-minutes plans the epochs for a time budget\)",
        line,
    ), line
