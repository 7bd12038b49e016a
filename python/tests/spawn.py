"""Helpers of the multi-process tests: start `world` torch.multiprocessing workers that rendezvous
through a file in tmp_path and save their results as rank{r}.pt, and compare tensor lists."""
import time

import pytest
import torch
import torch.multiprocessing as mp


def spawn(tmp_path, world, fn, *args, timeout_s=240):
    """Runs fn(rank, world, init_file, tmp_path, *args) on `world` processes; returns the tensors
    each saved. A hung collective fails the test after timeout_s instead of hanging CI."""
    init_file = tmp_path / "init"
    context = mp.start_processes(fn, args=(world, str(init_file), str(tmp_path)) + args,
                                 nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1):  # raises if a worker failed
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{fn.__name__} workers did not finish in {timeout_s} s")
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


def equal(a, b):
    # A bool, not tensors: pytest's assertion rewriting would print whole tensors on failure.
    return bool(len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b)))


def max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))
