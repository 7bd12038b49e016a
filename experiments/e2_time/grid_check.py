#!/usr/bin/env python3
"""E2-time side check: fixed QSGD levels of the dynamic rule's grid (s = 2^k, bucket 256) beside
the fixed grid's s = 2^(k+1) - 1 (bucket 512) that cost the same packed bits, on one netlab lab,
same problem, target and stopping as e2t.py. Needs root; prints a Markdown table.

  experiments/e2_time/grid_check.py THINWIRE_BINARY [--rate 10mbit] [--reps 3]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2t  # noqa: E402

LEVELS = [("s=4, bucket 256", 4, 256), ("s=7, bucket 512", 7, 512), ("s=8, bucket 256", 8, 256),
          ("s=15, bucket 512", 15, 512)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("thinwire")
    ap.add_argument("--rate", default="10mbit")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="/tmp/e2t_grid_check")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fstar, f0 = e2t.reference(args.thinwire, args.out)
    target = fstar + e2t.EPS * (f0 - fstar)
    lab = e2t.Lab(args.rate, f"g{os.getpid() % 1000}")
    times = {name: [] for name, _, _ in LEVELS}
    iters = {name: [] for name, _, _ in LEVELS}
    try:
        for rep in range(args.reps):
            for name, s, bucket in LEVELS:
                codec = f"qsgd:s={s},bucket={bucket},norm=max,coding=packed"
                metrics = os.path.join(args.out, f"s{s}-b{bucket}-r{rep + 1}.jsonl")
                rec, _ = e2t.train_mpi(args.thinwire, lab, ["--codec", codec], metrics, target,
                                       e2t.CAP, log=metrics.replace(".jsonl", ".log"))
                t, it = e2t.time_to(rec, target)
                times[name].append(t)
                iters[name].append(it)
                print(f"  rep {rep + 1} {name}: {t} s, {it} it", file=sys.stderr)
    finally:
        lab.down()
    print(f"| {args.rate} | time to target (median of {args.reps}) | iterations | ms per iteration |")
    print("|---|---|---|---|")
    for name, _, _ in LEVELS:
        ok = [(t, i) for t, i in zip(times[name], iters[name]) if t is not None]
        if not ok:
            print(f"| {name} | not reached | — | — |")
            continue
        t = statistics.median(x for x, _ in ok)
        i = statistics.median(y for _, y in ok)
        print(f"| {name} | {t:.2f} s | {i:.0f} | {1000 * statistics.median(x / y for x, y in ok):.1f} |")


if __name__ == "__main__":
    main()
