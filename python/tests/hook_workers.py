"""Workers for test_torch_hook.py (non-finite gradients, checkpoints across DDP's bucket rebuild,
the asynchronous hook): each runs in one of `world` spawned Gloo processes and writes its results
with torch.save to out_dir/rank{r}.pt."""
import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

import thinwire
import thinwire.torch as twt

QSGD4 = "qsgd:s=7,bucket=512,norm=max,coding=packed"
FEATURES = 32
BATCH = 16
LR = 0.05
# A 32-512-512-512-1 MLP (2.1 MB of parameters): one DDP bucket in the first iteration (DDP's
# first bucket holds up to 1 MB), three after DDP rebuilds them, and five hook segments.
WIDTH = 512
BUCKET_MB = 0.25
SEGMENT_MB = 0.25


def _init(rank, world, init_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)


def _finish(out_dir, rank, results):
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    os._exit(0)  # see ddp_workers._finish


def _model(width=WIDTH):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


def _batch(rank, step):
    g = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(BATCH, FEATURES, generator=g)
    return x, torch.tanh(x.sum(dim=1, keepdim=True) / 4)


def _ddp(model, hook):
    ddp = DDP(model, bucket_cap_mb=BUCKET_MB)
    hook.register(ddp)
    return ddp


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _step(ddp, opt, rank, step, poison=False):
    """One training step; returns whether this rank saw non-finite gradients (and so skipped
    the optimizer step, as AMP's GradScaler does)."""
    x, y = _batch(rank, step)
    if poison:
        x[0, 0] = float("nan")
    opt.zero_grad()
    nn.functional.mse_loss(ddp(x), y).backward()
    found = any(not bool(torch.isfinite(p.grad).all()) for p in ddp.parameters())
    if not found:
        opt.step()
    return found


def nonfinite_pass(rank, world, init_file, out_dir, steps, bad_step, bad_rank):
    """QSGD 4-bit + EF; at bad_step rank bad_rank's input holds a NaN. Against a run that skips
    bad_step altogether: the non-finite step must leave no trace (residuals, counters)."""
    _init(rank, world, init_file)
    results = {}
    for name in ("poisoned", "skipped"):
        model = _model()
        hook = twt.ddp_hook(QSGD4, error_feedback=True, seed=2, segment_mb=SEGMENT_MB)
        ddp = _ddp(model, hook)
        opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
        found = []
        for step in range(steps):
            if name == "skipped" and step == bad_step:
                found.append(True)
                continue
            found.append(_step(ddp, opt, rank, step, poison=(
                name == "poisoned" and step == bad_step and rank == bad_rank)))
        results[name] = _params(model)
        results["found_" + name] = found
        results["skips_" + name] = hook.nonfinite_skips
        results["units"] = len(hook._units)
    _finish(out_dir, rank, results)


