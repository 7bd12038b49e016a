"""Worker functions for the 2-process torch.distributed tests (run by torch.multiprocessing.spawn,
so they live in an importable module). Each writes its results with torch.save to a file the
test reads back."""
import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

import thinwire.torch as twt

SAMPLES_PER_RANK = 64
FEATURES = 16
BATCH = 16
LR = 0.05


def _init(rank, world, init_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)


def _finish():
    """Ends a worker once its results are saved: a barrier, then an exit without destructors.

    Destroying a Gloo process group in PyTorch 1.13 can deadlock when a Gloo worker thread still
    holds the last reference to a tensor made in Python (its release needs the GIL, which the main
    thread holds while joining that thread): PeriodicModelAverager all-reduces such temporaries.
    thinwire.torch keeps its own exchange tensors referenced for this reason (_retain); the
    tests must not hang on PyTorch's.
    """
    dist.barrier()
    os._exit(0)


def _data(rank):
    """A fixed regression problem y = tanh(X w*) + noise; rank r holds rows [64 r, 64 (r+1))."""
    g = torch.Generator().manual_seed(1234)
    world_rows = 4 * SAMPLES_PER_RANK
    x = torch.randn(world_rows, FEATURES, generator=g)
    w = torch.randn(FEATURES, 1, generator=g)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(world_rows, 1, generator=g)
    rows = slice(rank * SAMPLES_PER_RANK, (rank + 1) * SAMPLES_PER_RANK)
    return x[rows], y[rows], x[: 2 * SAMPLES_PER_RANK], y[: 2 * SAMPLES_PER_RANK]


def _model():
    torch.manual_seed(0)  # same initial parameters on every rank
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, 1))


def _batch(x, y, step):
    i = (step * BATCH) % SAMPLES_PER_RANK
    return x[i: i + BATCH], y[i: i + BATCH]


def _train(ddp, opt, x, y, steps, first_step=0):
    for step in range(first_step, first_step + steps):
        xb, yb = _batch(x, y, step)
        opt.zero_grad()
        nn.functional.mse_loss(ddp(xb), yb).backward()
        opt.step()


def _full_loss(model, x_all, y_all):
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x_all), y_all))


