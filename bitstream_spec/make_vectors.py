"""Regenerate the reference vectors in bitstream_spec/vectors/ (after a format or default-weights change).

    python bitstream_spec/make_vectors.py [--new-only]

Writes the files and vectors.json: for files to decode, the SHA-256 of the decoded samples (uint8;
images C x H x W, video T x 3 x H x W; audio float32 C x N) and, for factorized images, of the decoded
latent symbols (int32 little-endian, the stream's order), for audio of the decoded codes (int16, each
segment's [n_q, T] in turn); for files a reader must refuse, a substring of the expected error.
The video vectors are fitted here on the CPU (preset fast): regenerating them writes other files, which
is fine, since the table records what the files decode to.

Files named ``v1.N_*`` were written by the version 1.N writer and are kept as they are (with their table
entries), so older versions keep decoding. A weights change that makes one undecodable retires it.
The audio ones among them are the current vectors' streams re-laid (``RELAID``): a weights change retires
them with the others, and deleted, they are made again from the new files in their version's layout.
``--new-only`` writes only the vectors the table lacks and keeps the others' files and entries (a format
addition adds its vectors without re-fitting the video ones).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import sys
import zlib
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
import torchaudio

from mcodec import decode_bytes, encode_bytes, encode_stream
from mcodec.codec import registry
from mcodec.codec.base import Payload
from mcodec.codec.image import lowfreq, wiener
from mcodec.codec.media_io import read_audio, read_image, read_video
from mcodec.entropy import Container, decode_factorized, read_container, write_container
from mcodec.nerv import codec as nerv_codec

OUT = Path(__file__).resolve().parent / "vectors"
# legacy vectors whose streams follow the default weights: name -> (the current vector, its layout's minor)
RELAID = {
    "v1.1_goforward_rvq_6k_pf.mcd": ("goforward_rvq_6k_pf.mcd", 1),
    "v1.2_movie_hnerv_rvq.mcd": ("movie_hnerv_rvq.mcd", 2),
}


def gray_ramp(h: int, w: int) -> torch.Tensor:
    yy, xx = np.mgrid[0:h, 0:w]
    return torch.from_numpy(((xx * 7 + yy * 3) % 256).astype(np.uint8))[None]


def symbols_sha256(data: bytes) -> str:
    c = read_container(data)
    p = c.header.params
    codec = registry.get(c.header.codec)
    shape = (codec.model.m, -(-p["height"] // 16), -(-p["width"] // 16))
    symbols = decode_factorized(dict(c.chunks)["YLAT"], shape, codec.tables)
    return hashlib.sha256(symbols.astype("<i4").tobytes()).hexdigest()


def codes_sha256(data: bytes) -> str:
    c = read_container(data)
    codes = registry.get(c.header.codec).codes(Payload(c.header.params, c.chunks))
    return hashlib.sha256(b"".join(x.astype("<i2").tobytes() for x in codes)).hexdigest()


def keys_sha256(keys: list[bytes]) -> str:
    """SHA-256 of a video's key pictures (VKEY image files) as decoded, uint8, one after the other."""
    return hashlib.sha256(b"".join(decode_bytes(k)[1].numpy().tobytes() for k in keys)).hexdigest()


def with_ancillary(data: bytes) -> bytes:
    """Insert an ancillary 'note' chunk right after HEAD."""
    head_len = struct.unpack_from("<I", data, 16)[0] + 12
    payload = b"reference vector with an ancillary chunk"
    note = (
        struct.pack("<4sI", b"note", len(payload))
        + payload
        + struct.pack("<I", zlib.crc32(b"note" + payload))
    )
    return data[: 12 + head_len] + note + data[12 + head_len :]


def movie(video: bytes, speech: torch.Tensor, speech_rate: int) -> bytes:
    """A movie of two streams: ``video``'s (an mcodec file's) and speech over the clip's span at 6 kbit/s."""
    c = read_container(video)
    p = c.header.params
    samples = p["frames"] * speech_rate * p["fps_den"] // p["fps_num"]
    sound = encode_stream((speech[:, 8000 : 8000 + samples], speech_rate), "audio", "rvq", 6, postfilter=0)
    return write_container(Container(c.header, c.chunks, more=[sound]))