def nonfinite_error(rank, world, init_file, out_dir, bad_rank, asynchronous):
    """nonfinite='error': every rank's backward raises at the poisoned step."""
    _init(rank, world, init_file)
    model = _model()
    hook = twt.ddp_hook(QSGD4, error_feedback=True, nonfinite="error", segment_mb=SEGMENT_MB,
                        asynchronous=asynchronous)
    ddp = _ddp(model, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    _step(ddp, opt, rank, 0)
    error = None
    try:
        _step(ddp, opt, rank, 1, poison=(rank == bad_rank))
    except RuntimeError as e:
        error = str(e)
    _finish(out_dir, rank, {"error": error,
                            "last_error": type(hook.last_error).__name__,
                            "is_thinwire": isinstance(hook.last_error, thinwire.NonFiniteGradient)})


def resume(rank, world, init_file, out_dir, steps, tuner, gathered, by_bucket):
    """2·steps in one go against steps, checkpoint, fresh DDP/hook/optimizer, steps more. With
    `gathered`, rank 0 writes hook.state_dict(gather=True) and every rank loads rank 0's file.
    `by_bucket` registers the hook without the model (state keyed by DDP bucket)."""
    _init(rank, world, init_file)

    def make(model):
        hook = twt.ddp_hook(QSGD4, error_feedback=True, seed=3, tuner=tuner,
                            segment_mb=SEGMENT_MB)
        ddp = DDP(model, bucket_cap_mb=BUCKET_MB)
        if by_bucket:
            ddp.register_comm_hook(None, hook)
        else:
            hook.register(ddp)
        return hook, ddp, torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)

    straight = _model()
    _, ddp, opt = make(straight)
    for step in range(2 * steps):
        _step(ddp, opt, rank, step)

    first = _model()
    hook, ddp, opt = make(first)
    for step in range(steps):
        _step(ddp, opt, rank, step)
    path = os.path.join(out_dir, "hook0.pt" if gathered else f"hook{rank}.pt")
    state = hook.state_dict(gather=gathered)
    if rank == 0 or not gathered:
        torch.save({"model": first.state_dict(), "opt": opt.state_dict(), "hook": state}, path)
    dist.barrier()
    checkpoint = torch.load(path)

    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    hook2, ddp, opt = make(resumed)
    hook2.load_state_dict(checkpoint["hook"])
    opt.load_state_dict(checkpoint["opt"])
    for step in range(steps, 2 * steps):
        _step(ddp, opt, rank, step)

    # Loading rank 0's own (not gathered) state on another rank is refused.
    foreign_error = None
    if rank != 0 and not gathered:
        try:
            twt.ddp_hook(QSGD4, error_feedback=True, seed=3, tuner=tuner,
                         segment_mb=SEGMENT_MB).load_state_dict(
                torch.load(os.path.join(out_dir, "hook0.pt"))["hook"])
        except thinwire.InvalidArgument as e:
            foreign_error = str(e)
    _finish(out_dir, rank, {"straight": _params(straight), "resumed": _params(resumed),
                            "foreign_error": foreign_error})


def asynchronous(rank, world, init_file, out_dir, steps, width=WIDTH):
    """The same training with the synchronous and the asynchronous hook; records, per step of
    the asynchronous run, how long exchanges ran while autograd was computing (outside the
    hook calls, before the last one returned)."""
    _init(rank, world, init_file)
    results = {}
    for mode in ("sync", "async"):
        model = _model(width)
        hook = twt.ddp_hook(QSGD4, error_feedback=True, seed=4, segment_mb=SEGMENT_MB,
                            asynchronous=(mode == "async"))
        ddp = DDP(model, bucket_cap_mb=BUCKET_MB)
        hook.register(ddp)
        opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
        overlap, exchange = [], []
        for step in range(steps):
            hook.timeline = []
            _step(ddp, opt, rank, step)
            o, e = _overlap(hook.timeline)
            overlap.append(o)
            exchange.append(e)
        results[mode] = _params(model)
        results["overlap_" + mode] = overlap
        results["exchange_" + mode] = exchange
        results["units"] = len(hook._units)
    _finish(out_dir, rank, results)


def _overlap(timeline):
    """(seconds of exchange work done while autograd ran, total seconds of exchange work).

    Hook calls are [hook, hook_end] intervals on the autograd thread; exchanges [start, done].
    Work overlaps backward when it runs outside every hook call and before the last one ended.
    """
    calls = [(t0, t1) for (a, _, t0), (b, _, t1) in _pairs(timeline, "hook", "hook_end")]
    work = [(t0, t1) for (a, _, t0), (b, _, t1) in _pairs(timeline, "start", "done")]
    end = max(t1 for _, t1 in calls)
    total = sum(t1 - t0 for t0, t1 in work)
    overlap = 0.0
    for w0, w1 in work:
        w1 = min(w1, end)
        if w1 <= w0:
            continue
        inside = sum(max(0.0, min(w1, c1) - max(w0, c0)) for c0, c1 in calls)
        overlap += (w1 - w0) - inside
    return overlap, total


def _pairs(timeline, opening, closing):
    out, stack = [], {}
    for event in timeline:
        if event[0] == opening:
            stack[event[1]] = event
        elif event[0] == closing and event[1] in stack:
            out.append((stack.pop(event[1]), event))
    return out


RING_LENGTHS = (0, 1, 5, 1000, 4099)


def ring_inputs(rank, n, iteration):
    g = torch.Generator().manual_seed(10_000 * rank + 100 * iteration + n)
    return torch.randn(n, generator=g)


