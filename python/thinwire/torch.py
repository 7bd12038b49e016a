"""thinwire inside PyTorch training loops: a DDP communication hook (implemented in _hook.py)
and a quantized local-SGD model averager.

Both exchange compressed messages with an all-gather of variable-length byte strings through
``torch.distributed`` (any backend that supports ``all_gather`` on the tensors' device; Gloo on
CPU): every rank all-gathers the message sizes, pads its message to the largest, all-gathers the
padded uint8 tensors and trims each to its size (_exchange.py). Every rank then decodes all
messages in rank order into the same accumulator, so all ranks compute bit-identical averages.

Randomness: rank r's message for a unit (a hook segment, the averager's model) at its t-th use is
encoded with the counter-based key (seed, r, t) (thinwire's EncodeContext; the hook mixes the
segment index into the seed), so a run is reproducible and a resumed run continues exactly when
the state (residuals and counters) is restored.

    hook = thinwire.torch.ddp_hook(codec="qsgd:s=7,bucket=512,norm=max,coding=packed")
    hook.register(ddp)
    ...
    state = hook.state_dict(gather=True)    # every rank; and hook.load_state_dict(...) on resume

With ``tuner=`` (``"dynamic"``, ``"schedule:0=8,100=4"``, as ``thinwire train --tuner``; ``cost=``
as ``--cost``) each rank chooses the codec level of each message itself, from e + g under error
feedback; messages are self-describing, so ranks may choose differently and decoding needs
nothing else. ``hook.last_decisions`` holds the last decision per segment for logging.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import torch
import torch.distributed as dist

from . import _exchange as _ex
from . import _thinwire as _tw
from ._hook import DdpHook, check_state_config, tuner_config

__all__ = ["DdpHook", "ddp_hook", "QuantizedModelAverager", "allgather_messages", "allreduce"]

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


_exchange_device = _ex.exchange_device
_retain = _ex.retain
allgather_messages = _ex.allgather_messages


class _Compressor:
    """Encodes flat float32 vectors keyed by a slot (bucket index), with optional per-slot error
    feedback and a per-slot tuner; the state shared by the hook and the averager."""

    def __init__(self, codec: CodecLike, error_feedback: Optional[bool], seed: int,
                 tuner: Optional[str] = None, cost: str = "bits", lr_coupling: bool = False):
        self.codec, self.error_feedback = _make_codec(codec, error_feedback)
        self.seed = int(seed)
        self.residuals: Dict[object, _tw.ErrorFeedback] = {}
        self.iterations: Dict[object, int] = {}
        self.tuner_config = tuner_config(tuner, self.codec.spec, cost, lr_coupling)
        if self.tuner_config is not None and self.tuner_config["cost"].startswith("auto"):
            # Nothing here times the exchanges, so the estimate would stay at its prior.
            raise _tw.InvalidArgument(
                "cost='auto': the model averager does not time its exchanges; give "
                "linear:latency=...,bandwidth=... (the DDP hook supports 'auto')")
        self.tuners: Dict[object, _tw.Tuner] = {}
        self.last_bytes: Dict[object, int] = {}

    def _new_tuner(self) -> "_tw.Tuner":
        c = self.tuner_config
        return _tw.Tuner(c["tuner"], codec=self.codec.spec, cost=c["cost"],
                         lr_coupling=c["lr_coupling"])

    def _residual(self, slot, n: int) -> "_tw.ErrorFeedback":
        ef = self.residuals.get(slot)
        if ef is None or ef.dimension != n:
            # First use, or DDP rebuilt its buckets after the first iteration (the layout then
            # changes once): start this slot with a zero residual.
            ef = _tw.ErrorFeedback(self.codec, n)
            self.residuals[slot] = ef
        return ef

    def encode(self, slot, flat: torch.Tensor, rank: int) -> bytes:
        t = self.iterations.get(slot, 0)
        self.iterations[slot] = t + 1
        ef = self._residual(slot, flat.numel()) if self.error_feedback else None
        codec = None
        if self.tuner_config is not None:
            tuner = self.tuners.get(slot)
            if tuner is None:
                tuner = self.tuners[slot] = self._new_tuner()
            # The rule sees what is about to be encoded: e + g under error feedback (as
            # train/sender.cpp), g otherwise. Decisions are pure functions of (configuration,
            # t, vector), so a resumed run with restored residuals and counters repeats them.
            decision = tuner.decide(t, flat, residual=ef)
            codec = decision.codec
            if decision.lr_scale != 1.0:
                # lr coupling (γ_t = γ₀·ρ(θ_t), unbiased codecs only): scale this rank's
                # contribution, as train/sender.cpp scales the gradient it sends; a copy, so the
                # bucket buffer is not touched before the average is written into it.
                flat = flat * decision.lr_scale
        if ef is not None:
            message = ef.encode(flat, seed=self.seed, rank=rank, iteration=t, codec=codec)
        else:
            message = (codec or self.codec).encode(flat, seed=self.seed, rank=rank, iteration=t)
        self.last_bytes[slot] = len(message)
        return message

    @property
    def last_decisions(self) -> Dict[object, dict]:
        """slot -> the tuner's last decision (codec spec, level, levels, rho, predicted bits,
        lr_scale) and this rank's message bytes; empty without a tuner."""
        out = {}
        for slot, tuner in self.tuners.items():
            last = tuner.last
            if last is not None:
                out[slot] = dict(last.as_dict(), bytes=self.last_bytes.get(slot))
        return out

    def state_dict(self) -> dict:
        state = {
            "codec": self.codec.spec,
            "error_feedback": self.error_feedback,
            "seed": self.seed,
            "iterations": dict(self.iterations),
            "residuals": {k: (ef.dimension, ef.save()) for k, ef in self.residuals.items()},
        }
        if self.tuner_config is not None:
            state["tuner"] = dict(self.tuner_config,
                                  states={k: tu.save_state() for k, tu in self.tuners.items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        check_state_config(state, self.codec.spec, self.error_feedback, self.tuner_config)
        residuals = {}
        for k, (dimension, data) in state["residuals"].items():
            ef = _tw.ErrorFeedback(self.codec, int(dimension))
            ef.load(data)
            residuals[k] = ef
        tuners = {}
        if saved_tuner is not None:
            for k, text in saved_tuner["states"].items():
                tuners[k] = self._new_tuner()
                tuners[k].load_state(text)
        self.seed = int(state["seed"])
        self.iterations = {k: int(v) for k, v in state["iterations"].items()}
        self.residuals = residuals
        self.tuners = tuners
        self.last_bytes = {}


def _average_messages(messages: List[bytes], out: torch.Tensor) -> None:
    """out <- (1/n) Σ_r decode(messages[r]), decoded in rank order (out: CPU float32)."""
    out.zero_()
    for msg in messages:
        _tw.decode(msg, out=out, accumulate=True)
    out.div_(len(messages))


def ddp_hook(codec: CodecLike = "identity", error_feedback: Optional[bool] = True,
             seed: int = 0, process_group=None, model=None, tuner: Optional[str] = None,
             cost: str = "bits", lr_coupling: bool = False, nonfinite: str = "pass",
             segment_mb: float = 25.0, asynchronous: bool = False, allreduce: str = "auto",
             link_latency: float = 50e-6, link_bandwidth: float = 1e9) -> DdpHook:
    """A hook for ``DistributedDataParallel.register_comm_hook`` that compresses the gradients
    with `codec` (a spec string as in the CLI, or a Codec), exchanges the messages and averages
    the decoded gradients (the design is in thinwire/_hook.py).

    error_feedback: keep a residual per segment (Stich et al. 2018; Karimireddy et al. 2019);
    None means "as the spec says" ("+ef"). Lossless codecs make it a no-op, so
    ``ddp_hook("identity")`` gives the same parameters as DDP without a hook.
    model: the DDP model (or call hook.register(model)): the hook then compresses fixed segments
    of whole parameters in model order (up to `segment_mb` MiB of float32 each) instead of DDP's
    buckets, so messages, residuals and random streams do not depend on DDP's bucket layout and
    a resumed run continues exactly.
    tuner: None (always `codec`), or a tuner spec as ``thinwire train --tuner``: "fixed",
    "schedule:T0=L0,T1=L1,..." (the codec's level from a segment's exchange T_j on) or
    "dynamic" (θ = argmax ρ(θ)/C(bits(θ)) over the codec's family, on e + g under error
    feedback); `codec` then names the family and its fixed parameters. cost: the dynamic tuner's
    cost model (``--cost``: "bits", "linear:latency=50us,bandwidth=1Gbit", "packet:...",
    "energy:...", or "auto[:window=N]": the link's α and β learnt from this rank's own timed
    all-gathers, one sample per hop, shared by every segment's tuner; the level is the
    configured one until the window is full). lr_coupling: scale each rank's contribution by
    ρ(θ_t) for unbiased codecs.
    nonfinite: "pass" (default; if any rank's gradients hold NaN/inf, every rank gets the exact
    average of that segment, non-finite as with PyTorch's hooks, so AMP's GradScaler skips the
    step, and residuals, counters and tuner states are left untouched) or "error" (every rank
    raises thinwire.NonFiniteGradient).
    asynchronous: exchange on a worker thread while autograd computes later gradients (the hook
    returns a future completed when its bucket's exchange is done); the result is bit-identical
    to the synchronous hook.
    allreduce: "allgather" (every rank's message to every rank; traffic per rank grows with the
    world size), "ring" (reduce-scatter with re-quantization at every hop, then all-gather of the
    chunk owners' messages, error feedback at the owners: 2(M−1)/M of one message per rank at
    any world size, with an error that grows with M; see the C++ collective::allreduce_ring) or
    "auto" (default): per segment, the cheaper of the two for a link of `link_latency` seconds
    and `link_bandwidth` bit/s (DdpHook.algorithm); all-gather at 2 ranks and with a tuner.
    """
    hook = DdpHook(codec, error_feedback, seed, process_group, tuner, cost, lr_coupling,
                   nonfinite, segment_mb, asynchronous, allreduce, link_latency, link_bandwidth)
    if model is not None:
        hook.set_model(model)
    return hook


def allreduce(tensor: torch.Tensor, codec: CodecLike, *, algorithm: str = "ring", seed: int = 0,
              iteration: int = 0, residual: Optional[torch.Tensor] = None,
              group=None) -> torch.Tensor:
    """A compressed mean over ranks of a CPU float32 tensor (the same length on every rank), as
    C++ ``collective::allreduce`` computes it (same chunks, seeds and arithmetic, so the same
    floats): "ring" (reduce-scatter with re-quantization, then the chunk owners' messages
    all-gathered) or "allgather" (every rank's message decoded in rank order). Returns a new
    tensor, identical on every rank. `residual`: this rank's error feedback, updated in place
    (length: the tensor's for allgather, the owned chunk's for ring, see
    ``thinwire.balanced_chunk(d, M, thinwire.ring_owned_chunk(rank, M))``). A collective: every
    rank calls it with the same arguments but its own tensor.
    """
    if isinstance(codec, str):
        codec = _tw.Codec(codec)
    x = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous().view(-1)
    if algorithm == "ring":
        out, new_residual, _ = _ex.ring_allreduce(x, codec, seed=seed, iteration=iteration,
                                                  residual=residual, group=group)
        if out is None:
            raise _tw.InvalidArgument("thinwire.torch.allreduce: non-finite values on some rank")
    elif algorithm == "allgather":
        rank = dist.get_rank(group)
        to_send = x if residual is None else residual + x
        message = None
        if _ex.all_finite(x):
            message = codec.encode(to_send, seed=seed, rank=rank, iteration=iteration)
        messages, missing = _ex.allgather_flagged(message, group)
        if messages is None:
            raise _tw.InvalidArgument(
                f"thinwire.torch.allreduce: non-finite values on rank(s) {missing}")
        new_residual = None if residual is None else to_send - torch.from_numpy(
            _tw.decode(message))
        out = torch.empty_like(x)
        _average_messages(messages, out)
    else:
        raise _tw.InvalidArgument(
            f"algorithm={algorithm!r}: expected 'ring' or 'allgather'")
    if residual is not None:
        residual.copy_(new_residual)
    return out


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
            exchanged = current.to(_exchange_device(self._group_arg))
            dist.all_reduce(exchanged, group=self._group_arg)
            _retain(self._group_arg, exchanged)
            current = exchanged.cpu().div_(world)
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