def with_stream_marked_1_1(data: bytes) -> bytes:
    """A movie whose version bytes say 1.1 readers may read it: they would drop its STRM stream. (Its
    headers are in the 1.1 layout, JSON params, so that the STRM chunk is what a reader refuses.)"""
    old = write_container(read_container(data), min_reader_minor=2)
    return old[:9] + b"\x01\x01" + old[11:]


def main() -> None:
    new_only = "--new-only" in sys.argv[1:]
    OUT.mkdir(exist_ok=True)
    sample = read_image(Path(str(files("mcodec") / "samples" / "fruits_400x300.png")))
    decodable = {
        "fruits_q1.mcd": encode_bytes(sample, "image", "factorized", 1),
        "gray_37x23_q8.mcd": encode_bytes(gray_ramp(23, 37), "image", "factorized", 8),
        "crop_q2_5.mcd": encode_bytes(sample[:, 100:133, 200:251], "image", "factorized", 2.5),
        "fruits_meanscale_q4.mcd": encode_bytes(sample, "image", "meanscale", 4),
    }
    decodable["ancillary_chunk.mcd"] = with_ancillary(decodable["gray_37x23_q8.mcd"])
    # the low-frequency correction (6.2.2), forced: the encoder weighs its bytes at 1/100 of their cost
    choose, lowfreq.choose = (
        lowfreq.choose,
        lambda source, decoded, lmbda: choose(source, decoded, 100 * lmbda),
    )
    decodable["fruits_meanscale_q1_lfcr.mcd"] = encode_bytes(sample, "image", "meanscale", 1)
    lowfreq.choose = choose
    assert "LFCR" in dict(read_container(decodable["fruits_meanscale_q1_lfcr.mcd"]).chunks)
    # the restoration filter (6.2.3) after the correction, both forced the same way
    chooses = lowfreq.choose, wiener.choose
    lowfreq.choose, wiener.choose = (
        lambda source, decoded, lmbda, choose=choose: choose(source, decoded, 100 * lmbda)
        for choose in chooses
    )
    decodable["fruits_meanscale_q2_wflt.mcd"] = encode_bytes(sample, "image", "meanscale", 2)
    lowfreq.choose, wiener.choose = chooses
    assert [t for t, _ in read_container(decodable["fruits_meanscale_q2_wflt.mcd"]).chunks][2:] == [
        "LFCR",
        "WFLT",
    ]
    tree, rate = read_video(Path(str(files("mcodec") / "samples" / "tree_128x96.mkv")), max_frames=3)
    for kind in ("hnerv", "nerv"):  # 3 frames of 64x48: the smallest networks (strides 4, 4)
        clip = (tree[:, :, 24:72, 32:96].contiguous(), rate)
        decodable[f"tree_64x48_{kind}_q1.mcd"] = encode_bytes(
            clip, "video", kind, 1, preset="fast", progress=False, key_pictures=False
        )
    # 4 frames in groups of 2: a VGOP, then a VDIF whose decoder tensors are differences from the VGOP's
    tree4, _ = read_video(Path(str(files("mcodec") / "samples" / "tree_128x96.mkv")), max_frames=4)
    groups_of, nerv_codec.MAX_GROUP_FRAMES = nerv_codec.MAX_GROUP_FRAMES, 2
    clip4 = (tree4[:, :, 24:72, 32:96].contiguous(), rate)
    decodable["tree_64x48_hnerv_vdif.mcd"] = encode_bytes(
        clip4, "video", "hnerv", 1, preset="fast", progress=False, key_pictures=False
    )
    # the same 4 frames, each group drawn over its key picture (6.4.2): VKEY, VGOP, VKEY, VDIF (networks:
    # groups drawn from keys alone, 6.4.5, left out here)
    bare, nerv_codec.BARE_BLOCKS = nerv_codec.BARE_BLOCKS, False
    decodable["tree_64x48_hnerv_key.mcd"] = encode_bytes(
        clip4, "video", "hnerv", 1, preset="fast", progress=False, key_pictures=True
    )
    nerv_codec.MAX_GROUP_FRAMES = groups_of
    # A camera panning 2 pixels right and 1 down a frame across tree's first frame: one motion group (6.4.1)
    pan = torch.stack([tree[0, :, t : t + 48, 2 * t : 2 * t + 64] for t in range(8)]).contiguous()
    decodable["pan_64x48_hnerv_q1.mcd"] = encode_bytes(
        (pan, rate), "video", "hnerv", 1, preset="fast", progress=False, key_pictures=False
    )
    # the same pan drawn over its canvas picture (6.4.2): VKEY of the canvas's size, VGOP
    decodable["pan_64x48_hnerv_key.mcd"] = encode_bytes(
        (pan, rate), "video", "hnerv", 1, preset="fast", progress=False, key_pictures=True
    )
    # held frames (6.4.3): runs of equal frames, one picture each: a static group, and the pan's motion group
    held = torch.stack([tree[i, :, 24:72, 32:96] for i in (0, 0, 1, 2, 2, 2)]).contiguous()
    decodable["held_64x48_hnerv.mcd"] = encode_bytes(
        (held, rate), "video", "hnerv", 1, preset="fast", progress=False, key_pictures=False
    )
    pan_held = (pan.repeat_interleave(2, 0), rate)  # each frame twice
    decodable["pan_64x48_hnerv_held.mcd"] = encode_bytes(
        pan_held, "video", "hnerv", 1, preset="fast", progress=False, key_pictures=False
    )
    # block motion (6.4.4): tree's first frame, its right half sliding up 3 pixels a frame; the group is drawn
    # over its middle frame moved in 16 x 16 blocks: VKEY, VGOP with "blocks"
    still = tree[0, :, 24:72, 32:96]
    sliding = torch.stack(
        [torch.cat([still[:, :, :32], tree[0, :, 3 * t : 3 * t + 48, 64:96]], 2) for t in range(4)]
    )
    decodable["slide_64x48_hnerv_blocks.mcd"] = encode_bytes(
        (sliding.contiguous(), rate), "video", "hnerv", 1, preset="fast", progress=False, key_pictures=True
    )
    nerv_codec.BARE_BLOCKS = bare
    # keys alone (6.4.5): the slide over 14 frames drawn from pictures 3 and 10 coded as images, no network:
    # VKEY, VKEY, VBLK (the encoder's choice forced: on so small a clip it depends on the fit)
    sliding = torch.stack(
        [torch.cat([still[:, :, :32], tree[0, :, 3 * t : 3 * t + 48, 64:96]], 2) for t in range(14)]
    )
    cheaper, nerv_codec._cheaper = nerv_codec._cheaper, lambda fitted, keys_alone, lam, pixels: keys_alone[0]
    decodable["slide_64x48_hnerv_bare.mcd"] = encode_bytes(
        (sliding.contiguous(), rate), "video", "hnerv", 1, preset="fast", progress=False
    )
    nerv_codec._cheaper = cheaper
    speech, speech_rate = read_audio(Path(str(files("mcodec") / "samples" / "goforward_16k.flac")))
    # 1.5 s at a requested 3 kbit/s: the container's bytes make the encoder shed a stage (n_q = 3)
    # (made before the pitch postfilter, 6.3.1: so a file without it is seen to decode as it did)
    decodable["goforward_rvq_3k.mcd"] = encode_bytes(
        (speech[:, 8000:32000], speech_rate), "audio", "rvq", 3, postfilter=0
    )
    # the postfilter at the encoder's default strength on 1.5 s at 6 kbit/s (7 stages), set in the header
    # (the bytes the encoder writes by default)
    pf = read_container(encode_bytes((speech[:, 8000:32000], speech_rate), "audio", "rvq", 6, postfilter=0))
    pf.header.params["postfilter"] = 2
    decodable["goforward_rvq_6k_pf.mcd"] = write_container(pf)
    # 2 s at 48 kHz with a hiss (rms 0.003, then 0.03 from 1 s) above 12 kHz, at 12 kbit/s: its high band
    # in an AHBE chunk (6.3.2)
    up = torchaudio.functional.resample(speech[:, 8000:40000], speech_rate, 48000)
    rms = np.where(np.arange(up.shape[1]) < 48000, 0.003, 0.03)
    hiss = torch.from_numpy(np.random.default_rng(0).standard_normal(up.shape[1]) * rms).float()
    decodable["goforward_48k_rvq_12k_hb.mcd"] = encode_bytes((up + hiss, 48000), "audio", "rvq", 12)
    tree_file = OUT / "tree_64x48_hnerv_q1.mcd"
    video = tree_file.read_bytes() if new_only and tree_file.exists() else decodable[tree_file.name]
    decodable["movie_hnerv_rvq.mcd"] = movie(video, speech, speech_rate)
    good = decodable["crop_q2_5.mcd"]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    refused = {
        "bad_crc.mcd": (bytes(flipped), "CRC mismatch"),
        "truncated.mcd": (good[:-12], "no MEND"),
        "major_2.mcd": (good[:8] + b"\x02" + good[9:], "unsupported container version"),
        "min_reader_minor_4.mcd": (good[:10] + b"\x04" + good[11:], "needs a reader of version 1.4"),
        "stream_in_1.1_file.mcd": (with_stream_marked_1_1(decodable["movie_hnerv_rvq.mcd"]), "STRM chunk"),
    }
    for name, (current, minor) in RELAID.items():
        if not (OUT / name).exists():  # retired by a weights change: the new file's streams, laid out as 1.N
            decodable[name] = write_container(read_container(decodable[current]), min_reader_minor=minor)
    legacy = json.loads((OUT / "vectors.json").read_text()) if (OUT / "vectors.json").exists() else {}
    table = {name: entry for name, entry in legacy.items() if re.match(r"v1\.\d+_", name)}
    if new_only:  # the table's vectors stay as they are; those it lacks are added
        table = {name: entry for name, entry in legacy.items() if (OUT / name).exists()}
        decodable = {name: data for name, data in decodable.items() if name not in table}
        refused = {name: v for name, v in refused.items() if name not in table}
    for name, data in decodable.items():
        (OUT / name).write_bytes(data)
        container, media = decode_bytes(data)
        if container.header.media != "image":
            media = media[0]  # (frames or samples, rate)
        table[name] = {
            "decoded_shape": list(media.shape),
            "decoded_sha256": hashlib.sha256(media.numpy().tobytes()).hexdigest(),
        }
        if container.header.codec == "factorized":
            table[name]["symbols_sha256"] = symbols_sha256(data)
        if container.header.media == "audio":
            table[name]["codes_sha256"] = codes_sha256(data)
            payload = Payload(container.header.params, container.chunks)
            if (levels := registry.get("rvq").high_band(payload)) is not None:  # AHBE (6.3.2): exact too
                table[name]["high_band_sha256"] = hashlib.sha256(levels.astype("<i4").tobytes()).hexdigest()
        keys = [chunk for ctype, chunk in container.chunks if ctype == "VKEY"]
        if keys:  # the key pictures' image synthesis is float32: the frames' hash holds where theirs does
            table[name]["keys_sha256"] = keys_sha256(keys)
        for i, stream in enumerate(container.more, 1):  # a movie's sound: its codes, exact everywhere
            alone = write_container(Container(stream.header, stream.chunks))
            table[name][f"stream{i}_codes_sha256"] = codes_sha256(alone)
    for name, (data, message) in refused.items():
        (OUT / name).write_bytes(data)
        table[name] = {"refuse": message}
    (OUT / "vectors.json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(json.dumps(table, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
