"""Entropy-layer benchmark: throughput and coded size against the tables' information content.

    python bench/entropy_bench.py [--n 1000000] [--repeat 3] [--json out.json]

Cases (N symbols each): a skewed 256-symbol categorical (one table); the indexed Gaussian path
(residuals round(y - mu) under a 64-level scale table, sigma log-uniform on [0.11, 30]), the shape of a
hyperprior latent; factorized coding of a [192, H, W] latent with one table per channel.
Overhead = real bytes * 8 / sum(-log2 p under the integer tables) - 1. Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from mcodec.entropy import (
    TableSet,
    decode_categorical,
    decode_factorized,
    decode_indexed,
    encode_categorical,
    encode_factorized,
    encode_indexed,
    gaussian_tables,
    scale_indexes,
)


def best_time(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def cases(n: int, rng: np.random.Generator):
    p = rng.dirichlet(np.full(256, 0.3))
    cat = TableSet.from_pmfs([p], [0], [1e-9])
    s = rng.choice(256, size=n, p=p)
    yield (
        "categorical-256",
        s,
        np.zeros(n, np.uint8),
        cat,
        lambda: encode_categorical(s, cat),
        lambda d: decode_categorical(d, n, cat),
    )

    g = gaussian_tables()
    sigma = np.exp(rng.uniform(np.log(0.11), np.log(30), n))
    r = np.rint(rng.normal(0, 1, n) * sigma).astype(np.int64)
    idx = scale_indexes(sigma)
    yield (
        "gaussian-indexed-64",
        r,
        idx,
        g,
        lambda: encode_indexed(r, idx, g),
        lambda d: decode_indexed(d, idx, g),
    )

    c = 192
    hw = max(n // c, 1)
    scales = np.exp(rng.uniform(np.log(0.3), np.log(8), c))
    half = 64
    grid = np.arange(-half, half + 1)
    pmfs = [np.exp(-np.abs(grid) / s) for s in scales]
    fac = TableSet.from_pmfs(pmfs, [-half] * c, [1e-9] * c)
    lat = np.rint(rng.laplace(0, scales[:, None], (c, hw))).astype(np.int64)
    fidx = np.repeat(np.arange(c), hw)
    yield (
        "factorized-192ch",
        lat.reshape(-1),
        fidx,
        fac,
        lambda: encode_factorized(lat, fac),
        lambda d: decode_factorized(d, lat.shape, fac),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    print(
        f"{'case':<22} {'symbols':>9} {'enc Msym/s':>10} {'dec Msym/s':>10} {'bytes':>9} "
        f"{'ideal bytes':>11} {'overhead':>9}"
    )
    for name, symbols, indexes, tables, enc, dec in cases(args.n, rng):
        t_enc, data = best_time(enc, args.repeat)
        t_dec, out = best_time(lambda d=data, f=dec: f(d), args.repeat)
        assert np.array_equal(np.asarray(out).reshape(-1), symbols), f"{name}: round trip failed"
        ideal_bits = tables.information_bits(symbols, indexes.astype(np.int64))
        row = {
            "case": name,
            "symbols": int(symbols.size),
            "encode_msym_s": symbols.size / t_enc / 1e6,
            "decode_msym_s": symbols.size / t_dec / 1e6,
            "bytes": len(data),
            "ideal_bytes": ideal_bits / 8,
            "overhead_pct": 100 * (8 * len(data) / ideal_bits - 1),
        }
        rows.append(row)
        print(
            f"{name:<22} {row['symbols']:>9} {row['encode_msym_s']:>10.1f} {row['decode_msym_s']:>10.1f} "
            f"{row['bytes']:>9} {row['ideal_bytes']:>11.0f} {row['overhead_pct']:>8.4f}%"
        )
    print(f"cpu cores: {os.cpu_count()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
