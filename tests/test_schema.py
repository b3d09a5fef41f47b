"""The declarative schema of codec parameters: every refusal is one CodecError line naming the field."""

from pathlib import Path

import pytest

from mcodec.codec import CodecError
from mcodec.codec.schema import Int, ListOf, Number, OneOf, Schema, Text

TENSOR = Schema("tensor", {"name": Text(8), "shape": ListOf(Int(1, 100), 1, 4)})
HEADER = Schema(
    "test header",
    {
        "n": Int(1, 10),
        "q": Number(0.5, 8),
        "kind": OneOf(("a", "b")),
        "flag": OneOf((1,), required=False),
        "tensors": ListOf(TENSOR, 1, 3),
    },
    rules=(lambda v: None if v["n"] <= 2 * v["q"] else "n exceeds twice q",),
)
GOOD = {"n": 3, "q": 2.5, "kind": "a", "tensors": [{"name": "w", "shape": [2, 3]}], "extra": [1, "x"]}


def test_a_good_object_passes_and_unknown_keys_are_ignored():
    assert HEADER.check(GOOD) is GOOD
    assert HEADER.check({**GOOD, "q": 4, "flag": 1}) is not None  # an int is a number


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n": 0}, r"test header: n = 0 outside 1\.\.10"),
        ({"n": 2**70}, "n = 1180591620717411303424 outside"),
        ({"n": True}, "n = True is not an integer"),
        ({"n": 3.0}, "n = 3.0 is not an integer"),
        ({"n": "3"}, "n = '3' is not an integer"),
        ({"q": float("nan")}, "q = nan is not a finite number"),
        ({"q": float("inf")}, "q = inf is not a finite number"),
        ({"q": 9}, r"q = 9 outside 0\.5\.\.8"),
        ({"q": [1]}, "q = \\[1\\] is not a finite number"),
        ({"kind": "c"}, "kind = 'c' is not one of 'a', 'b'"),
        ({"flag": True}, "flag = True is not one of 1"),
        ({"flag": 1.0}, "flag = 1.0 is not one of 1"),
        ({"tensors": []}, r"tensors has 0 items, not 1\.\.3"),
        ({"tensors": {"name": "w"}}, "tensors = .* is not a list"),
        ({"tensors": [7]}, r"tensors\[0\] = 7 is not a JSON object"),
        ({"tensors": [{"name": "w"}]}, r"tensors\[0\]\.shape is missing"),
        ({"tensors": [{"name": "w", "shape": [2, 0]}]}, r"tensors\[0\]\.shape\[1\] = 0 outside 1\.\.100"),
        ({"tensors": [{"name": "x" * 9, "shape": [1]}]}, r"tensors\[0\]\.name = .* at most 8 characters"),
        ({"n": 6}, "test header: n exceeds twice q"),
    ],
)
def test_each_bad_value_is_one_line_naming_its_field(change, message):
    with pytest.raises(CodecError, match=message) as e:
        HEADER.check({**GOOD, **change})
    assert "\n" not in str(e.value) and len(str(e.value)) < 160


def test_missing_fields_and_non_objects_are_refused():
    with pytest.raises(CodecError, match="test header: kind is missing"):
        HEADER.check({k: v for k, v in GOOD.items() if k != "kind"})
    with pytest.raises(CodecError, match="test header: = \\[1, 2\\] is not a JSON object"):
        HEADER.check([1, 2])
    assert Schema("x", {"a": Int(0, 1, required=False)}).check({}) == {}


def test_extend_adds_fields_and_keeps_rules():
    wider = HEADER.extend("wider", {"n": Int(1, 100)})
    assert wider.check({**GOOD, "n": 5}) is not None
    with pytest.raises(CodecError, match="wider: n exceeds twice q"):
        wider.check({**GOOD, "n": 50})


VECTORS = Path(__file__).resolve().parent.parent / "bitstream_spec" / "vectors"


@pytest.mark.parametrize(
    "name, key, value, message",
    [
        ("gray_37x23_q8.mcd", "channels", 2, "factorized params: channels = 2 is not one of 1, 3"),
        ("gray_37x23_q8.mcd", "quality", float("nan"), "factorized params: quality = nan is not a finite"),
        ("gray_37x23_q8.mcd", "quality", "8", "quality = '8' is not a finite number"),
        ("fruits_meanscale_q4.mcd", "ep_crc32", None, "meanscale params: ep_crc32 is missing"),
        ("fruits_meanscale_q4.mcd", "ep_crc32", 2**32, r"ep_crc32 = 4294967296 outside 0\.\.4294967295"),
        ("goforward_rvq_3k.mcd", "coded_channels", 2, "rvq params: coded_channels = 2 is not one of 1"),
        ("goforward_rvq_3k.mcd", "n_q", 0, r"rvq params: n_q = 0 outside 1\.\.\d+"),
        (
            "goforward_rvq_3k.mcd",
            "model_samples",
            2**40,
            "model_samples = 1099511627776 is not the resampled",
        ),
        ("goforward_rvq_3k.mcd", "kbps", None, "rvq params: kbps is missing"),
        ("tree_64x48_hnerv_q1.mcd", "quality", 0, r"video params: quality = 0 outside 1\.\.6"),
        ("tree_64x48_hnerv_q1.mcd", "preset", 5, "video params: preset = 5 is not a string"),
    ],
)
def test_every_codec_checks_its_head_params(name, key, value, message):
    """Each codec's schema runs on every decode (mcodec.decode_bytes) before its decoder reads a number;
    ``None`` removes the key."""
    from mcodec import decode_bytes
    from mcodec.codec.fuzz import McdFile

    f = McdFile.parse((VECTORS / name).read_bytes())
    f.params = {k: v for k, v in f.params.items() if k != key} | ({} if value is None else {key: value})
    with pytest.raises(CodecError, match=message):
        decode_bytes(f.to_bytes())


@pytest.mark.parametrize("name", ["gray_37x23_q8.mcd", "fruits_meanscale_q4.mcd"])
def test_an_image_file_with_an_unknown_or_repeated_critical_chunk_is_refused(name):
    from mcodec import decode_bytes
    from mcodec.codec.fuzz import McdFile

    f = McdFile.parse((VECTORS / name).read_bytes())
    for chunks in ([*f.chunks, (b"ABCD", b"")], [*f.chunks, f.chunks[-1]], f.chunks[1:]):
        with pytest.raises(CodecError, match="expected chunks"):
            decode_bytes(McdFile(f.version, f.head_prefix, f.params, chunks).to_bytes())
