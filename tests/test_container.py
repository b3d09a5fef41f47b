"""Container v1: round trip and every validation rule of bitstream_spec/FORMAT.md."""

import struct
import zlib

import pytest

from mcodec.entropy import Container, ContainerError, Header, read_container, write_container
from mcodec.entropy.container import (
    MAX_PARAMS_BYTES,
    MAX_STREAMS,
    PARAMS_DICTIONARY,
    SIGNATURE,
    Stream,
    chunk_sizes,
    encode_header,
)

PARAMS = {"width": 40, "height": 30, "channels": 3, "quality": 4.0}


def make(chunks=(("YLAT", b"\x01\x02\x03\x04"),), params=None, **kw) -> bytes:
    h = Header(
        "image",
        "factorized",
        "model-x",
        b"\x11" * 32,
        b"\x22" * 32,
        "tables",
        dict(PARAMS if params is None else params),
        **kw,
    )
    return write_container(Container(h, list(chunks)))


def chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", ctype, len(payload)) + payload + struct.pack("<I", zlib.crc32(ctype + payload))


def split(data: bytes) -> list[bytes]:
    """The raw chunks of a valid file, in order."""
    out, pos = [], 12
    for _, n in chunk_sizes(data):
        out.append(data[pos : pos + n])
        pos += n
    return out


def test_roundtrip():
    data = make([("YLAT", b"abc"), ("ZLAT", b""), ("YLAT", b"x" * 1000)])
    c = read_container(data)
    # version 1.3: the HEAD holds the hashes' first 8 bytes and deflated params (1.2 readers: upgrade)
    assert data[8:12] == bytes([1, 3, 3, 0]) and c.version == (1, 3)
    assert c.header == Header("image", "factorized", "model-x", b"\x11" * 8, b"\x22" * 8, "tables", PARAMS)
    assert c.chunks == [("YLAT", b"abc"), ("ZLAT", b""), ("YLAT", b"x" * 1000)]
    assert [t for t, _ in chunk_sizes(data)] == ["HEAD", "YLAT", "ZLAT", "YLAT", "MEND"]


def test_unknown_ancillary_chunk_is_skipped_but_critical_kept():
    data = make()
    head, ylat, mend = split(data)
    extra = data[:12] + head + chunk(b"meta", b"hello") + ylat + mend
    assert read_container(extra).chunks == read_container(data).chunks


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"", "bad signature"),
        (lambda d: b"GIF89a" + d[6:], "bad signature"),
        (lambda d: d[:10], "no version"),
        (lambda d: d[:8] + b"\x02" + d[9:], "unsupported container version"),
        (lambda d: d[:10] + b"\x05" + d[11:], "needs a reader"),
        (lambda d: d[:11] + b"\x01" + d[12:], "reserved header byte"),
        (lambda d: d[:12], "no HEAD"),
        (lambda d: d + chunk(b"YLAT", b""), "after the end chunk"),
        (lambda d: d[:-12] + chunk(b"MEND", b"x"), "MEND chunk must be empty"),
        (lambda d: d[:12] + d[12:].replace(b"YLAT", b"Y\x00AT", 1), "invalid chunk type"),
    ],
)
def test_structural_rules(mutate, message):
    with pytest.raises(ContainerError, match=message):
        read_container(mutate(make()))


def test_first_chunk_must_be_head_and_only_one():
    data = make()
    head, ylat, mend = split(data)
    with pytest.raises(ContainerError, match="first chunk is not HEAD"):
        read_container(data[:12] + ylat + head + mend)
    with pytest.raises(ContainerError, match="more than one HEAD"):
        read_container(data[:12] + head + head + ylat + mend)


def test_truncation_at_every_byte_is_detected():
    data = make([("YLAT", b"0123456789"), ("ZLAT", b"abc")])
    for n in range(len(data)):
        with pytest.raises(ContainerError):
            read_container(data[:n])


