"""thinwire's DDP communication hook; the user-facing description is thinwire.torch.ddp_hook.

Units of compression. DDP hands the hook buckets whose membership depends on gradient arrival
order and changes once, when DDP rebuilds its buckets after the first iteration; a fresh DDP (a
resumed run) starts again from the initial layout. Messages, residuals and random streams keyed
by bucket therefore differ between an uninterrupted run and a resumed one. With the model known
(hook.register(ddp)), the hook instead compresses fixed *segments*: runs of whole parameters in
model order up to `segment_mb`, a function of the model alone. Each bucket's gradients are copied
into their segments; a segment is exchanged as soon as all its parameters have arrived, and a
bucket's future completes when every segment holding one of its parameters is done. Without the
model each bucket is its own unit (keyed by its index).

Per unit and exchange: every rank checks its input for non-finite values, encodes e + g (error
feedback) with the codec or the tuner's choice, and all-gathers the message size, -1 standing for
"non-finite here". Every rank sees the same sizes, so either all decode all messages in rank
order (identical averages everywhere) and commit their residuals e <- (e + g) - decode(own), or
all skip the unit for this step: under nonfinite="pass" they all-reduce the raw values (PyTorch's
own result, non-finite where it would be, so AMP's GradScaler skips the step) and leave residual,
counter and tuner state as they were; under nonfinite="error" every rank raises NonFiniteGradient.

Exchanges are all-gathers of the messages, or (allreduce="ring", or "auto" for large segments at
three ranks or more) the compressed ring of _exchange.ring_allreduce, which the C++
collective::allreduce_ring defines.

With asynchronous=True the exchanges run on one worker thread (FIFO, so every rank issues its
collectives in the same order) and on a process group of their own, while autograd computes
later gradients; the C++ encode and decode release the GIL.
"""
from __future__ import annotations

import concurrent.futures
import time
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

from . import NonFiniteGradient
from . import _exchange as _ex
from . import _thinwire as _tw

STATE_FORMAT = 2
_MASK64 = (1 << 64) - 1


def tuner_config(tuner, codec_spec: str, cost: str, lr_coupling: bool) -> Optional[dict]:
    """The canonical tuner configuration (None without a tuner), checked by building one: a wrong
    spec fails at construction, not in the first backward pass; kept for the state check on
    load."""
    if tuner is None:
        return None
    probe = _tw.Tuner(str(tuner), codec=codec_spec, cost=cost, lr_coupling=bool(lr_coupling))
    return {"tuner": probe.spec, "cost": probe.cost, "lr_coupling": probe.lr_coupling}


def check_state_config(state: dict, codec_spec: str, error_feedback: bool,
                       tuner: Optional[dict]) -> None:
    """InvalidArgument unless a saved state was written with this codec, error feedback and
    tuner configuration."""
    if state["codec"] != codec_spec or bool(state["error_feedback"]) != error_feedback:
        raise _tw.InvalidArgument(
            f"thinwire hook state was saved for codec '{state['codec']}' "
            f"(error_feedback={state['error_feedback']}), this hook uses "
            f"'{codec_spec}' (error_feedback={error_feedback})")
    saved_tuner = state.get("tuner")
    saved_config = None if saved_tuner is None else {
        k: saved_tuner[k] for k in ("tuner", "cost", "lr_coupling")}
    if saved_config != tuner:
        raise _tw.InvalidArgument(
            f"thinwire hook state was saved with tuner {saved_config}, this hook uses {tuner}")


class _Unit:
    """What is compressed as one message: a segment of whole parameters in model order
    (params: [(param index, offset in the unit, numel)]) or a whole bucket (params: None)."""

    __slots__ = ("key", "index", "numel", "params")

    def __init__(self, key: str, index: int, numel: int, params):
        self.key, self.index, self.numel, self.params = key, index, numel, params


