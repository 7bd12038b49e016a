"""Benchmark: thinwire's DDP hook against PyTorch's fp16 and PowerSGD hooks on the same model.

2 processes, Gloo on CPU, the 784-256-128-10 MLP of `thinwire train` on random inputs. Reports
per hook: bytes this rank hands to collectives per step (all_reduce input, or its all_gather
contribution; counted by wrapping torch.distributed's functions, the same way for every hook)
and the mean wall time of a training step after warm-up. thinwire's rows include its 8-byte size
exchange and the padding of each message to the largest one (as sent). Timings on a shared
machine are indicative; bytes are exact.

    PYTHONPATH=build/python/python /usr/bin/python3 python/bench/ddp_hooks.py [--steps 30]
"""
import argparse
import os
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
HOOKS = ["torch fp32 all-reduce", "torch fp16", "torch PowerSGD rank 2", "thinwire identity",
         "thinwire qsgd 4-bit +ef", "thinwire qsgd 8-bit +ef", "thinwire topk 1% +ef"]


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
        twt.ddp_hook("identity").register(ddp)
    elif "4-bit" in name:
        twt.ddp_hook(QSGD4, error_feedback=True).register(ddp)
    elif "8-bit" in name:
        twt.ddp_hook(QSGD8, error_feedback=True).register(ddp)
    elif "topk" in name:
        twt.ddp_hook(f"topk:k={max(1, d // 100)}", error_feedback=True).register(ddp)


def _worker(rank, world, init_file, out_file, steps, threads):
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    counter = _Counter()
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(64, 784, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    rows = []
    for name in HOOKS:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        d = sum(p.numel() for p in model.parameters())
        ddp = DDP(model)
        _register(ddp, name, d)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
        warmup = 3
        for step in range(warmup + steps):
            if step == warmup:
                dist.barrier()
                counter.bytes = 0
                start = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
        dist.barrier()
        elapsed = time.perf_counter() - start
        rows.append((name, d, counter.bytes / steps, 1e3 * elapsed / steps))
    if rank == 0:
        with open(out_file, "w") as f:
            f.write("| hook | bytes/step/rank | vs fp32 | step time (ms) |\n|---|---:|---:|---:|\n")
            base = rows[0][2]
            for name, d, b, ms in rows:
                f.write(f"| {name} | {b:,.0f} | {base / max(b, 1):.1f}x | {ms:.2f} |\n")
            f.write(f"\n{d:,} parameters, 2 processes, Gloo on CPU, {threads} thread(s) each, "
                    f"{steps} timed steps after 3 warm-up steps.\n")
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "table.md")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), out, args.steps, args.threads),
                 nprocs=2, join=True)
        with open(out) as f:
            print(f.read())


if __name__ == "__main__":
    main()