def ring_collective(rank, world, init_file, out_dir, codec, iterations):
    """thinwire.torch.allreduce (ring and allgather) on fixed inputs, with error feedback on the
    ring's owned chunk over several iterations; saves outputs and residuals per length."""
    _init(rank, world, init_file)
    results = {}
    for n in RING_LENGTHS:
        begin, size = thinwire.balanced_chunk(n, world, thinwire.ring_owned_chunk(rank, world))
        residual = torch.zeros(size)
        for it in range(iterations):
            x = ring_inputs(rank, n, it)
            results[("ring", n, it)] = twt.allreduce(x, codec, algorithm="ring", seed=11,
                                                     iteration=it, residual=residual)
            results[("residual", n, it)] = residual.clone()
            results[("allgather", n, it)] = twt.allreduce(x, codec, algorithm="allgather",
                                                          seed=11, iteration=it)
    _finish(out_dir, rank, results)


def ring_training(rank, world, init_file, out_dir, steps, allreduce):
    """DDP training with the hook's ring (or "auto") at any world size; saves parameters."""
    _init(rank, world, init_file)
    model = _model()
    hook = twt.ddp_hook(QSGD4, error_feedback=True, seed=6, segment_mb=SEGMENT_MB,
                        allreduce=allreduce)
    ddp = _ddp(model, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    losses = []
    for step in range(steps):
        x, y = _batch(0, 0)  # the same batch on every rank and step: the loss must fall
        opt.zero_grad()
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    _finish(out_dir, rank, {"params": _params(model), "losses": losses,
                            "counts": dict(hook.algorithm_counts), "bytes": hook.bytes_sent})


class _Branchy(nn.Module):
    """_model() plus a head that is used only when asked (find_unused_parameters)."""

    def __init__(self):
        super().__init__()
        self.body = _model()
        self.unused = nn.Linear(FEATURES, 1)  # seeded by _model()

    def forward(self, x, use_head=False):
        out = self.body(x)
        return out + self.unused(x) if use_head else out


def identity_cases(rank, world, init_file, out_dir, steps):
    """The identity hook (synchronous and asynchronous) against DDP without a hook, in the cases
    DDP users combine: several buckets, gradient_as_bucket_view, find_unused_parameters and
    no_sync (Gloo in PyTorch 1.13 broadcasts no bfloat16, and CPU matmuls take no float16, so
    half-precision gradients are not tried here). Saves every run's parameters."""
    _init(rank, world, init_file)
    cases = {
        "buckets": dict(),
        "bucket_view": dict(gradient_as_bucket_view=True),
        "unused": dict(find_unused_parameters=True),
        "no_sync": dict(),
    }
    results = {}
    for case, ddp_options in cases.items():
        for mode in ("plain", "sync", "async"):
            model = _Branchy() if case == "unused" else _model()
            ddp = DDP(model, bucket_cap_mb=BUCKET_MB, **ddp_options)
            if mode != "plain":
                twt.ddp_hook("identity", segment_mb=SEGMENT_MB,
                             asynchronous=(mode == "async")).register(ddp)
            opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
            for step in range(steps):
                x, y = _batch(rank, step)
                opt.zero_grad()
                if case == "no_sync" and step % 2 == 0:
                    with ddp.no_sync():  # accumulate locally, then one synchronized step
                        nn.functional.mse_loss(ddp(x), y).backward()
                    x, y = _batch(rank, step + 100)
                out = ddp(x, use_head=step % 2 == 1) if case == "unused" else ddp(x)
                nn.functional.mse_loss(out, y).backward()
                opt.step()
            results[(case, mode)] = _params(model)
    _finish(out_dir, rank, results)


def auto_cost(rank, world, init_file, out_dir, steps, window):
    """The dynamic tuner under cost="auto": the hook times its all-gathers and every segment's
    tuner learns the link from them."""
    _init(rank, world, init_file)
    model = _model()
    hook = twt.ddp_hook(QSGD4, error_feedback=True, seed=5, segment_mb=SEGMENT_MB,
                        tuner="dynamic", cost=f"auto:window={window}")
    ddp = _ddp(model, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    for step in range(steps):
        _step(ddp, opt, rank, step)
    _finish(out_dir, rank, {"params": _params(model), "link_samples": hook.link_samples,
                            "exchanges": sum(hook.algorithm_counts.values()),
                            "links": {k: t.link for k, t in hook.tuners.items()},
                            "decisions": hook.last_decisions})
