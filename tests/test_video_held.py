"""Held frames (nerv/held.py, FORMAT.md 6.4.3): runs of equal frames share one picture."""

import pytest
import torch
from test_video_motion import header, pan, texture, with_header

from mcodec.codec import CodecError
from mcodec.codec.base import Payload
from mcodec.nerv.codec import NervCodec, check_group
from mcodec.nerv.held import first_frames, held_runs, picture_index, runs_of

# files laid out chunk by chunk: without key pictures (test_video_keypicture.py)
pytestmark = pytest.mark.usefixtures("no_key_pictures")

RUNS = [3, 1, 2, 4]


def held_clip(runs: list[int], h: int = 48, w: int = 64) -> torch.Tensor:
    """uint8 frames [sum(runs), 3, h, w]: a different textured picture per run, repeated."""
    pictures = [texture(h, w, seed=10 + p)[0].mul(255).round().to(torch.uint8) for p in range(len(runs))]
    return torch.stack([pictures[p] for p in picture_index(runs).tolist()])


def test_runs_of_equal_frames():
    frames = held_clip(RUNS)
    assert held_runs(frames) == RUNS
    assert picture_index(RUNS).tolist() == [0, 0, 0, 1, 2, 2, 3, 3, 3, 3]
    assert first_frames(RUNS).tolist() == [0, 3, 4, 6]
    assert runs_of(picture_index(RUNS)[2:7]) == [1, 1, 2, 1]
    one_level = frames.clone()
    one_level[1, 0, 5, 5] ^= 1  # one sample one level off: no longer the same frame
    assert held_runs(one_level) == [1, 1, 1, 1, 2, 4]


@pytest.fixture(scope="module")
def held():
    frames = held_clip(RUNS)
    codec = NervCodec("hnerv")
    payload = codec.encode((frames, 25), 2, progress=False, epochs=(20, 4), key_pictures=False)
    return frames, payload, codec.decode(payload)[0]


def test_one_embedding_per_run_and_each_run_decoded_once(held, monkeypatch):
    frames, payload, decoded = held
    ((ctype, data),) = payload.chunks
    head = header(data)
    assert head["held"] == RUNS
    assert head["tensors"][-1]["name"] == "embeddings" and head["tensors"][-1]["shape"][1] == len(RUNS)
    assert held_runs(decoded) == RUNS  # the copies are equal, and the pictures differ
    psnr = 10 * torch.log10(255**2 / (decoded.float() - frames.float()).pow(2).mean())
    assert psnr > 20, psnr
    # a frame range gives the whole decode's frames; each picture of the range is drawn once
    from mcodec.nerv import codec as nerv_codec

    drawn = []
    decoder_logits = nerv_codec.Decoder.logits
    monkeypatch.setattr(nerv_codec.Decoder, "logits", lambda d, x: drawn.append(1) or decoder_logits(d, x))
    assert torch.equal(NervCodec("hnerv").decode(payload, frames=(3, 9))[0], decoded[3:9])
    assert len(drawn) == 3  # pictures 1, 2, 3 for frames 3..8


def test_a_clip_without_repeats_has_no_held_key():
    payload = NervCodec("hnerv").encode((pan(4), 25), 2, progress=False, epochs=(2, 1), motion=False)
    assert all("held" not in header(data) for _, data in payload.chunks)


def test_corrupt_held_frames_are_refused_in_one_line(held):
    _, payload, _ = held
    data = payload.chunks[0][1]
    head = header(data)

    def refuse(head: dict, match: str, kind: str = "hnerv") -> None:
        with pytest.raises(CodecError, match=match) as e:
            check_group(with_header(data, head), payload.params, kind)
        assert "\n" not in str(e.value)

    refuse({**head, "held": [3, 1, 2, 3]}, "add up to 9, not the group's 10")
    refuse({**head, "held": [3, 1, 2, 0, 4]}, r"held\[3\] = 0 outside")
    refuse({**head, "held": []}, "has 0 items")
    refuse({**head, "held": [5, 5]}, "tensors do not match")  # two runs, four embeddings
    refuse({**head, "config": {**head["config"], "kind": "nerv"}}, "held frames in a nerv file", "nerv")
    # a reader without held frames ignores the unknown key and then refuses the embeddings' shape
    old = {k: v for k, v in head.items() if k != "held"}
    refuse(old, "tensors do not match")
    with pytest.raises(CodecError, match="tensors do not match"):
        NervCodec("hnerv").decode(Payload(payload.params, [("VGOP", with_header(data, old))]))


def test_few_pictures_get_a_finer_grid():
    """Embeddings that cost little (few pictures for the frames) buy a grid of half the stride."""
    from mcodec.nerv.codec import FINE_GRID_SHARE, max_parameters, network_for, parameter_budget
    from mcodec.nerv.model import parameter_count

    few, every = (network_for("hnerv", 240, 320, 120, 4, pictures=p) for p in (19, 120))
    assert (few.grid, every.grid) == ((6, 8), (3, 4))
    assert 19 * 16 * 48 <= FINE_GRID_SHARE * parameter_budget(240, 320, 120, 4) < 120 * 16 * 48
    assert parameter_count(few) <= max_parameters("hnerv", 240, 320, 120)  # a decoder takes it
    assert network_for("nerv", 240, 320, 120, 4, pictures=19).grid == (3, 4)
