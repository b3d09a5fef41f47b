"""Property-based fuzzing of every decoder: each codec's reference vectors, mutated (chunk payload bytes,
HEAD params values, VGOP header values, chunk order) with every CRC recomputed so the codecs' own parsers
see the damage, must decode or be refused with one of ``mcodec.USER_ERRORS`` in one line; anything else
fails. The mutations are ``mcodec.codec.fuzz``'s, which bench/fuzz_decoders.py runs at volume.

Examples are derandomized (CI is reproducible) and few (60 per mutation, ~20 s in all): decoding costs
~0.1 s a file (fruits_meanscale, the one hyperprior vector, ~1 s)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcodec.codec.fuzz import MUTATIONS, McdFile, decode_outcome, mutant

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "bitstream_spec" / "vectors"
TABLE = json.loads((VECTORS / "vectors.json").read_text())
# every codec's decodable vectors; fruits_q1 left out: factorized is covered by two small vectors
NAMES = sorted(n for n, v in TABLE.items() if "refuse" not in v and n != "fruits_q1.mcd")
DATA = {n: (VECTORS / n).read_bytes() for n in NAMES}
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def test_the_vectors_cover_every_codec_and_reframe_exactly():
    codecs = {McdFile.parse(d).head_prefix[2 : 2 + McdFile.parse(d).head_prefix[1]] for d in DATA.values()}
    assert codecs == {b"factorized", b"meanscale", b"rvq", b"hnerv", b"nerv"}
    assert all(McdFile.parse(d).to_bytes() == d for d in DATA.values())


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutants_decode_or_are_refused_in_one_line(mutation):
    # chunk_header mutates JSON headers inside chunks, which only the video files have
    names = [n for n in NAMES if mutation != "chunk_header" or b"VGOP" in DATA[n]]

    @FUZZ
    @given(name=st.sampled_from(names), seed=st.integers(0, 2**32 - 1))
    def check(name, seed):
        data = mutant(DATA[name], mutation, seed)
        if data is not None:
            decode_outcome(data)  # raises on anything but a decode or a USER_ERRORS refusal

    check()


def test_volume_bench_smoke():
    """bench/fuzz_decoders.py runs (a few cases) and reports its counts."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_decoders.py"), "--cases", "12", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "decoded" in out.stdout and "cases: 12" in out.stdout
