"""Benchmark: the cost of one dynamic decision against one memcpy of the same vector (issue 18,
acceptance 3), at 1M and 16M float elements, for QSGD (s = 16, bucket = 512, packed) and top-k
(Elias indices) under the "bits" cost model, on the synthetic gradient z·2^(4u) (z normal, u
uniform, fixed seed).

  - Python: thinwire.Tuner("dynamic", codec=...).decide(t, v) against numpy.copyto(out, v) (a
    memcpy), interleaved over --rounds rounds; the median CPU time of each (time.thread_time:
    the decision runs on the calling thread) and their ratio.
  - C++ (with --cpp-bench PATH, bench/tune_bench.cpp built in Release): BM_Decide against
    BM_Memcpy from one run of the Google Benchmark binary, --rounds repetitions of each in random
    interleaved order (so that load from other processes falls on both); median CPU times.

    PYTHONPATH=build/python/python /usr/bin/python3 python/bench/decision_cost.py \
        [--cpp-bench build/fast/bench/thinwire_tune_bench] [--rounds 15]

CPU time rather than wall time: on a shared machine the wall time also counts the time other
processes hold the core; both are printed.
"""
import argparse
import json
import statistics
import subprocess
import time

import numpy as np

SIZES = (1 << 20, 1 << 24)
CODECS = (("qsgd", "qsgd:s=16,bucket=512"), ("topk", "topk:k=1000"))


def gradient(d):
    rng = np.random.default_rng(18)
    return (rng.standard_normal(d) * np.exp2(4.0 * rng.random(d))).astype(np.float32)


def timed(f):
    c, w = time.thread_time(), time.perf_counter()
    f()
    return time.thread_time() - c, time.perf_counter() - w


def python_rows(rounds):
    import thinwire

    rows = []
    for d in SIZES:
        v = gradient(d)
        out = np.empty_like(v)
        tuners = {name: thinwire.Tuner("dynamic", codec=spec, cost="bits") for name, spec in CODECS}
        samples = {key: [] for key in ["memcpy"] + list(tuners)}
        chosen = {}
        for r in range(rounds + 1):
            for key in samples:
                if key == "memcpy":
                    t = timed(lambda: np.copyto(out, v))
                else:
                    t = timed(lambda: tuners[key].decide(r, v))
                    chosen[key] = tuners[key].last.codec_spec
                if r > 0:  # round 0 warms up
                    samples[key].append(t)
        med = {k: (statistics.median(x[0] for x in s), statistics.median(x[1] for x in s))
               for k, s in samples.items()}
        for name, _ in CODECS:
            rows.append(("Python", name, d, med[name], med["memcpy"], chosen[name]))
    return rows


def cpp_rows(binary, repetitions):
    out = subprocess.run(
        [binary, "--benchmark_filter=BM_Memcpy|BM_Decide/[03]/", "--benchmark_format=json",
         f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true",
         "--benchmark_enable_random_interleaving=true", "--benchmark_min_time=0.1"],
        check=True, capture_output=True, text=True).stdout
    med = {}
    labels = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        med[b["run_name"]] = (b["cpu_time"] * 1e-6, b["real_time"] * 1e-6)  # us -> s
        labels[b["run_name"]] = b.get("label", "")
    rows = []
    for d in SIZES:
        for name, family in (("qsgd", 3), ("topk", 0)):
            run = f"BM_Decide/{family}/{d}"
            rows.append(("C++", name, d, med[run], med[f"BM_Memcpy/{d}"], labels[run]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpp-bench", help="path of thinwire_tune_bench (Release)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rows = []
    if args.cpp_bench:
        rows += cpp_rows(args.cpp_bench, args.rounds)
    rows += python_rows(args.rounds)
    print("| path | family | d | decision CPU ms | memcpy CPU ms | ratio (CPU) | ratio (wall) "
          "| choice |")
    print("|---|---|---|---|---|---|---|---|")
    for path, name, d, dec, mem, choice in rows:
        print(f"| {path} | {name} | {d >> 20}M | {dec[0] * 1e3:.3f} | {mem[0] * 1e3:.3f} "
              f"| {dec[0] / mem[0]:.2f} | {dec[1] / mem[1]:.2f} | `{choice}` |")


if __name__ == "__main__":
    main()
