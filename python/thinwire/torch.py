"""thinwire inside PyTorch training loops: a DDP communication hook and a quantized local-SGD
model averager.

Both exchange compressed messages with an all-gather of variable-length byte strings through
``torch.distributed`` (any backend that supports ``all_gather`` on the tensors' device; Gloo on
CPU): every rank all-gathers the message sizes, pads its message to the largest, all-gathers the
padded uint8 tensors and trims each to its size. Every rank then decodes all messages in rank
order into the same accumulator, so all ranks compute bit-identical averages.

Randomness: rank r's message for a bucket at its t-th use is encoded with the counter-based key
(seed, r, t) (thinwire's EncodeContext), so a run is reproducible and a resumed run continues
exactly when the hook state (residuals and counters) is restored.

    hook = thinwire.torch.ddp_hook(codec="qsgd:s=7,bucket=512,norm=max,coding=packed")
    model.register_comm_hook(state=None, hook=hook)
    ...
    checkpoint["comm_hook"] = hook.state_dict()      # and hook.load_state_dict(...) on resume
"""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import torch
import torch.distributed as dist

from . import _thinwire as _tw

__all__ = ["DdpHook", "ddp_hook", "QuantizedModelAverager", "allgather_messages"]

CodecLike = Union[str, "_tw.Codec"]


def _make_codec(codec: CodecLike, error_feedback: Optional[bool]) -> "tuple[_tw.Codec, bool]":
    """A Codec and whether to use error feedback; "+ef" in a spec string turns it on."""
    if isinstance(codec, _tw.Codec):
        return codec, bool(error_feedback)
    parsed, ef = _tw.parse_codec(codec)
    return parsed, ef if error_feedback is None else bool(error_feedback)


