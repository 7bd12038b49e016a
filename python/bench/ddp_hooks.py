"""Benchmark: thinwire's DDP hook against PyTorch's fp16 and PowerSGD hooks on the same model.

2 processes, Gloo on CPU, the 784-256-128-10 MLP of `thinwire train` (235 146 parameters, one DDP
bucket) on a fixed random batch of 64 per rank, plain SGD. Reports per hook:
  - bytes this rank hands to collectives per step (the all_reduce input, or its all_gather
    contribution; counted by wrapping torch.distributed's functions, the same way for every hook;
    thinwire's rows include its 8-byte size exchange and the padding of each message to the
    largest one, i.e. what is sent);
  - step time: wall clock and process CPU time (all threads) per training step after warm-up.
    The hooks run interleaved in `--rounds` rounds and the median round is reported, so that load
    from other processes on a shared machine spreads over all rows; bytes are exact, times
    indicative.
For the tuned rows, the codecs the dynamic rule chose (rank 0, every step).

    PYTHONPATH=build/python/python /usr/bin/python3 python/bench/ddp_hooks.py [--results]

--results writes the table into docs/results.md (block python-ddp) through
scripts/results-block; without it the table is printed.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
from torch.nn.parallel import DistributedDataParallel as DDP

import thinwire.torch as twt

QSGD4 = "qsgd:s=7,bucket=512,norm=max,coding=packed"
QSGD8 = "qsgd:s=127,bucket=512,norm=max,coding=packed"
# The dynamic rows' cost model: the threads backend's default link (α = 50 µs, β = 1 Gbit/s).
# With cost=bits the rule sends top-k messages of a few hundred bytes here (k ≈ 30 of 235 146):
# without a per-message cost, ρ/bits keeps rising as k falls.
LINK = "linear:latency=50us,bandwidth=1Gbit"
HOOKS = ["torch fp32 all-reduce", "torch fp16", "torch PowerSGD rank 2", "thinwire identity",
         "thinwire qsgd 4-bit +ef", "thinwire qsgd 8-bit", "thinwire topk 1% +ef",
         "thinwire dynamic qsgd +ef", "thinwire dynamic topk +ef"]
WARMUP = 3
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class _Counter:
    """Wraps dist.all_reduce / dist.all_gather to count the bytes this rank contributes."""

    def __init__(self):
        self.bytes = 0
        self._reduce, self._gather = dist.all_reduce, dist.all_gather

        def all_reduce(tensor, *args, **kwargs):
            self.bytes += tensor.numel() * tensor.element_size()
            return self._reduce(tensor, *args, **kwargs)

        def all_gather(outputs, tensor, *args, **kwargs):
            self.bytes += tensor.numel() * tensor.element_size()
            return self._gather(outputs, tensor, *args, **kwargs)

        dist.all_reduce, dist.all_gather = all_reduce, all_gather


def _register(ddp, name, d):
    """Registers the named hook; returns the thinwire hook (for its decisions) or None."""
    if name == "torch fp32 all-reduce":
        # PyTorch's allreduce_hook is what DDP does without a hook, but in Python, so that its
        # bytes are counted like the others'.
        ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    elif name == "torch fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif name.startswith("torch PowerSGD"):
        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=2,
                                       start_powerSGD_iter=2, use_error_feedback=True)
        ddp.register_comm_hook(state, powersgd.powerSGD_hook)
    elif name == "thinwire identity":
        return twt.ddp_hook("identity").register(ddp)
    elif name == "thinwire qsgd 4-bit +ef":
        return twt.ddp_hook(QSGD4, error_feedback=True).register(ddp)
    elif name == "thinwire qsgd 8-bit":
        return twt.ddp_hook(QSGD8, error_feedback=False).register(ddp)
    elif name == "thinwire topk 1% +ef":
        return twt.ddp_hook(f"topk:k={max(1, d // 100)}", error_feedback=True).register(ddp)
    elif name == "thinwire dynamic qsgd +ef":
        return twt.ddp_hook(QSGD4, error_feedback=True, tuner="dynamic",
                            cost=LINK).register(ddp)
    elif name == "thinwire dynamic topk +ef":
        return twt.ddp_hook("topk:k=1000", error_feedback=True, tuner="dynamic",
                            cost=LINK).register(ddp)
    else:
        raise ValueError(f"unknown hook '{name}'")
    return None


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def _run_hook(name, counter, x, y, steps):
    """One timed run: (bytes per step, wall s per step, cpu s per step, chosen codecs)."""
    model = _model()
    d = sum(p.numel() for p in model.parameters())
    ddp = DDP(model)
    hook = _register(ddp, name, d)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    chosen = []
    for step in range(WARMUP + steps):
        if step == WARMUP:
            dist.barrier()
            counter.bytes = 0
            wall, cpu = time.perf_counter(), time.process_time()
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
        if hook is not None and hook.tuner is not None and step >= WARMUP:
            chosen.extend(d["codec"] for d in hook.last_decisions.values())
    cpu = time.process_time() - cpu
    dist.barrier()
    wall = time.perf_counter() - wall
    return counter.bytes / steps, wall / steps, cpu / steps, chosen


def _worker(rank, world, init_file, out_file, steps, rounds, threads):
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    counter = _Counter()
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(64, 784, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    results = {name: [] for name in HOOKS}
    for _ in range(rounds):
        for name in HOOKS:
            results[name].append(_run_hook(name, counter, x, y, steps))
    if rank == 0:
        torch.save(results, out_file)
    # No process-group destruction: in PyTorch 1.13 it can deadlock after Python hooks (see
    # python/tests/ddp_workers.py _finish); the results are saved.
    dist.barrier()
    os._exit(0)


def _codec_summary(chosen):
    """'qsgd s ∈ {2, 4}, bucket ∈ {...}' / 'topk k 1 200–3 400 (median 2 000)' from specs."""
    if not chosen:
        return ""
    params = [dict(kv.split("=") for kv in spec.split(":", 1)[1].split(",")) for spec in chosen]
    name = chosen[0].split(":", 1)[0]
    if name == "topk":
        ks = sorted(int(p["k"]) for p in params)
        return (f"k {ks[0]:,}–{ks[-1]:,} (median {int(statistics.median(ks)):,}, "
                f"{100 * statistics.median(ks) / 235146:.2f} %)")
    parts = []
    for key in ("s", "bucket"):
        values = sorted({int(p[key]) for p in params})
        parts.append(f"{key} ∈ {{{', '.join(str(v) for v in values)}}}")
    return ", ".join(parts)


def _table(results, steps, rounds, threads):
    rows = []
    for name in HOOKS:
        runs = results[name]
        byte_counts = {round(r[0]) for r in runs}
        walls = [r[1] for r in runs]
        cpus = [r[2] for r in runs]
        chosen = [c for r in runs for c in r[3]]
        rows.append((name, max(byte_counts), 1e3 * statistics.median(walls),
                     1e3 * statistics.median(cpus), _codec_summary(chosen)))
    base = rows[0][1]
    cpu_name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), platform.processor())
    load = os.getloadavg()[0]
    lines = [
        "Command (from the repository root, after building the module as in python/README.md):",
        "",
        "    PYTHONPATH=build/python/python /usr/bin/python3 python/bench/ddp_hooks.py "
        f"--steps {steps} --rounds {rounds} --results",
        "",
        f"Model: the 784-256-128-10 MLP of `thinwire train` (235,146 parameters, one DDP bucket), "
        f"batch 64 per rank, SGD. World size 2 (two processes, Gloo on CPU, {threads} thread(s) "
        f"each), {steps} timed steps after {WARMUP} warm-up steps per run, {rounds} rounds with "
        f"the hooks interleaved; times are the median round. Hardware: {cpu_name}, "
        f"{os.cpu_count()} cores shared with other jobs (load average {load:.1f} at the end), "
        f"PyTorch {torch.__version__}, Python {platform.python_version()}.",
        "",
        "| hook | bytes/step/rank | vs fp32 | step wall (ms) | step CPU (ms) | levels chosen |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, b, wall, cpu, summary in rows:
        lines.append(f"| {name} | {b:,} | {base / max(b, 1):.1f}x | {wall:.2f} | {cpu:.2f} | "
                     f"{summary} |")
    lines += [
        "",
        "Bytes are what this rank hands to all_reduce (PyTorch's hooks) or all_gather (thinwire: "
        "an 8-byte size, then its message padded to the longer of the two) per step; a ring "
        "all-reduce moves about twice its input per rank over the wire, an all-gather of 2 ranks "
        "once. `torch PowerSGD rank 2` runs uncompressed for its first 2 iterations (during "
        "warm-up), then sends P and Q of the weight matrices and the biases uncompressed. "
        "`dynamic` rows choose per step θ = argmax ρ(θ)/C(bits(θ)) on e + g with "
        f"`cost={LINK}` (C = α + bits/β): qsgd over s and the bucket (max-norm packed QSGD "
        "configured), topk over k; their CPU time includes the rule (the QSGD grid is scored "
        "exactly, several O(d) passes). "
        "Step times include thinwire's host-side encode and decode in the hook (the hook "
        "completes its future synchronously) and are from a shared 2-core machine: indicative "
        "only.",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", action="store_true",
                        help="write the table into docs/results.md (block python-ddp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results.pt")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), out, args.steps, args.rounds,
                                args.threads), nprocs=2, join=True)
        table = _table(torch.load(out), args.steps, args.rounds, args.threads)
        print(table)
        if args.results:
            block = os.path.join(tmp, "block.md")
            with open(block, "w", encoding="utf-8") as f:
                f.write(table)
            subprocess.run([sys.executable, os.path.join(REPO, "scripts", "results-block"),
                            "python-ddp", block], check=True)


if __name__ == "__main__":
    main()