def test_every_single_bit_flip_is_detected():
    data = make([("YLAT", b"0123456789")])
    # byte 9 is the writer's minor version: a reader of the same major reads any minor whose
    # min_reader_minor it meets, so a flip there leaves a file that still decodes correctly.
    for i in (i for i in range(len(data)) if i != 9):
        for bit in (0, 3, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(ContainerError):
                read_container(bytes(bad))


def test_chunk_length_past_end_is_refused_before_allocation():
    data = make()
    bad = data[:12] + data[12:16] + struct.pack("<I", 0xFFFFFFF0) + data[20:]
    with pytest.raises(ContainerError, match="past the end"):
        read_container(bad)


def head_with(payload: bytes) -> bytes:
    return SIGNATURE + bytes([1, 0, 0, 0]) + chunk(b"HEAD", payload) + chunk(b"MEND", b"")


def head_payload(
    media=1,
    codec=b"factorized",
    params=b'{"channels":3,"height":30,"width":40}',
    profile=b"tables",
    params_len=None,
    hash_bytes=32,
):
    n = len(params) if params_len is None else params_len
    return (
        bytes([media, len(codec)])
        + codec
        + bytes([0])
        + b"\0" * 2 * hash_bytes
        + bytes([len(profile)])
        + profile
        + struct.pack("<H", n)
        + params
    )


def test_version_1_0_files_read_with_whole_hashes():
    c = read_container(head_with(head_payload()))
    assert c.version == (1, 0) and c.header.weights_hash == bytes(32) and c.header.tables_hash == bytes(32)
    old = head_with(head_payload())
    with pytest.raises(ContainerError):  # the same HEAD read in the 1.1 layout does not parse
        read_container(old[:9] + b"\x01\x01" + old[11:])


@pytest.mark.parametrize(
    "payload, message",
    [
        (head_payload(), None),
        (head_payload(media=9), "unknown media kind"),
        (head_payload(codec=b"Bad Id"), "invalid codec id"),
        (head_payload(codec=b""), "invalid codec id"),
        (head_payload(profile=b"\xff"), "invalid determinism profile"),
        (head_payload(params=b"{not json"), "not valid JSON"),
        (head_payload(params=b"[1,2]"), "JSON object"),
        (head_payload(params=b'{"width":40,"height":30}'), "'channels' missing"),
        (head_payload(params=b'{"width":40.5,"height":30,"channels":3}'), "not an integer"),
        (
            head_payload(params=b'{"width":100000,"height":100000,"channels":3}'),
            "outside the supported range",
        ),
        (head_payload(params=b'{"width":16384,"height":16384,"channels":3}'), "too large"),
        (head_payload(params=b'{"width":4,"height":3,"channels":3,"x":{"a":1}}'), "unsupported type"),
        (head_payload(params=b"{}" + b" " * 5000), "too large"),
        (head_payload(params=b"[" * 2000 + b"]" * 2000), "not valid JSON"),  # was a RecursionError
        (head_payload()[:-5], "truncated header"),
        (head_payload() + b"\x00", "trailing bytes"),
    ],
)
def test_header_rules(payload, message):
    data = head_with(payload)
    if message is None:
        assert read_container(data).header.codec == "factorized"
    else:
        with pytest.raises(ContainerError, match=message):
            read_container(data)


def test_writer_refuses_what_the_reader_would():
    with pytest.raises(ValueError):
        make(params={"width": 0, "height": 1, "channels": 3})
    with pytest.raises(ValueError):
        make(chunks=[("HEAD", b"")])
    with pytest.raises(ValueError):
        make(chunks=[("toolong", b"")])


# Version 1.2: several streams (a movie's video and sound), each opened by a header chunk.
SOUND = Header(
    "audio",
    "rvq",
    "rvq-x",
    b"\x33" * 32,
    b"\x44" * 32,
    "tables",
    {"sample_rate": 24000, "channels": 2, "samples": 480},
)


def make_movie(streams: int = 2) -> bytes:
    first = read_container(make([("YLAT", b"v1"), ("YLAT", b"v2")]))
    more = [Stream(SOUND, [("ASEG", bytes([i]) * 3)]) for i in range(streams - 1)]
    return write_container(Container(first.header, first.chunks, more=more))


def test_streams_roundtrip():
    data = make_movie()
    c = read_container(data)
    assert data[8:12] == bytes([1, 3, 3, 0]) and c.version == (1, 3)
    assert c.chunks == [("YLAT", b"v1"), ("YLAT", b"v2")]  # the first stream's, as in a file of one
    assert [(s.header.media, s.chunks) for s in c.streams] == [
        ("image", [("YLAT", b"v1"), ("YLAT", b"v2")]),
        ("audio", [("ASEG", b"\x00\x00\x00")]),
    ]
    assert c.more[0].header.weights_hash == b"\x33" * 8  # STRM has HEAD's layout: 8-byte hashes
    assert [t for t, _ in chunk_sizes(data)] == ["HEAD", "YLAT", "YLAT", "STRM", "ASEG", "MEND"]


def test_files_of_earlier_minors_still_read():
    for data in (make(), make_movie()):
        new = read_container(data)
        for minor in (2,) if new.more else (1, 2):
            old = read_container(write_container(new, minor))
            assert (old.streams, old.version) == (new.streams, (1, minor))
            assert len(write_container(new, minor)) > len(data)  # the JSON params, which 1.3 deflates
    with pytest.raises(ValueError, match="cannot be written for 1.1 readers"):
        write_container(read_container(make_movie()), 1)


def test_a_1_2_reader_is_told_to_upgrade_and_a_1_1_reader_kept_from_a_movie():
    with pytest.raises(ContainerError, match="needs a reader of version 1.3"):
        _read_as_minor(make(), 2)
    movie = write_container(read_container(make_movie()), 2)
    with pytest.raises(ContainerError, match="needs a reader of version 1.2"):
        _read_as_minor(movie, 1)
    # and a file that says 1.1 readers may read it, yet holds STRM, is refused: they would drop a stream
    with pytest.raises(ContainerError, match="STRM chunk in a file marked for 1.1 readers"):
        read_container(movie[:9] + b"\x01\x01" + movie[11:])


def _read_as_minor(data: bytes, minor: int):
    import mcodec.entropy.container as container

    old = container.MINOR
    container.MINOR = minor
    try:
        return read_container(data)
    finally:
        container.MINOR = old


def deflated(text: bytes, zdict: bytes = PARAMS_DICTIONARY) -> bytes:
    d = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
    return d.compress(text) + d.flush()


def test_params_deflate_to_a_fifth():
    """An rvq file's params, 127 bytes of JSON, cost ~20 bytes (FORMAT.md 3.1); text the dictionary does not
    know still round-trips."""
    sound = {
        "channels": 1,
        "coded_channels": 1,
        "kbps": 6.0,
        "model_samples": 124173,
        "n_q": 8,
        "postfilter": 2,
        "sample_rate": 16000,
        "samples": 82782,
    }
    data = write_container(Container(Header(**{**vars(SOUND), "params": sound}), [("ASEG", b"")]))
    head = split(data)[0]
    assert len(head) - 12 - (1 + 4 + 6 + 16 + 7 + 2) <= 24
    assert read_container(data).header.params == sound
    odd = {**PARAMS, "name": "".join(chr(0x3B1 + i % 25) + str(i * 7919) for i in range(60))}
    assert read_container(make(params=odd)).header.params == odd


PARAMS_TEXT = b'{"channels":3,"height":30,"width":40}'


@pytest.mark.parametrize(
    "raw, message",
    [
        (deflated(PARAMS_TEXT), None),
        (b"\xff\xff\xff", "not a valid deflate stream"),
        (deflated(PARAMS_TEXT)[:-2], "not one complete deflate stream"),
        (deflated(PARAMS_TEXT) + b"\x00", "not one complete deflate stream"),
        (deflated(PARAMS_TEXT, PARAMS_TEXT), "not valid JSON"),  # deflated against another dictionary
        (deflated(PARAMS_TEXT + b" " * 10**6), "too large"),  # ~1 kB inflating to 1 MB: refused at the cap
        (deflated(PARAMS_TEXT.ljust(MAX_PARAMS_BYTES + 1)), "too large"),
        (deflated(PARAMS_TEXT.ljust(MAX_PARAMS_BYTES)), None),
        (deflated(b"[1,2]"), "JSON object"),
    ],
)
def test_deflated_params_rules(raw, message):
    data = SIGNATURE + bytes([1, 3, 3, 0]) + chunk(b"HEAD", head_payload(params=raw, hash_bytes=8))
    data += chunk(b"MEND", b"")
    if message is None:
        assert read_container(data).header.params == {"channels": 3, "height": 30, "width": 40}
    else:
        with pytest.raises(ContainerError, match=message):
            read_container(data)


def test_stream_count_is_bounded():
    assert len(read_container(make_movie(MAX_STREAMS)).streams) == MAX_STREAMS
    with pytest.raises(ValueError, match="at most"):
        make_movie(MAX_STREAMS + 1)
    data = make_movie(MAX_STREAMS)
    strm = split(data)[-2]  # the last STRM stream's chunks: STRM, ASEG
    extra = data[:-12] + split(data)[-3] + strm + data[-12:]
    with pytest.raises(ContainerError, match=f"more than {MAX_STREAMS} streams"):
        read_container(extra)


def test_stream_headers_are_validated_like_head():
    data = write_container(read_container(make_movie()), 2)  # JSON params, which a test can edit in place
    parts = split(data)  # HEAD, YLAT, YLAT, STRM, ASEG, MEND
    payload = encode_header(Header(**{**vars(SOUND), "params": {**SOUND.params, "sample_rate": 9}}), 2)
    payload = payload.replace(b'"sample_rate":9', b'"sample_rate":0')  # the same length
    mutated = data[:12] + b"".join(parts[:3]) + chunk(b"STRM", payload) + b"".join(parts[4:])
    with pytest.raises(ContainerError, match="sample_rate = 0 outside"):
        read_container(mutated)


def test_the_spec_states_the_dictionary():
    """FORMAT.md 3.1 prints D and its SHA-256: a second reader copies D from there."""
    import hashlib
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[1] / "bitstream_spec" / "FORMAT.md").read_text()
    section = spec[spec.index("### 3.1") :]
    printed = section.split("```\n")[1].rstrip("\n").encode("ascii")
    assert printed == PARAMS_DICTIONARY and hashlib.sha256(printed).hexdigest() in section