def _run(rank, x, y, steps, hook=None, learn_model_order=True):
    model = _model()
    ddp = DDP(model)
    if hook is not None and learn_model_order:
        hook.register(ddp)
    elif hook is not None:  # plain registration: slots are DDP's bucket indices
        ddp.register_comm_hook(None, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    _train(ddp, opt, x, y, steps)
    return model, ddp, opt


def compare_hooks(rank, world, init_file, out_dir, steps, codec):
    """Trains without a hook, with the identity hook and with `codec`; saves parameters/losses."""
    _init(rank, world, init_file)
    x, y, x_all, y_all = _data(rank)
    plain, _, _ = _run(rank, x, y, steps)
    ident, _, _ = _run(rank, x, y, steps, twt.ddp_hook("identity"))
    ident_raw, _, _ = _run(rank, x, y, steps, twt.ddp_hook("identity"), learn_model_order=False)
    hook = twt.ddp_hook(codec, error_feedback=True, seed=5)
    comp, _, _ = _run(rank, x, y, steps, hook)
    torch.save({
        "plain": [p.detach().clone() for p in plain.parameters()],
        "identity": [p.detach().clone() for p in ident.parameters()],
        "identity_raw": [p.detach().clone() for p in ident_raw.parameters()],
        "compressed": [p.detach().clone() for p in comp.parameters()],
        "loss_initial": _full_loss(_model(), x_all, y_all),
        "loss_plain": _full_loss(plain, x_all, y_all),
        "loss_compressed": _full_loss(comp, x_all, y_all),
        "bytes_sent": hook.bytes_sent,
    }, os.path.join(out_dir, f"rank{rank}.pt"))
    _finish()


def tuned(rank, world, init_file, out_dir, steps, codec, tuner, cost):
    """Trains without a hook and with `codec` under `tuner` (error feedback on), logging this
    rank's decision at every step; saves losses, decisions and final parameters."""
    _init(rank, world, init_file)
    x, y, x_all, y_all = _data(rank)
    plain, _, _ = _run(rank, x, y, steps)
    model = _model()
    ddp = DDP(model)
    hook = twt.ddp_hook(codec, error_feedback=True, seed=7, tuner=tuner, cost=cost).register(ddp)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    decisions = []
    for step in range(steps):
        _train(ddp, opt, x, y, 1, first_step=step)
        decisions.extend(hook.last_decisions.values())  # one bucket: one decision per step
    torch.save({
        "loss_initial": _full_loss(_model(), x_all, y_all),
        "loss_plain": _full_loss(plain, x_all, y_all),
        "loss_tuned": _full_loss(model, x_all, y_all),
        "decisions": decisions,
        "params": [p.detach().clone() for p in model.parameters()],
        "bytes_sent": hook.bytes_sent,
    }, os.path.join(out_dir, f"rank{rank}.pt"))
    _finish()


def resume(rank, world, init_file, out_dir, steps, codec, tuner=None):
    """2·steps in one go versus steps, checkpoint (model, optimizer, hook), fresh objects, load,
    steps more; saves both final parameter lists (and, with a tuner, both hooks' decisions)."""
    _init(rank, world, init_file)
    x, y, _, _ = _data(rank)
    straight_hook = twt.ddp_hook(codec, seed=3, tuner=tuner)
    straight, _, _ = _run(rank, x, y, 2 * steps, straight_hook)

    hook = twt.ddp_hook(codec, seed=3, tuner=tuner)
    first, _, opt = _run(rank, x, y, steps, hook)
    checkpoint = {"model": first.state_dict(), "opt": opt.state_dict(),
                  "hook": hook.state_dict()}
    path = os.path.join(out_dir, f"ckpt{rank}.pt")
    torch.save(checkpoint, path)
    checkpoint = torch.load(path)

    model = _model()
    model.load_state_dict(checkpoint["model"])
    ddp = DDP(model)
    hook2 = twt.ddp_hook(codec, seed=0, tuner=tuner)  # the seed comes back with the state
    hook2.load_state_dict(checkpoint["hook"])
    loaded_decisions = hook2.last_decisions  # the tuner state: the last decision per bucket
    hook2.register(ddp)
    opt2 = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    opt2.load_state_dict(checkpoint["opt"])
    _train(ddp, opt2, x, y, steps, first_step=steps)
    torch.save({
        "straight": [p.detach().clone() for p in straight.parameters()],
        "resumed": [p.detach().clone() for p in model.parameters()],
        "checkpoint_decisions": hook.last_decisions,
        "loaded_decisions": loaded_decisions,
        "straight_decisions": straight_hook.last_decisions,
        "resumed_decisions": hook2.last_decisions,
    }, os.path.join(out_dir, f"rank{rank}.pt"))
    _finish()


def local_sgd(rank, world, init_file, out_dir, steps, codec, period):
    """Local SGD averaged every `period` steps: exactly (PyTorch's PeriodicModelAverager) and with
    thinwire's QuantizedModelAverager; saves parameters and losses."""
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    _init(rank, world, init_file)
    x, y, x_all, y_all = _data(rank)
    results = {}
    for name in ("exact", "quantized"):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        if name == "exact":
            averager = PeriodicModelAverager(period=period, warmup_steps=0)
        else:
            averager = twt.QuantizedModelAverager(period=period, codec=codec, seed=1)
        for step in range(steps):
            xb, yb = _batch(x, y, step)
            opt.zero_grad()
            nn.functional.mse_loss(model(xb), yb).backward()
            opt.step()
            averager.average_parameters(model.parameters())
        results[name] = [p.detach().clone() for p in model.parameters()]
        results["loss_" + name] = _full_loss(model, x_all, y_all)
        if name == "quantized":
            results["bytes_sent"] = averager.bytes_sent
    results["loss_initial"] = _full_loss(_model(), x_all, y_all)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    _finish()


def nccl_hooks(rank, world, init_file, out_dir, steps, codec):
    """The identity hook and `codec` on CUDA models over NCCL (one GPU per rank); the hook moves
    buckets to the host for encoding and exchanges messages as CUDA uint8 tensors."""
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    x, y, _, _ = _data(rank)
    x, y = x.cuda(), y.cuda()
    results = {}
    for name, hook in (("plain", None), ("identity", twt.ddp_hook("identity")),
                       ("compressed", twt.ddp_hook(codec, error_feedback=True, seed=5))):
        model = _model().cuda()
        ddp = DDP(model, device_ids=[rank])
        if hook is not None:
            hook.register(ddp)
        opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
        _train(ddp, opt, x, y, steps)
        results[name] = [p.detach().cpu().clone() for p in model.parameters()]
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    _finish()