def _as_cpu_float32(t: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU float32 view of t when it is one already, else a converted copy."""
    return t.detach().to(device="cpu", dtype=torch.float32).contiguous().view(-1)


def allgather_messages(message: bytes, group=None) -> List[bytes]:
    """All-gathers one variable-length byte string per rank; returns them in rank order.

    Sizes first (one int64 per rank), then the messages padded to the largest size.
    """
    world = dist.get_world_size(group)
    size = torch.tensor([len(message)], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    longest = max(int(s.item()) for s in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8)
    if message:
        padded[: len(message)] = torch.frombuffer(bytearray(message), dtype=torch.uint8)
    gathered = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)]
    dist.all_gather(gathered, padded, group=group)
    return [g[: int(s.item())].numpy().tobytes() for g, s in zip(gathered, sizes)]


class _Compressor:
    """Encodes flat float32 vectors keyed by a slot (bucket index), with optional per-slot error
    feedback; the state shared by the hook and the averager."""

    def __init__(self, codec: CodecLike, error_feedback: Optional[bool], seed: int):
        self.codec, self.error_feedback = _make_codec(codec, error_feedback)
        self.seed = int(seed)
        self.residuals: Dict[object, _tw.ErrorFeedback] = {}
        self.iterations: Dict[object, int] = {}

    def encode(self, slot, flat: torch.Tensor, rank: int) -> bytes:
        t = self.iterations.get(slot, 0)
        self.iterations[slot] = t + 1
        if not self.error_feedback:
            return self.codec.encode(flat, seed=self.seed, rank=rank, iteration=t)
        ef = self.residuals.get(slot)
        if ef is None or ef.dimension != flat.numel():
            # First use, or DDP rebuilt its buckets after the first iteration (the layout then
            # changes once): start this slot with a zero residual.
            ef = _tw.ErrorFeedback(self.codec, flat.numel())
            self.residuals[slot] = ef
        return ef.encode(flat, seed=self.seed, rank=rank, iteration=t)

    def state_dict(self) -> dict:
        return {
            "codec": self.codec.spec,
            "error_feedback": self.error_feedback,
            "seed": self.seed,
            "iterations": dict(self.iterations),
            "residuals": {k: (ef.dimension, ef.save()) for k, ef in self.residuals.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["codec"] != self.codec.spec or bool(state["error_feedback"]) != self.error_feedback:
            raise _tw.InvalidArgument(
                f"thinwire hook state was saved for codec '{state['codec']}' "
                f"(error_feedback={state['error_feedback']}), this hook uses "
                f"'{self.codec.spec}' (error_feedback={self.error_feedback})"
            )
        residuals = {}
        for k, (dimension, data) in state["residuals"].items():
            ef = _tw.ErrorFeedback(self.codec, int(dimension))
            ef.load(data)
            residuals[k] = ef
        self.seed = int(state["seed"])
        self.iterations = {k: int(v) for k, v in state["iterations"].items()}
        self.residuals = residuals


def _average_messages(messages: List[bytes], out: torch.Tensor) -> None:
    """out <- (1/n) Σ_r decode(messages[r]), decoded in rank order (out: CPU float32)."""
    out.zero_()
    for msg in messages:
        _tw.decode(msg, out=out, accumulate=True)
    out.div_(len(messages))


class DdpHook:
    """A DDP communication hook (see ddp_hook). Holds its own state; the ``state`` argument DDP
    passes is ignored, so register it with ``model.register_comm_hook(None, hook)``."""

    def __init__(self, codec: CodecLike = "identity", error_feedback: Optional[bool] = None,
                 seed: int = 0, process_group=None):
        self._compressor = _Compressor(codec, error_feedback, seed)
        self.process_group = process_group
        self.bytes_sent = 0  # this rank's message bytes, for the benchmark and logs
        self._param_index: Optional[Dict[int, int]] = None
        # DDP reads hook.__name__ and hook.__qualname__ (a function's attributes) for its logs.
        self.__name__ = self.__qualname__ = "thinwire_ddp_hook"

    @property
    def codec(self) -> "_tw.Codec":
        return self._compressor.codec

    @property
    def error_feedback(self) -> bool:
        return self._compressor.error_feedback

    def __call__(self, state, bucket):
        buffer = bucket.buffer()
        slot, order, flat = self._canonical(bucket, buffer)
        rank = dist.get_rank(self.process_group)
        message = self._compressor.encode(slot, flat, rank)
        self.bytes_sent += len(message)
        messages = allgather_messages(message, self.process_group)
        average = torch.empty(flat.numel(), dtype=torch.float32)
        _average_messages(messages, average)
        if order is None:
            buffer.copy_(average.view_as(buffer))
        else:
            out = buffer.view(-1)
            position = 0
            for offset, n in order:
                out[offset: offset + n].copy_(average[position: position + n])
                position += n
        fut: torch.futures.Future = torch.futures.Future()
        fut.set_result(buffer)
        return fut

    def _canonical(self, bucket, buffer):
        """The bucket's gradients as one flat vector in model-parameter order, its slot key and
        the (offset, numel) of each piece in the bucket buffer.

        DDP rebuilds its buckets after the first iteration in gradient-arrival order, so the
        buffer layout of a fresh DDP (e.g. after resuming) differs from the one the saved
        residuals and random streams were used with. In model order with the slot named after
        the parameters it holds, a resumed run continues exactly whenever the bucket membership
        is the same before and after the rebuild (always for a single bucket). Without a model
        (see register) the slot is the bucket index and the layout DDP's.
        """
        if self._param_index is None:
            return bucket.index(), None, _as_cpu_float32(buffer)
        params = bucket.parameters()
        offsets, offset = [], 0
        for p in params:
            offsets.append(offset)
            offset += p.numel()
        if offset != buffer.numel() or any(id(p) not in self._param_index for p in params):
            return bucket.index(), None, _as_cpu_float32(buffer)
        ranked = sorted(range(len(params)), key=lambda i: self._param_index[id(params[i])])
        slot = "params:" + ",".join(str(self._param_index[id(params[i])]) for i in ranked)
        order = [(offsets[i], params[i].numel()) for i in ranked]
        flat_buffer = buffer.detach().view(-1)
        flat = torch.cat([flat_buffer[o: o + n] for o, n in order]).to(torch.float32)
        return slot, order, flat

    def register(self, model) -> "DdpHook":
        """Registers this hook on a DistributedDataParallel model and learns its parameter order
        (recommended: makes residuals independent of DDP's bucket layout, see _canonical)."""
        self.set_model(model)
        model.register_comm_hook(None, self)
        return self

    def set_model(self, model) -> None:
        self._param_index = {id(p): i for i, p in enumerate(model.parameters())}

    def state_dict(self) -> dict:
        """Residuals (per bucket index) and per-bucket counters; save with the model."""
        return self._compressor.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._compressor.load_state_dict(state)


def ddp_hook(codec: CodecLike = "identity", error_feedback: Optional[bool] = True,
             seed: int = 0, process_group=None, model=None) -> DdpHook:
    """A hook for ``DistributedDataParallel.register_comm_hook`` that compresses each gradient
    bucket with `codec` (a spec string as in the CLI, or a Codec), exchanges the messages and
    averages the decoded buckets.

    error_feedback: keep a residual per bucket (Stich et al. 2018; Karimireddy et al. 2019);
    None means "as the spec says" ("+ef"). Lossless codecs make it a no-op, so
    ``ddp_hook("identity")`` gives the same parameters as DDP without a hook.
    model: the DDP model (or call hook.register(model)); lets residuals be kept in model
    parameter order, so that a resumed run continues exactly (see DdpHook._canonical).
    """
    hook = DdpHook(codec, error_feedback, seed, process_group)
    if model is not None:
        hook.set_model(model)
    return hook


try:  # torch >= 1.10
    from torch.distributed.algorithms.model_averaging.averagers import ModelAverager as _Base
except ImportError:  # pragma: no cover
    _Base = object


class QuantizedModelAverager(_Base):
    """Local SGD with quantized model deltas (quantized periodic-averaging SGD, "PR-SGD";
    Reisizadeh et al., "FedPAQ", AISTATS 2020; Basu et al., "Qsparse-local-SGD", NeurIPS 2019).

    Every rank keeps x_ref, the model at the last synchronization (identical on every rank).
    Every `period` steps after `warmup_steps`, rank r sends C(x_r - x_ref) (with error feedback
    if asked), and every rank sets x_ref <- x_ref + (1/n) Σ_r decode(C(x_r - x_ref)) and copies
    it into its parameters. Since every rank decodes the same messages in the same order, the
    models stay bit-identical after each averaging. During warm-up (step < warmup_steps) the
    parameters are averaged exactly, as in PyTorch's PeriodicModelAverager.

    Use like PyTorch's averagers: ``averager.average_parameters(model.parameters())`` after each
    ``optimizer.step()``. The parameter list must be the same (order and shapes) at every call.
    """

    def __init__(self, period: int, codec: CodecLike = "qsgd:s=7,bucket=512,norm=max,coding=packed",
                 error_feedback: Optional[bool] = None, warmup_steps: int = 0, seed: int = 0,
                 process_group=None):
        if period < 1:
            raise _tw.InvalidArgument(f"QuantizedModelAverager: period must be >= 1, got {period}")
        if warmup_steps < 0:
            raise _tw.InvalidArgument(
                f"QuantizedModelAverager: warmup_steps must be >= 0, got {warmup_steps}")
        if _Base is object:
            self.process_group = process_group
            self.step = 0
        else:
            super().__init__(process_group)
        self._group_arg = process_group
        self.period = period
        self.warmup_steps = warmup_steps
        self._compressor = _Compressor(codec, error_feedback, seed)
        self.reference: Optional[torch.Tensor] = None  # x_ref, flat CPU float32
        self.bytes_sent = 0

    def _flatten(self, params) -> torch.Tensor:
        return torch.cat([_as_cpu_float32(p.data) for p in params])

    @staticmethod
    def _assign(params, flat: torch.Tensor) -> None:
        offset = 0
        for p in params:
            n = p.numel()
            p.data.copy_(flat[offset: offset + n].view_as(p.data))
            offset += n

    def average_parameters(self, params) -> None:
        params = [p for p in params]
        if self.step < self.warmup_steps:
            world = dist.get_world_size(self._group_arg)
            for p in params:
                dist.all_reduce(p.data, group=self._group_arg)
                p.data.div_(world)
        elif (self.step - self.warmup_steps) % self.period == 0 and self.step >= self.warmup_steps:
            self._average_compressed(params)
        self.step += 1

    def _average_compressed(self, params) -> None:
        current = self._flatten(params)
        if self.reference is None or self.reference.numel() != current.numel():
            # First synchronization: start from the exact average so that x_ref agrees on every
            # rank (models may have been initialized differently).
            world = dist.get_world_size(self._group_arg)
            dist.all_reduce(current, group=self._group_arg)
            current.div_(world)
            self.reference = current.clone()
            self._assign(params, current)
            return
        delta = current - self.reference
        rank = dist.get_rank(self._group_arg)
        message = self._compressor.encode(0, delta, rank)
        self.bytes_sent += len(message)
        messages = allgather_messages(message, self._group_arg)
        average = torch.empty_like(delta)
        _average_messages(messages, average)
        self.reference.add_(average)
        self._assign(params, self.reference)

    def state_dict(self) -> dict:
        state = self._compressor.state_dict()
        state["step"] = self.step
        state["reference"] = None if self.reference is None else self.reference.clone()
        return state

    def load_state_dict(self, state: dict) -> None:
        self._compressor.load_state_dict(state)
        self.step = int(state["step"])
        ref = state["reference"]
        self.reference = None if ref is None else ref.clone()
