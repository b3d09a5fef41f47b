"""Every reference vector in bitstream_spec/vectors decodes to its recorded hashes, or is refused."""

import hashlib
import json
from pathlib import Path

import pytest

from mcodec import decode_bytes
from mcodec.codec import registry
from mcodec.entropy import ContainerError, decode_factorized, read_container

VECTORS = Path(__file__).resolve().parent.parent / "bitstream_spec" / "vectors"
TABLE = json.loads((VECTORS / "vectors.json").read_text())


def test_vector_files_match_the_table():
    assert sorted(p.name for p in VECTORS.glob("*.mcd")) == sorted(TABLE)


@pytest.mark.parametrize("name", sorted(n for n, v in TABLE.items() if "refuse" not in v))
def test_decodable_vector(name):
    expected = TABLE[name]
    data = (VECTORS / name).read_bytes()
    c = read_container(data)
    if "symbols_sha256" in expected:  # image vectors: the latent symbols alone
        codec = registry.get(c.header.codec)
        p = c.header.params
        shape = (codec.model.m, -(-p["height"] // 16), -(-p["width"] // 16))
        symbols = decode_factorized(dict(c.chunks)["YLAT"], shape, codec.tables)
        assert hashlib.sha256(symbols.astype("<i4").tobytes()).hexdigest() == expected["symbols_sha256"]
    _, media = decode_bytes(data)
    if c.header.media == "video":
        media = media[0]  # (frames, rate)
    assert list(media.shape) == expected["decoded_shape"]
    assert hashlib.sha256(media.numpy().tobytes()).hexdigest() == expected["decoded_sha256"]


@pytest.mark.parametrize("name", sorted(n for n, v in TABLE.items() if "refuse" in v))
def test_refused_vector(name):
    with pytest.raises(ContainerError, match=TABLE[name]["refuse"]):
        read_container((VECTORS / name).read_bytes())