class _Bucket:
    """A bucket handed to the hook in this step: its buffer, the future DDP waits on and how
    many of its pieces are still being exchanged."""

    __slots__ = ("buffer", "future", "remaining")

    def __init__(self, buffer: torch.Tensor):
        self.buffer = buffer
        self.future: torch.futures.Future = torch.futures.Future()
        self.remaining = 0

    def piece_done(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(self.buffer)


def _segments(numels: List[int], cap: int) -> List[_Unit]:
    """Runs of whole parameters in model order, each up to `cap` elements (a larger parameter is
    a segment of its own)."""
    units: List[_Unit] = []
    start, total = 0, 0

    def close(end: int) -> None:
        params, offset = [], 0
        for i in range(start, end):
            params.append((i, offset, numels[i]))
            offset += numels[i]
        units.append(_Unit(f"params:{start}-{end - 1}", len(units), offset, params))

    for i, n in enumerate(numels):
        if i > start and total + n > cap:
            close(i)
            start, total = i, 0
        total += n
    if numels:
        close(len(numels))
    return units


class DdpHook:
    """A DDP communication hook (see thinwire.torch.ddp_hook). Holds its own state; the
    ``state`` argument DDP passes is ignored, so register it with ``hook.register(ddp)`` (or
    ``ddp.register_comm_hook(None, hook)``, which keys state by bucket)."""

    def __init__(self, codec="identity", error_feedback: Optional[bool] = None, seed: int = 0,
                 process_group=None, tuner: Optional[str] = None, cost: str = "bits",
                 lr_coupling: bool = False, nonfinite: str = "pass", segment_mb: float = 25.0,
                 asynchronous: bool = False, allreduce: str = "auto",
                 link_latency: float = 50e-6, link_bandwidth: float = 1e9):
        if isinstance(codec, _tw.Codec):
            self.codec, self.error_feedback = codec, bool(error_feedback)
        else:
            self.codec, ef = _tw.parse_codec(codec)
            self.error_feedback = ef if error_feedback is None else bool(error_feedback)
        if nonfinite not in ("pass", "error"):
            raise _tw.InvalidArgument(
                f"nonfinite={nonfinite!r}: expected 'pass' (every rank gets the non-finite "
                "average, as PyTorch's hooks do) or 'error' (every rank raises)")
        if not segment_mb > 0:
            raise _tw.InvalidArgument(f"segment_mb={segment_mb!r}: must be > 0")
        if allreduce not in ("auto", "allgather", "ring"):
            raise _tw.InvalidArgument(
                f"allreduce={allreduce!r}: expected 'auto', 'allgather' or 'ring'")
        if allreduce == "ring" and tuner is not None:
            raise _tw.InvalidArgument(
                "allreduce='ring' re-encodes partial sums with one codec at every hop; it does "
                f"not combine with tuner={tuner!r} (use allreduce='allgather' or 'auto')")
        if not (link_latency >= 0 and link_bandwidth > 0):
            raise _tw.InvalidArgument(
                f"link_latency={link_latency!r}, link_bandwidth={link_bandwidth!r}: need a "
                "latency >= 0 s and a bandwidth > 0 bit/s")
        self.allreduce = allreduce
        self.link_latency = float(link_latency)
        self.link_bandwidth = float(link_bandwidth)
        self.seed = int(seed)
        self.process_group = process_group
        # Where the exchanges run: process_group, or with asynchronous=True a group of its own
        # (see _open_exchange_group).
        self._exchange_group = process_group
        self._own_group = False
        self.nonfinite = nonfinite
        self.segment_mb = float(segment_mb)
        self.asynchronous = bool(asynchronous)
        # The tuner configuration, checked here (a wrong spec fails at construction, not in the
        # first backward pass) and kept canonical for the state check on load.
        self._tuner_config = tuner_config(tuner, self.codec.spec, cost, lr_coupling)
        # cost="auto": the tuners learn the link from this rank's own all-gathers (_observe_link).
        self._auto_cost = self._tuner_config is not None and \
            self._tuner_config["cost"].startswith("auto")
        self.link_samples = 0  # all-gathers timed for cost="auto"
        # Compressor state, keyed by unit key; touched only by the thread running exchanges.
        self.residuals: Dict[str, torch.Tensor] = {}
        self.iterations: Dict[str, int] = {}
        self.tuners: Dict[str, "_tw.Tuner"] = {}
        self.last_bytes: Dict[str, int] = {}
        self.bytes_sent = 0  # this rank's message bytes, for the benchmark and logs
        self.nonfinite_skips = 0  # units passed through uncompressed because of non-finite values
        self.algorithm_counts: Dict[str, int] = {}  # exchanges per algorithm (allgather, ring)
        self.last_error: Optional[BaseException] = None
        self.timeline: Optional[list] = None  # set to [] to record (event, key, time) tuples
        self._loaded_residuals: Dict[int, torch.Tensor] = {}  # per parameter, from a checkpoint
        self._loaded_rank: Optional[int] = None
        self._pending_state: Optional[dict] = None
        # The model (register/set_model).
        self._param_index: Optional[Dict[int, int]] = None
        self._param_names: List[str] = []
        self._units: List[_Unit] = []
        self._unit_of: List[_Unit] = []
        # One backward pass, hook-thread side: segments being filled.
        self._staging: Dict[int, torch.Tensor] = {}
        self._waiting: Dict[int, int] = {}
        self._targets: Dict[int, list] = {}
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._step_error: Optional[BaseException] = None  # worker side, asynchronous mode
        # DDP reads hook.__name__ and hook.__qualname__ (a function's attributes) for its logs.
        self.__name__ = self.__qualname__ = "thinwire_ddp_hook"

    # ---- configuration -------------------------------------------------------------------

    @property
    def tuner(self) -> Optional[dict]:
        """The tuner configuration (tuner spec, canonical cost spec, lr_coupling), or None."""
        return None if self._tuner_config is None else dict(self._tuner_config)

    @property
    def last_decisions(self) -> Dict[str, dict]:
        """Per unit key, this rank's last tuner decision: codec spec, level, levels (s of top-k
        with QSGD values), rho, predicted bits, lr_scale, and the message bytes sent."""
        out = {}
        for key, tuner in self.tuners.items():
            last = tuner.last
            if last is not None:
                out[key] = dict(last.as_dict(), bytes=self.last_bytes.get(key))
        return out

    def register(self, model) -> "DdpHook":
        """Registers this hook on a DistributedDataParallel model and learns its parameters
        (recommended: makes the compression independent of DDP's bucket layout)."""
        self.set_model(model)
        if self.asynchronous:
            self._open_exchange_group()
        model.register_comm_hook(None, self)
        return self

    def _open_exchange_group(self) -> None:
        """The asynchronous hook's exchanges get a process group of their own. DDP issues
        collectives of its own on process_group from the autograd thread while the worker
        thread's exchanges are in flight (e.g. the all-reduce of the used-parameter map with
        find_unused_parameters=True); on one group the two threads' collectives would be queued
        in different orders on different ranks and deadlock. Creating a group is a collective of
        every process of the default group: register() (or the first backward pass) must be
        reached by all of them."""
        if self._own_group:
            return
        ranks = None
        if self.process_group is not None and self.process_group is not dist.GroupMember.WORLD:
            ranks = [_ex.global_rank(self.process_group, r)
                     for r in range(dist.get_world_size(self.process_group))]
        self._exchange_group = dist.new_group(
            ranks=ranks, backend=dist.get_backend(self.process_group))
        self._own_group = True

    def set_model(self, model) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._param_index = {id(p): i for i, (_, p) in enumerate(named)}
        self._param_names = [n for n, _ in named]
        numels = [p.numel() for _, p in named]
        cap = max(1, int(self.segment_mb * 2**20) // 4)
        self._units = _segments(numels, cap)
        self._unit_of = [None] * len(numels)
        for unit in self._units:
            for i, _, _ in unit.params:
                self._unit_of[i] = unit

    # ---- the hook ------------------------------------------------------------------------

    def __call__(self, state, bucket):
        if self._pending_state is not None:
            self._resolve_state()
        if self.asynchronous and not self._own_group:
            self._open_exchange_group()
        buffer = bucket.buffer()
        entry = _Bucket(buffer)
        self._event("hook", bucket.index())
        try:
            params = bucket.parameters()
            flat = buffer.view(-1)
            known = self._param_index is not None and all(
                id(p) in self._param_index for p in params) and sum(
                p.numel() for p in params) == flat.numel()
            if not known:
                unit = _Unit(f"bucket:{bucket.index()}", bucket.index(), flat.numel(), None)
                entry.remaining = 1
                self._submit(unit, flat.detach().to(device="cpu", dtype=torch.float32, copy=True),
                             [(0, flat.numel(), flat, entry)])
            else:
                self._fill(params, flat, entry)
            if bucket.is_last():
                self._flush()
        except BaseException:
            self._reset_step()
            raise
        self._event("hook_end", bucket.index())
        return entry.future

    def _fill(self, params, flat: torch.Tensor, entry: _Bucket) -> None:
        """Copies the bucket's parameters into their segments; exchanges completed segments."""
        entry.remaining = len(params)
        ready, offset = [], 0
        for p in params:
            i = self._param_index[id(p)]
            n = p.numel()
            unit = self._unit_of[i]
            staging = self._staging.get(unit.index)
            if staging is None:
                staging = self._staging[unit.index] = torch.empty(unit.numel, dtype=torch.float32)
                self._waiting[unit.index] = len(unit.params)
                self._targets[unit.index] = []
            position = self._position(unit, i)
            piece = flat[offset: offset + n]
            staging[position: position + n].copy_(piece)
            self._targets[unit.index].append((position, n, piece, entry))
            self._waiting[unit.index] -= 1
            if self._waiting[unit.index] == 0:
                ready.append(unit)
            offset += n
        for unit in sorted(ready, key=lambda u: u.index):
            self._submit_segment(unit)

    @staticmethod
    def _position(unit: _Unit, param: int) -> int:
        first = unit.params[0][0]
        return unit.params[param - first][1]

    def _submit_segment(self, unit: _Unit) -> None:
        staging = self._staging.pop(unit.index)
        targets = self._targets.pop(unit.index)
        del self._waiting[unit.index]
        self._submit(unit, staging, targets)

    def _flush(self) -> None:
        """At the last bucket: segments some of whose parameters never came (parameters DDP
        ignores) are exchanged with zeros in place of the missing ones, in segment order."""
        for index in sorted(self._staging):
            unit = self._units[index]
            missing = torch.ones(unit.numel, dtype=torch.bool)
            for position, n, _, _ in self._targets[index]:
                missing[position: position + n] = False
            self._staging[index][missing] = 0.0
            self._submit_segment(unit)
        self._reset_step()
        if self._executor is not None:
            self._executor.submit(self._end_step)

    def _reset_step(self) -> None:
        self._staging, self._waiting, self._targets = {}, {}, {}

    def _submit(self, unit: _Unit, x: torch.Tensor, targets: list) -> None:
        if not self.asynchronous:
            self._run(unit, x, targets)
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="thinwire-ddp-hook")
        self._executor.submit(self._run, unit, x, targets)

    def _run(self, unit: _Unit, x: torch.Tensor, targets: list) -> None:
        """Exchanges one unit and writes the average into the buckets' pieces."""
        if self._step_error is not None:
            # An earlier unit of this step failed on every rank (NonFiniteGradient is agreed
            # collectively), so every rank skips the rest of the step without collectives.
            self._fail(targets, self._step_error)
            return
        self._event("start", unit.key)
        try:
            average = self._reduce(unit, x)
        except BaseException as error:
            self.last_error = error
            if not self.asynchronous:
                raise
            self._step_error = error
            self._fail(targets, error)
            return
        self._event("done", unit.key)  # before the futures complete and the step may end
        for position, n, piece, entry in targets:
            piece.copy_(average[position: position + n])
            entry.piece_done()

    @staticmethod
    def _fail(targets: list, error: BaseException) -> None:
        for _, _, _, entry in targets:
            if not entry.future.done():
                entry.future.set_exception(error)

    def _end_step(self) -> None:
        self._step_error = None

    def _event(self, what: str, key) -> None:
        if self.timeline is not None:
            self.timeline.append((what, key, time.perf_counter()))

    # ---- one exchange --------------------------------------------------------------------

    def algorithm(self, numel: int, world: int) -> str:
        """The exchange for a unit of `numel` elements among `world` ranks: allreduce= when set,
        else the cheaper one under an α–β link model (α = link_latency, β = link_bandwidth),
        with B the codec's bound on a whole unit's message:
          all-gather (sizes, then padded messages): 2(M−1)α + (M−1)·B/β
          ring (sizes, then bytes, at each of 2(M−1) steps of B/M): 4(M−1)α + 2(M−1)·(B/M)/β
        so the ring wins when B·(M−2)/M /β > 2α: never at M ≤ 2, for large units at M ≥ 3.
        A tuner always all-gathers (each rank picks its own level; the ring needs one codec)."""
        if self.allreduce != "auto":
            return self.allreduce
        if world <= 2 or self._tuner_config is not None:
            return "allgather"
        seconds_per_byte = 8.0 / self.link_bandwidth
        b = self.codec.max_encoded_bytes(numel)
        return "ring" if b * (world - 2) / world * seconds_per_byte > 2 * self.link_latency \
            else "allgather"

    def _reduce(self, unit: _Unit, x: torch.Tensor) -> torch.Tensor:
        group = self._exchange_group
        rank = dist.get_rank(group)
        key = unit.key
        t = self.iterations.get(key, 0)
        world = dist.get_world_size(group)
        algorithm = self.algorithm(unit.numel, world)
        self.algorithm_counts[algorithm] = self.algorithm_counts.get(algorithm, 0) + 1
        if algorithm == "ring":
            return self._reduce_ring(unit, x, rank, world, t)
        message, s, tuner, tuner_state = None, None, None, None
        if _ex.all_finite(x):
            e = self._residual(unit) if self.error_feedback else None
            s = x if e is None else e + x
            codec = self.codec
            if self._tuner_config is not None:
                tuner = self.tuners.get(key)
                if tuner is None:
                    tuner = self.tuners[key] = self._new_tuner()
                tuner_state = tuner.save_state()
                # The rule sees what is about to be encoded: e + g under error feedback (as
                # train/sender.cpp), g otherwise; decisions are pure functions of
                # (configuration, t, vector), so a resumed run repeats them.
                # The all-gather sends each message over M − 1 hops (copies), every rank's
                # padded to the largest.
                decision = tuner.decide(t, s, copies=max(world - 1, 1))
                codec = decision.codec
                if decision.lr_scale != 1.0:
                    # lr coupling (unbiased codecs): scale this rank's contribution, as
                    # train/sender.cpp scales the gradient it sends.
                    scaled = x * decision.lr_scale
                    s = scaled if e is None else e + scaled
            message = codec.encode(s, seed=self._seed(unit), rank=rank, iteration=t)
        timing = [] if self._auto_cost and world > 1 else None
        messages, missing = _ex.allgather_flagged(message, group, timing)
        if timing:
            self._observe_link(*timing[0], world)
        if messages is None:
            if tuner is not None:
                tuner.load_state(tuner_state)
            return self._skip(unit, x, missing)
        average = torch.zeros(unit.numel, dtype=torch.float32)
        for m in messages:
            _tw.decode(m, out=average, accumulate=True)
        average.div_(len(messages))
        if self.error_feedback:
            # e <- (e + g) - decode(own message): the part of e + g the message did not carry.
            self.residuals[key] = s - torch.from_numpy(_tw.decode(message))
        self.iterations[key] = t + 1
        self.last_bytes[key] = len(message)
        self.bytes_sent += len(message)
        return average

    def _reduce_ring(self, unit: _Unit, x: torch.Tensor, rank: int, world: int,
                     t: int) -> torch.Tensor:
        """_reduce by the compressed ring (_exchange.ring_allreduce). Error feedback applies to
        this rank's owned chunk only (kept inside a unit-sized residual, zero elsewhere, so that
        checkpoints stay per parameter)."""
        finite = _ex.all_finite(x)
        e = self._residual(unit) if self.error_feedback else None
        begin, size = _tw.balanced_chunk(unit.numel, world, _tw.ring_owned_chunk(rank, world))
        average, owned_residual, sent = _ex.ring_allreduce(
            x, self.codec, seed=self._seed(unit), iteration=t,
            residual=None if e is None else e[begin: begin + size], finite=finite,
            group=self._exchange_group)
        if average is None:
            # Every rank learnt it during the reduce-scatter; the ranks' flags, for the message.
            lengths = _ex.allgather_sizes(0 if finite else _ex.NO_MESSAGE, self._exchange_group)
            missing = [r for r, n in enumerate(lengths) if n == _ex.NO_MESSAGE]
            return self._skip(unit, x, missing)
        if e is not None:
            e[begin: begin + size] = owned_residual
        self.iterations[unit.key] = t + 1
        self.last_bytes[unit.key] = sent
        self.bytes_sent += sent
        return average

    def _skip(self, unit: _Unit, x: torch.Tensor, missing: List[int]) -> torch.Tensor:
        """A unit with non-finite values on the ranks `missing`, on every rank."""
        self.nonfinite_skips += 1
        if self.nonfinite == "error":
            raise NonFiniteGradient(
                f"thinwire DDP hook: NaN or infinity in the gradients of rank(s) {missing}, in "
                f"{self._describe(unit)} (nonfinite='error'; nonfinite='pass' lets every rank "
                "see them, as PyTorch's hooks do, so that AMP's GradScaler skips the step)")
        return _ex.allreduce_mean(x, self._exchange_group)

    def _seed(self, unit: _Unit) -> int:
        return (self.seed * 0x9E3779B97F4A7C15 + unit.index) & _MASK64

    def _describe(self, unit: _Unit) -> str:
        if unit.params is None:
            return f"bucket {unit.index}"
        names = [self._param_names[i] for i, _, _ in unit.params]
        shown = ", ".join(names[:4]) + (f", ... ({len(names)} parameters)" if len(names) > 4
                                          else "")
        return f"parameters {shown}"

    def _residual(self, unit: _Unit) -> torch.Tensor:
        e = self.residuals.get(unit.key)
        if e is not None and e.numel() == unit.numel:
            return e
        e = torch.zeros(unit.numel, dtype=torch.float32)
        if unit.params is not None:
            # From a checkpoint: residuals are saved per parameter.
            for i, position, n in unit.params:
                saved = self._loaded_residuals.pop(i, None)
                if saved is not None:
                    e[position: position + n].copy_(saved)
        self.residuals[unit.key] = e
        return e

    def _observe_link(self, padded_bytes: int, seconds: float, world: int) -> None:
        """cost="auto": one all-gather of `padded_bytes` per rank took `seconds`. Gloo's ring
        all-gather makes M − 1 hops of that size, so the sample is one hop: (8·bytes,
        seconds/(M − 1)), as thinwire train's MPI backend times each hop. Every segment's tuner
        learns from every exchange: they share the link."""
        bits, hop = 8.0 * padded_bytes, seconds / (world - 1)
        self.link_samples += 1
        for tuner in self.tuners.values():
            tuner.observe_message(bits, hop)

    def _new_tuner(self) -> "_tw.Tuner":
        c = self._tuner_config
        return _tw.Tuner(c["tuner"], codec=self.codec.spec, cost=c["cost"],
                         lr_coupling=c["lr_coupling"])

    # ---- checkpoints ---------------------------------------------------------------------

    def state_dict(self, gather: bool = False) -> dict:
        """This rank's residuals (per parameter), counters and tuner states, tagged with its rank.

        gather=True is a collective (call it on every rank): it returns every rank's state, so
        that one file (e.g. written by rank 0) restores every rank with load_state_dict.
        """
        if self._pending_state is not None and dist.is_initialized():
            self._resolve_state()
        local = self._local_state()
        if not gather:
            return local
        world = dist.get_world_size(self.process_group)
        states: List[Optional[dict]] = [None] * world
        dist.all_gather_object(states, local, group=self.process_group)
        return {"format": STATE_FORMAT, "world_size": world, "ranks": states}

    def _local_state(self) -> dict:
        residuals: Dict[object, torch.Tensor] = {}
        units = {u.key: u for u in self._units}
        for key, e in self.residuals.items():
            unit = units.get(key)
            if unit is None or unit.numel != e.numel():
                residuals[key] = e.clone()  # a bucket unit
                continue
            for i, position, n in unit.params:
                residuals[i] = e[position: position + n].clone()
        for i, e in self._loaded_residuals.items():  # loaded and not used yet
            residuals[i] = e.clone()
        rank = dist.get_rank(self.process_group) if dist.is_initialized() else self._loaded_rank
        state = {
            "format": STATE_FORMAT,
            "rank": rank,
            "codec": self.codec.spec,
            "error_feedback": self.error_feedback,
            "seed": self.seed,
            "segment_mb": self.segment_mb,
            "iterations": dict(self.iterations),
            "residuals": residuals,
        }
        if self._tuner_config is not None:
            state["tuner"] = dict(self._tuner_config,
                                  states={k: tu.save_state() for k, tu in self.tuners.items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores a state_dict(): this rank's own, or a gathered one (any rank picks its
        entry). Loading another rank's state raises InvalidArgument: residuals are per rank."""
        if state.get("format") != STATE_FORMAT:
            raise _tw.InvalidArgument(
                f"thinwire hook state has format {state.get('format')}, expected "
                f"{STATE_FORMAT} (a checkpoint from another thinwire version)")
        self._check_config(state["ranks"][0] if "ranks" in state else state)
        self._pending_state = state
        if dist.is_initialized():
            self._resolve_state()

    def _check_config(self, state: dict) -> None:
        check_state_config(state, self.codec.spec, self.error_feedback, self._tuner_config)
        if float(state["segment_mb"]) != self.segment_mb:
            raise _tw.InvalidArgument(
                f"thinwire hook state was saved with segment_mb={state['segment_mb']}, this "
                f"hook uses segment_mb={self.segment_mb}")

    def _resolve_state(self) -> None:
        """Applies the pending state once this rank is known (the process group is up)."""
        state, self._pending_state = self._pending_state, None
        rank = dist.get_rank(self.process_group)
        if "ranks" in state:
            world = dist.get_world_size(self.process_group)
            if state["world_size"] != world:
                raise _tw.InvalidArgument(
                    f"thinwire hook state was gathered from {state['world_size']} ranks, this "
                    f"group has {world}")
            state = state["ranks"][rank]
        if state["rank"] is not None and state["rank"] != rank:
            raise _tw.InvalidArgument(
                f"thinwire hook state belongs to rank {state['rank']}, this is rank {rank}: "
                "error-feedback residuals and random streams are per rank. Save every rank's "
                "state (hook.state_dict(gather=True) on every rank, then one file), or each "
                "rank's own state_dict() to its own file")
        tuners = {}
        saved_tuner = state.get("tuner")
        if saved_tuner is not None:
            for k, text in saved_tuner["states"].items():
                tuners[k] = self._new_tuner()
                tuners[k].load_state(text)
        self.seed = int(state["seed"])
        self.iterations = {k: int(v) for k, v in state["iterations"].items()}
        self.residuals = {k: e.clone() for k, e in state["residuals"].items()
                          if isinstance(k, str)}
        self._loaded_residuals = {k: e.clone() for k, e in state["residuals"].items()
                                  if isinstance(k, int)}
        self._loaded_rank = rank
        self.tuners = tuners
        self.last_bytes = {}
