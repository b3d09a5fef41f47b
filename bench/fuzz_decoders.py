"""Fuzz every decoder at volume: the reference vectors, mutated by ``mcodec.codec.fuzz`` (the mutations
tests/test_fuzz.py runs a few of), decoded; prints the count of each outcome.

    python bench/fuzz_decoders.py --cases 10000 --seed 1 --jobs 2

Outcomes: ``decoded``, the ``USER_ERRORS`` type a decoder refused the file with, or ``BUG <type>`` for
anything else (with the first tracebacks and the vector, mutation and seed that reproduce it:
``mutant(vector bytes, mutation, seed)``). Each case draws its vector, mutation and seed from
``--seed`` and its number, so a run is reproducible whatever ``--jobs``. Video cases decode a frame
range (``frames``) a third of the time. Exit status 1 if any case was a bug.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

VECTORS = Path(__file__).resolve().parent.parent / "bitstream_spec" / "vectors"
FILES: dict[str, bytes] = {}


def load_vectors(names: list[str] | None) -> dict[str, bytes]:
    table = json.loads((VECTORS / "vectors.json").read_text())
    decodable = sorted(n for n, v in table.items() if "refuse" not in v)
    return {n: (VECTORS / n).read_bytes() for n in (names or decodable)}


def draw(seed: int, case: int) -> tuple[str, str, int, dict]:
    """(vector, mutation, mutation seed, decode options) of one case."""
    from mcodec.codec.fuzz import JSON_HEADER_CHUNKS, MUTATIONS, McdFile

    rng = random.Random(seed * 1_000_003 + case)
    name = rng.choice(sorted(FILES))
    types = {t for t, _ in McdFile.parse(FILES[name]).chunks}
    mutation = rng.choice(
        sorted(m for m in MUTATIONS if m != "chunk_header" or types & set(JSON_HEADER_CHUNKS))
    )
    options = {}
    if b"VGOP" in types and rng.random() < 1 / 3:
        a = rng.randrange(3)
        options["frames"] = (a, rng.randrange(a + 1, 4))
    return name, mutation, rng.getrandbits(32), options


def run_case(args: tuple[int, int]) -> tuple[str, str | None]:
    """(outcome, traceback and reproduction of a bug or None)."""
    from mcodec.codec.fuzz import decode_outcome, mutant

    seed, case = args
    name, mutation, mseed, options = draw(seed, case)
    data = mutant(FILES[name], mutation, mseed)
    if data is None:
        return "not applicable", None
    try:
        return decode_outcome(data, **options), None
    except Exception as e:  # noqa: BLE001 - every other exception is what this bench looks for
        where = f"case {case}: mutant({name!r}, {mutation!r}, {mseed}), options {options}"
        return f"BUG {type(e).__name__}", f"{where}\n{traceback.format_exc()}"


def _init(names: list[str] | None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    FILES.update(load_vectors(names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each)")
    ap.add_argument("--vectors", nargs="*", help="vector file names (default: every decodable one)")
    ap.add_argument("--tracebacks", type=int, default=3, help="bug tracebacks to print")
    args = ap.parse_args(argv)
    start = time.time()
    work = [(args.seed, case) for case in range(args.cases)]
    if args.jobs > 1:
        with Pool(args.jobs, _init, (args.vectors, 1)) as pool:
            results = list(pool.imap(run_case, work, chunksize=16))
    else:
        import torch

        _init(args.vectors, torch.get_num_threads())
        results = [run_case(w) for w in work]
    counts = Counter(outcome for outcome, _ in results)
    bugs = [tb for _, tb in results if tb]
    print(f"cases: {args.cases}  seed: {args.seed}  seconds: {time.time() - start:.0f}")
    for outcome, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:8d}  {outcome}")
    for tb in bugs[: args.tracebacks]:
        print("\n" + tb, file=sys.stderr)
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
