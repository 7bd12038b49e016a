"""Time to accuracy on a real slow link: 2 torch DDP processes (Gloo) in netlab network namespaces
joined by a tbf-limited link (experiments/netlab), a small CNN on Fashion-MNIST, and the time until
the test accuracy first reaches a target, for PyTorch's fp32 all-reduce, fp16 and PowerSGD hooks
and thinwire's hooks.

    build/venv/bin/python python/bench/netlab_tta.py [--rates 10mbit,100mbit] [--target 0.80]

Needs root (network namespaces), iproute2 and tc (as netlab), the installed thinwire package and
Debian's dataset-fashion-mnist. Writes the table to python/bench/netlab_tta.md (--table; and
prints it).

Per run: both ranks train the same CNN (conv 5x5 16 - pool - conv 5x5 32 - pool - fc 64 - fc 10,
46 730 parameters, one DDP bucket) with SGD (lr 0.05, momentum 0.9) on their half of the training
set, batch 64 per rank; every 25 steps both evaluate on the first 2 000 test images (identical
models, identical decisions; evaluation time is not counted). Time to target is the training wall
time until the first evaluation at or above the target; a run stops after --max-seconds of
training. Bytes are what this rank hands to all_reduce/all_gather per step (as in ddp_hooks.py).
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
NETLAB = os.path.join(REPO, "experiments", "netlab", "netlab")
DATA = "/usr/share/datasets/fashion-mnist"
HOOKS = ["torch fp32 all-reduce", "torch fp16", "torch PowerSGD rank 2", "torch PowerSGD rank 4",
         "thinwire qsgd 4-bit +ef", "thinwire topk 1% +ef", "thinwire dynamic qsgd +ef"]
QSGD4 = "qsgd:s=7,bucket=512,norm=max,coding=packed"
BATCH = 64
EVAL_EVERY = 25
TEST_SAMPLES = 2000


def _idx(name):
    import numpy as np
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _cnn():
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def _register(ddp, name, d, rate_bps):
    import thinwire.torch as twt
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
    if name == "torch fp32 all-reduce":
        ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    elif name == "torch fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif name.startswith("torch PowerSGD rank"):
        state = powersgd.PowerSGDState(process_group=None,
                                       matrix_approximation_rank=int(name.split()[-1]),
                                       start_powerSGD_iter=2, use_error_feedback=True)
        ddp.register_comm_hook(state, powersgd.powerSGD_hook)
    elif name == "thinwire qsgd 4-bit +ef":
        return twt.ddp_hook(QSGD4, error_feedback=True).register(ddp)
    elif name == "thinwire topk 1% +ef":
        return twt.ddp_hook(f"topk:k={max(1, d // 100)}", error_feedback=True).register(ddp)
    elif name.startswith("thinwire spec "):  # "thinwire spec CODEC[+ef]", any codec spec
        return twt.ddp_hook(name.split(" ", 2)[2], error_feedback=None).register(ddp)
    elif name == "thinwire dynamic qsgd +ef":
        link = f"linear:latency=1ms,bandwidth={rate_bps}bit"
        return twt.ddp_hook(QSGD4, error_feedback=True, tuner="dynamic", cost=link).register(ddp)
    else:
        raise ValueError(f"unknown hook '{name}'")
    return None


def worker(args):
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    sys.path.insert(0, HERE)
    from ddp_hooks import _Counter

    rank = args.rank
    os.environ["GLOO_SOCKET_IFNAME"] = f"{args.lab}v{rank}"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://10.77.0.1:{args.port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=120))
    counter = _Counter()
    mean, std = 0.2860, 0.3530
    x = (torch.from_numpy(_idx("train-images-idx3-ubyte.gz")[rank::2].astype(np.float32))
         / 255 - mean) / std
    y = torch.from_numpy(_idx("train-labels-idx1-ubyte.gz")[rank::2].astype(np.int64))
    xt = (torch.from_numpy(_idx("t10k-images-idx3-ubyte.gz")[:TEST_SAMPLES].astype(np.float32))
          / 255 - mean) / std
    yt = torch.from_numpy(_idx("t10k-labels-idx1-ubyte.gz")[:TEST_SAMPLES].astype(np.int64))
    x, xt = x.unsqueeze(1), xt.unsqueeze(1)
    model = _cnn()
    d = sum(p.numel() for p in model.parameters())
    ddp = DDP(model)
    _register(ddp, args.hook, d, args.rate_bps)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1 + rank)
    order = torch.randperm(len(x), generator=g)
    dist.barrier()
    trained, step, position, accuracy, reached = 0.0, 0, 0, 0.0, None
    counter.bytes = 0
    while trained < args.max_seconds:
        if position + BATCH > len(order):
            order, position = torch.randperm(len(x), generator=g), 0
        index = order[position: position + BATCH]
        position += BATCH
        start = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x[index]), y[index]).backward()
        opt.step()
        trained += time.perf_counter() - start
        step += 1
        if step % EVAL_EVERY == 0:
            with torch.no_grad():
                accuracy = float((model(xt).argmax(1) == yt).float().mean())
            if accuracy >= args.target:
                reached = trained
                break
    result = {"hook": args.hook, "rate": args.rate, "steps": step, "seconds": reached,
              "trained_seconds": trained, "accuracy": accuracy,
              "bytes_per_step": counter.bytes / step}
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump(result, f)
    dist.barrier()
    os._exit(0)


def _rate_bps(rate):
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    for suffix, factor in units.items():
        if rate.endswith(suffix):
            return int(float(rate[: -len(suffix)]) * factor)
    raise ValueError(rate)


def driver(args):
    results = []
    lab_id = str(os.getpid() % 100000)
    lab = f"twnl{lab_id}"
    port = 29600
    for rate in args.rates.split(","):
        subprocess.run([NETLAB, "up", "2", "--rate", rate, "--id", lab_id], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            for hook in args.hooks.split(";"):
                port += 1
                with tempfile.TemporaryDirectory() as tmp:
                    out = os.path.join(tmp, "result.json")
                    procs = [subprocess.Popen(
                        ["ip", "netns", "exec", f"{lab}h{r}", sys.executable, __file__,
                         "--worker", "--rank", str(r), "--lab", lab, "--port", str(port),
                         "--hook", hook, "--rate", rate, "--rate-bps", str(_rate_bps(rate)),
                         "--target", str(args.target), "--max-seconds", str(args.max_seconds),
                         "--out", out]) for r in (1, 0)]
                    codes = [p.wait(timeout=args.max_seconds + 300) for p in procs]
                    if any(codes) or not os.path.exists(out):
                        print(f"{rate} {hook}: failed {codes}", file=sys.stderr)
                        continue
                    with open(out) as f:
                        results.append(json.load(f))
                    print(json.dumps(results[-1]), flush=True)
        finally:
            subprocess.run([NETLAB, "down", "--id", lab_id], check=False,
                           stdout=subprocess.DEVNULL)
    return results


def table(results, args):
    load = args.load
    lines = [
        f"Time to {args.target:.0%} test accuracy (first 2 000 test images) on Fashion-MNIST, "
        "2 torch DDP processes (Gloo) in netlab namespaces joined by a tbf-limited link; "
        f"CNN of 46 730 parameters, batch 64 per rank, SGD with momentum; at most "
        f"{args.max_seconds:.0f} s of training per run. Command: `{args.command}`. Hardware: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
        f"other jobs (load average {load:.1f} at the end): compute times are inflated and "
        "noisy, the link times are real.",
        "",
        "`link (s)` is steps × bytes/step/rank × 8 / rate: the time the link alone needed, which "
        "the machine's load does not change (steps to the target are deterministic).",
        "",
        "| link | hook | bytes/step/rank | steps | link (s) | time to target (s) | vs fp32 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = {r["rate"]: r["seconds"] for r in results if r["hook"] == "torch fp32 all-reduce"}
    for r in results:
        seconds = r["seconds"]
        speedup = ""
        if seconds is not None and base.get(r["rate"]):
            speedup = f"{base[r['rate']] / seconds:.1f}x"
        shown = f"{seconds:.1f}" if seconds is not None else (
            f"not reached ({r['accuracy']:.1%} after {r['trained_seconds']:.0f} s)")
        link = r["steps"] * r["bytes_per_step"] * 8 / _rate_bps(r["rate"])
        lines.append(f"| {r['rate']} | {r['hook']} | {r['bytes_per_step']:,.0f} | {r['steps']} "
                     f"| {link:.1f} | {shown} | {speedup} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10mbit,100mbit")
    parser.add_argument("--hooks", default=";".join(HOOKS),
                        help="';'-separated names of HOOKS, or 'thinwire spec CODEC[+ef]'")
    parser.add_argument("--table", default=os.path.join(HERE, "netlab_tta.md"),
                        help="where the markdown table goes")
    parser.add_argument("--target", type=float, default=0.80)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--render", help="re-render the table from the JSON results of a run "
                        "(the .json file written beside the table)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lab", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hook", help=argparse.SUPPRESS)
    parser.add_argument("--rate", help=argparse.SUPPRESS)
    parser.add_argument("--rate-bps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        args.command, args.target, args.max_seconds = (
            saved["command"], saved["target"], saved["max_seconds"])
        results, args.load = saved["results"], saved["load"]
    else:
        args.command = "python/bench/netlab_tta.py " + " ".join(
            f"'{a}'" if " " in a or ";" in a else a for a in sys.argv[1:])
        results = driver(args)
        args.load = os.getloadavg()[0]
        with open(os.path.splitext(args.table)[0] + ".json", "w") as f:
            json.dump({"command": args.command, "target": args.target,
                       "max_seconds": args.max_seconds, "load": args.load,
                       "results": results}, f, indent=1)
    text = table(results, args)
    print(text)
    with open(args.table, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
