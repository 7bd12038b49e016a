#!/usr/bin/python3
"""Writes the small LIBSVM file of E2's "any LIBSVM file" leg, deterministically.

    make_libsvm.py OUT [--rows 2000] [--features 1000] [--seed 2026]

A sparse binary text-like problem: feature j appears in a row with probability ∝ 1/(j+10)
(Zipf-like document frequencies, ~25 non-zeros per row), values are log(1 + count) scaled by an
idf weight, each row normalized to unit 2-norm (as LIBSVM's rcv1/news20 files are); the label is
the sign of a planted sparse linear model plus logistic noise. numpy's PCG64 with a fixed seed
makes the bytes identical on every run; values are written with 6 significant digits.
"""
import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()
    rng = np.random.Generator(np.random.PCG64(a.seed))
    d = a.features
    freq = 1.0 / (np.arange(d) + 10.0)
    freq *= 25.0 / freq.sum()                       # expected non-zeros per row
    freq = np.minimum(freq, 0.9)
    idf = np.log(1.0 / freq)
    w = np.zeros(d)
    support = rng.choice(d, size=d // 10, replace=False)
    w[support] = rng.normal(0.0, 3.0, size=support.size)
    lines = []
    for _ in range(a.rows):
        present = np.flatnonzero(rng.random(d) < freq)
        if present.size == 0:
            present = np.array([int(rng.integers(d))])
        counts = rng.geometric(0.6, size=present.size)
        x = np.log1p(counts) * idf[present]
        x /= np.linalg.norm(x)
        margin = float(x @ w[present])
        p = 1.0 / (1.0 + np.exp(-4.0 * margin))
        label = 1 if rng.random() < p else -1
        feats = " ".join(f"{j + 1}:{v:.6g}" for j, v in zip(present, x))
        lines.append(f"{label:+d} {feats}")
    with open(a.out, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
