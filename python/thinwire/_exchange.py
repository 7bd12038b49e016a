"""Collectives on compressed messages over ``torch.distributed`` (used by thinwire.torch).

All of them run on every rank of the group in the same order (they are collectives), move bytes
as uint8 tensors on the device the backend needs (CUDA for NCCL, CPU otherwise), and keep the
tensors of the latest exchange referenced (see _retain).
"""
from __future__ import annotations

import time
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


def all_finite(x: torch.Tensor) -> bool:
    # A finite sum proves every element finite (NaN and ±inf propagate); only when the sum is not
    # finite (non-finite input, or an overflow of the sum itself) are the elements checked.
    if bool(torch.isfinite(x.sum())):
        return True
    return bool(torch.isfinite(x).all())


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


def allgather_flagged(message: Optional[bytes], group=None,
                      timing: Optional[list] = None) -> "tuple[Optional[List[bytes]], List[int]]":
    """allgather_messages where a rank may have no message (None): then no rank gathers any, and
    every rank gets (None, the ranks without a message). Otherwise (messages, []). With a
    `timing` list, appends (bytes each rank sent padded, seconds) of the messages' all-gather
    (not of the sizes': the link sample of `cost="auto"`)."""
    lengths = allgather_sizes(NO_MESSAGE if message is None else len(message), group)
    missing = [r for r, n in enumerate(lengths) if n == NO_MESSAGE]
    if missing:
        return None, missing
    start = time.perf_counter()
    messages = allgather_padded(message, lengths, group)
    if timing is not None:
        timing.append((max(lengths), time.perf_counter() - start))
    return messages, []


def allreduce_mean(x: torch.Tensor, group=None) -> torch.Tensor:
    """The mean over ranks of x (a CPU tensor) as DDP and PyTorch's allreduce_hook compute it:
    each rank divides by the world size, then a sum all-reduce; returns a new CPU tensor."""
    world = dist.get_world_size(group)
    exchanged = x.to(exchange_device(group), copy=True).div_(world)
    dist.all_reduce(exchanged, group=group)
    retain(group, exchanged)
    return exchanged.cpu()


# ---- ring all-reduce ----------------------------------------------------------------------
# collective::allreduce_ring (include/thinwire/collective/allreduce.hpp) over torch.distributed:
# the same chunks, seeds and arithmetic, so the result equals the C++ collective's bit for bit.


def global_rank(group, rank: int) -> int:
    """torch.distributed's point-to-point calls take global ranks, also within a group."""
    if group is None or group is dist.GroupMember.WORLD:
        return rank
    return dist.distributed_c10d._get_global_rank(group, rank)


class _Ring:
    """This rank's links to its ring neighbours: sends go to rank + 1, receives come from
    rank - 1. Each step exchanges sizes first (NO_MESSAGE for "no message"), then the bytes."""

    def __init__(self, group):
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.next = global_rank(group, (self.rank + 1) % self.world)
        self.prev = global_rank(group, (self.rank - 1) % self.world)
        self.device = exchange_device(group)
        self.bytes_sent = 0

    def step(self, message: Optional[bytes]) -> Optional[bytes]:
        """Sends `message` (None: NO_MESSAGE) to the next rank and returns the previous rank's
        (None when it sent NO_MESSAGE)."""
        size = NO_MESSAGE if message is None else len(message)
        out_size = torch.tensor([size], dtype=torch.int64, device=self.device)
        in_size = torch.empty(1, dtype=torch.int64, device=self.device)
        requests = [dist.isend(out_size, self.next, group=self.group),
                    dist.irecv(in_size, self.prev, group=self.group)]
        for request in requests:
            request.wait()
        incoming_size = int(in_size.item())
        requests, keep = [], [out_size, in_size]
        if size > 0:
            payload = torch.frombuffer(bytearray(message), dtype=torch.uint8).to(self.device)
            requests.append(dist.isend(payload, self.next, group=self.group))
            keep.append(payload)
            self.bytes_sent += size
        received = None
        if incoming_size > 0:
            received = torch.empty(incoming_size, dtype=torch.uint8, device=self.device)
            requests.append(dist.irecv(received, self.prev, group=self.group))
            keep.append(received)
        for request in requests:
            request.wait()
        retain(self.group, *keep)
        if incoming_size == NO_MESSAGE:
            return None
        return received.cpu().numpy().tobytes() if received is not None else b""


def ring_allreduce(x: torch.Tensor, codec, *, seed: int, iteration: int,
                   residual: Optional[torch.Tensor] = None, finite: Optional[bool] = None,
                   group=None) -> "tuple[Optional[torch.Tensor], Optional[torch.Tensor], int]":
    """The mean over ranks of x (CPU float32, same length everywhere) by a compressed ring:
    reduce-scatter with re-quantization at every hop, then the owner of each chunk encodes it once
    more (through its error feedback `residual`, the length of its owned chunk) and that message
    travels around the ring unchanged, so every rank decodes the same bytes.

    Returns (mean, new residual or None, bytes sent). A rank whose x is not finite (`finite`:
    the caller's check, None to check here) sends
    NO_MESSAGE instead of its first message and every rank forwards it during the reduce-scatter,
    so after it every rank knows; then all return (None, None, bytes) and the caller decides
    (every rank takes the same branch).
    """
    from . import _thinwire as tw

    ring = _Ring(group)
    m, r, n = ring.world, ring.rank, x.numel()

    def chunk(index: int) -> torch.Tensor:
        begin, size = tw.balanced_chunk(n, m, index % m)
        return x[begin: begin + size]

    flagged = not (all_finite(x) if finite is None else finite)
    outgoing = None
    if not flagged:
        outgoing = codec.encode(chunk(r), seed=tw.ring_hop_seed(seed, 0), rank=r,
                                iteration=iteration)
    owned = tw.ring_owned_chunk(r, m)
    partial = chunk(owned).clone()
    for s in range(m - 1):
        incoming = ring.step(None if flagged else outgoing)
        if incoming is None:
            flagged = True
        if flagged:
            continue
        partial = chunk(r - s - 1).clone()
        tw.decode(incoming, out=partial, accumulate=True)
        if s + 2 < m:
            outgoing = codec.encode(partial, seed=tw.ring_hop_seed(seed, s + 1), rank=r,
                                    iteration=iteration)
    if flagged:
        return None, None, ring.bytes_sent
    partial.div_(m)
    to_send = partial if residual is None else residual + partial
    message = codec.encode(to_send, seed=tw.ring_final_seed(seed), rank=r, iteration=iteration)
    new_residual = None
    if residual is not None:
        new_residual = to_send - torch.from_numpy(tw.decode(message))
    out = torch.empty(n, dtype=torch.float32)
    begin, size = tw.balanced_chunk(n, m, owned)
    tw.decode(message, out=out[begin: begin + size])
    for s in range(m - 1):
        message = ring.step(message)
        begin, size = tw.balanced_chunk(n, m, (r - s) % m)
        tw.decode(message, out=out[begin: begin + size])
    return out, new_residual, ring.bytes_sent
