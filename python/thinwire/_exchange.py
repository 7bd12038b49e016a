"""Collectives on compressed messages over ``torch.distributed`` (used by thinwire.torch).

All of them run on every rank of the group in the same order (they are collectives), move bytes
as uint8 tensors on the device the backend needs (CUDA for NCCL, CPU otherwise), and keep the
tensors of the latest exchange referenced (see _retain).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.distributed as dist

# A size of -1 in the size all-gather: "this rank has no message for this exchange" (its input
# held non-finite values). Every rank sees the flag in the same collective, so all of them take
# the same branch afterwards and none waits in a collective the others skip.
NO_MESSAGE = -1


def exchange_device(group=None) -> torch.device:
    """Where collective inputs must live: NCCL takes CUDA tensors only (on the current device),
    Gloo and MPI take CPU tensors."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# The tensors of the latest exchange per process group, kept referenced from Python until the
# next one. PyTorch 1.13's Gloo worker threads drop their references to a finished collective's
# tensors a moment after wait() returns; when that is the last reference to a tensor made in
# Python, its destruction needs the GIL, and if the main thread is then destroying the process
# group (it joins those threads while holding the GIL) the process deadlocks at shutdown. Holding
# the tensors here makes the worker's release never the last one.
_retained: Dict[int, tuple] = {}


def retain(group, *tensors) -> None:
    _retained[id(group)] = tensors


def allgather_sizes(size: int, group=None) -> List[int]:
    """All-gathers one int64 per rank (a message size, or NO_MESSAGE); rank order."""
    world = dist.get_world_size(group)
    device = exchange_device(group)
    mine = torch.tensor([size], dtype=torch.int64, device=device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, mine, group=group)
    retain(group, mine, sizes)
    return [int(s.item()) for s in sizes]


def allgather_padded(message: bytes, lengths: Sequence[int], group=None) -> List[bytes]:
    """All-gathers the messages whose sizes every rank already knows (`lengths`, rank order):
    each is padded to the largest, gathered and trimmed."""
    world = dist.get_world_size(group)
    device = exchange_device(group)
    longest = max(lengths)
    padded = torch.zeros(longest, dtype=torch.uint8)
    if message:
        padded[: len(message)] = torch.frombuffer(bytearray(message), dtype=torch.uint8)
    padded = padded.to(device)
    gathered = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in range(world)]
    dist.all_gather(gathered, padded, group=group)
    retain(group, padded, gathered)
    return [g[:n].cpu().numpy().tobytes() for g, n in zip(gathered, lengths)]


def allgather_messages(message: bytes, group=None) -> List[bytes]:
    """All-gathers one variable-length byte string per rank; returns them in rank order.

    Sizes first (one int64 per rank), then the messages padded to the largest size; on the
    device the backend needs (exchange_device), so the same code serves Gloo and NCCL.
    """
    return allgather_padded(message, allgather_sizes(len(message), group), group)


def allgather_flagged(message: Optional[bytes],
                      group=None) -> "tuple[Optional[List[bytes]], List[int]]":
    """allgather_messages where a rank may have no message (None): then no rank gathers any, and
    every rank gets (None, the ranks without a message). Otherwise (messages, [])."""
    lengths = allgather_sizes(NO_MESSAGE if message is None else len(message), group)
    missing = [r for r, n in enumerate(lengths) if n == NO_MESSAGE]
    if missing:
        return None, missing
    return allgather_padded(message, lengths, group), []


def allreduce_mean(x: torch.Tensor, group=None) -> torch.Tensor:
    """The mean over ranks of x (a CPU tensor) as DDP and PyTorch's allreduce_hook compute it:
    each rank divides by the world size, then a sum all-reduce; returns a new CPU tensor."""
    world = dist.get_world_size(group)
    exchanged = x.to(exchange_device(group), copy=True).div_(world)
    dist.all_reduce(exchanged, group=group)
    retain(group, exchanged)
    return exchanged.cpu()
