#!/usr/bin/python3
"""E2 (SPEC §7, issue 6 acceptance 3): dynamic tuning against a grid of fixed levels.

Called by ./run (which builds or finds the binary). For every data set × {GD, SGD} × codec family
× cost model it compares `--tuner dynamic` with every fixed level of the family's grid, on the
cost to reach ε = 1e-3 relative suboptimality (f − f*)/(f0 − f*), f0 = f(0) = log 2, f* from a
long full-precision run. Writes out/table.md, out/block.md (the docs/results.md block), out/
results.json, and PNGs under out/plots/ drawn by `thinwire report` (--replot: only re-draws them
from out/plots/curves/, the curves of the last run).

Costs: every worker's message of an iteration is priced once under the model (Σ_m C(b_m)); a
record's cumulative `cost` field is used where the binary writes one, else the cost is computed
here from the per-iteration bits (see price_iteration).
"""
import argparse
import concurrent.futures as cf
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "common"))
import twplot  # noqa: E402

EPS = 1e-3
CAP_FACTOR = 10  # a fixed level is stopped once it has spent 10× dynamic's cost to ε
M = 8
FRACTIONS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]  # k and density grid, fraction of d
LEVELS_S = [1, 2, 4, 8, 16, 64, 256]  # QSGD s grid
TOPK_QSGD_S = [2, 16]  # s of top-k + QSGD values at every k of the grid
TERNGRAD_BUCKETS = [16, 64, 256, 1024, 0]  # TernGrad's level (0 = one bucket)
QSGD_BASE = "bucket=0,norm=l2,coding=elias"

# The cost models (include/thinwire/tune/cost_model.hpp defaults); price() prices the fixed-size
# model broadcast for the uplink-only column, every other cost is the binary's own.
LINEAR = (50e-6, 1e9)  # α seconds, β bit/s
PACKET = (1460 * 8, 1.0, 0.0)  # P bits, c_p, c_0
ENERGY = (102 * 8, 25 * 8, 0.0, 0.0, 2.4e-7)  # P, H bits, E_0, E_p, e_bit
COSTS = {
    "bits": "bits",
    "linear": "linear:latency=50us,bandwidth=1Gbit",
    "packet": "packet:payload=1460B,header=40B,per_packet=1,per_message=0",
    "energy": "energy:payload=102B,header=25B,per_message=0,per_packet=0,per_bit=2.4e-7",
}
COST_UNITS = {"bits": "bits", "linear": "s", "packet": "packets", "energy": "J"}
# Every run reports its exact cost under every model (Σ C over every message it sent, uplink and
# downlink: the binary's `costs` field), whatever --cost its rule optimizes.
REPORT_COSTS = ";".join(COSTS.values())
LR_DECAY = 100  # SGD: γ_t = γ/(1 + t/100), so that uncompressed SGD reaches ε
FAMILIES = ["topk", "randk", "wangni", "qsgd", "terngrad", "topk_qsgd"]
UNBIASED = {"randk", "wangni", "qsgd", "terngrad"}


def price(model, bits):
    """C(b) of one message of `bits` bits (cost_model.hpp)."""
    if model == "bits":
        return bits
    if model == "linear":
        return LINEAR[0] + bits / LINEAR[1]
    if model == "packet":
        return PACKET[2] + PACKET[1] * math.ceil(bits / PACKET[0])
    p, h, e0, ep, eb = ENERGY
    return e0 + math.ceil(bits / p) * (ep + (p + h) * eb)


def cost_key(record, model):
    """The key of `model` in a record's `costs` (canonical specs start with the model's name)."""
    for k in record.get("costs", {}):
        if k.split(":")[0] == model:
            return k
    raise KeyError(f"record has no {model} cost: {sorted(record.get('costs', {}))}")


def exact_costs(record, models, down_cost):
    """(total under each model..., uplink-only under each model...) after this record's iteration:
    the binary's exact Σ C over every message; uplink-only subtracts the model broadcast, M − 1
    identity messages of one fixed size per iteration (`down_cost[m]` each)."""
    total = [record["costs"][cost_key(record, m)] for m in models]
    n = record["iter"]
    up = [t - n * (M - 1) * dc for t, dc in zip(total, down_cost)]
    return tuple(total + up)


# ----------------------------------------------------------------------------------------------
# Running the binary


class Runner:
    def __init__(self, binary, out, verbose):
        self.binary = binary
        self.out = out
        self.verbose = verbose
        self.sync = "allgather"
        self.cost_field = False
        self.header_bytes = 0.0  # identity message = header + 4 bytes per value (ps downlink)
        self.validation = ""
        self.seconds = 0.0
        self.count = 0

    def train(self, name, args, timeout=900, allow_diverge=False, stop=None):
        """Runs `thinwire train`; returns (metrics records, first line the config; diverged).

        A run that stops on a non-finite loss or gradient (--on-nonfinite error, exit 1) is
        "diverged" when allow_diverge: its records so far are kept. `stop(record)` is polled on
        every new record while the run goes on; when it returns true the run is ended (SIGTERM
        to the process started here) and the records so far are its result."""
        path = os.path.join(self.out, "runs", name + ".jsonl")
        err_path = os.path.join(self.out, "runs", name + ".err")
        cmd = ["nice", "-n", "5", self.binary, "train", "--metrics", path] + args
        t0 = time.time()
        records = []
        stopped = False
        with open(err_path, "w", encoding="utf-8") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            pending = ""
            pos = 0
            while True:
                try:
                    rc = proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    rc = None
                if time.time() - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"{name}: timed out after {timeout} s")
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as f:
                        f.seek(pos)
                        chunk = f.read()
                        pos = f.tell()
                    pending += chunk
                    *full, pending = pending.split("\n")
                    for line in full:
                        if line.strip():
                            records.append(json.loads(line))
                            if stop is not None and len(records) > 1 and stop(records[-1]):
                                stopped = True
                    if stopped and rc is None:
                        proc.terminate()
                        proc.wait()
                        rc = 0
                if rc is not None:
                    break
        with open(err_path, encoding="utf-8") as f:
            stderr = f.read()
        os.remove(err_path)
        self.seconds += time.time() - t0
        self.count += 1
        diverged = False
        if rc != 0 and not stopped:
            # Exit 1 is a runtime error: a non-finite loss or gradient, or a codec refusing a
            # diverged vector (QSGD's 2-norm beyond fp32): the run diverged.
            if allow_diverge and rc == 1 and ("finite" in stderr or "beyond the fp32" in stderr):
                diverged = True
            else:
                raise RuntimeError(f"{name}: {' '.join(cmd)}\n{stderr.strip()[-2000:]}")
        if os.path.exists(path):
            os.remove(path)  # up to 10^4 lines per run; the compact summary is what we keep
        if self.verbose:
            print(f"  {name}: {time.time() - t0:.1f} s, {len(records) - 1} records"
                  f"{' (diverged)' if diverged else ''}"
                  f"{' (stopped: ε/2 or cost cap)' if stopped else ''}",
                  flush=True)
        return records, diverged

    def probe(self, data, d):
        """Which sync the tuner runs with (master–worker `ps` once the binary tunes it, else
        allgather), whether records carry `cost`, and (ps) the size of the model broadcast."""
        base = ["--problem", "logistic:lambda=1e-3", "--data", data, "--batch-size", "0",
                "--workers", str(M), "--iterations", "2", "--lr", "0.1", "--momentum", "0",
                "--log-every", "1"]
        try:
            self.train("probe-ps", base + ["--sync", "ps", "--codec", "topk:k=2", "--tuner",
                                           "dynamic", "--cost", "bits"])
            self.sync = "ps"
        except RuntimeError:
            self.sync = "allgather"
        rec, _ = self.train("probe-cost", base + ["--sync", self.sync, "--codec", "identity",
                                                  "--cost", "bits"])
        self.cost_field = any("cost" in r for r in rec[1:])
        if self.sync == "ps":
            # Identity both ways: Δbits = 2(M − 1)·8·(header + 4d) per iteration.
            delta = rec[2]["bits"] - rec[1]["bits"]
            self.header_bytes = delta / (2 * (M - 1) * 8) - 4 * d

    def down_bits(self, d):
        return 8.0 * (self.header_bytes + 4 * d) if self.sync == "ps" else 0.0


# ----------------------------------------------------------------------------------------------
# Experiment set-up


def fmnist_subset(out, classes=(0, 6), rows=2000):
    """The first `rows` training images of the two classes as plain IDX files: the same rows as
    `fashion-mnist:classes=0/6,limit=2000`, without inflating all 60 000 images in every run."""
    import gzip
    import struct
    src = "/usr/share/datasets/fashion-mnist"
    with gzip.open(os.path.join(src, "train-labels-idx1-ubyte.gz")) as f:
        labels = f.read()[8:]
    with gzip.open(os.path.join(src, "train-images-idx3-ubyte.gz")) as f:
        images = f.read()[16:]
    keep = [i for i, y in enumerate(labels) if y in classes][:rows]
    img = os.path.join(out, "fmnist06-images-idx3-ubyte")
    lab = os.path.join(out, "fmnist06-labels-idx1-ubyte")
    with open(img, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(keep), 28, 28))
        for i in keep:
            f.write(images[784 * i:784 * (i + 1)])
    with open(lab, "wb") as f:
        f.write(struct.pack(">II", 0x801, len(keep)))
        f.write(bytes(labels[i] for i in keep))
    return f"idx:images={img},labels={lab},classes={classes[0]}/{classes[1]}"


def datasets(args, out):
    sets = {
        # Fashion-MNIST T-shirt/top (0) against shirt (6), the hardest pair: the first 2000 rows
        # of the pair (= fashion-mnist:classes=0/6,limit=2000). Raw pixels in [0, 1] make XᵀX/n
        # very ill-conditioned (κ ≈ 2·10⁴ at λ = 10⁻³: ~10⁴ GD steps to ε); λ = 0.1 brings
        # uncompressed GD to ε in ~300 steps, which the 20-minute budget allows.
        "fmnist": {"data": fmnist_subset(out), "d": 784, "lam": 0.1,
                   "label": "Fashion-MNIST 0 vs 6 (n = 2000, d = 784)"},
        # Gaussian features with covariance eigenvalues log-spaced over [10⁻³, 1], rotated;
        # 1000 rows per worker (with 250 rows and d = 1000 the shards' gradients differ so much
        # that top-k, even with error feedback, stalls above ε at every k).
        "synthetic": {"data": "synthetic:n=8000,d=200,cond=1000,noise=0.1,seed=7", "d": 200,
                      "lam": 1e-3,
                      "label": "synthetic, cond(Σ) = 10^3 (n = 8000, d = 200)"},
    }
    path = args.libsvm
    if path is None:
        path = os.path.join(out, "e2.svm")
        subprocess.run([sys.executable, os.path.join(HERE, "make_libsvm.py"), path, "--rows",
                        "8000"], check=True)
        sets["libsvm"] = {"data": f"libsvm:path={path},features=1000", "d": 1000, "lam": 1e-3,
                          "label": "LIBSVM, generated by make_libsvm.py (n = 8000, d = 1000, "
                                   "~25 non-zeros per row)"}
    else:
        d = 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                for tok in line.split()[1:]:
                    if ":" in tok:
                        d = max(d, int(tok.split(":")[0]))
        sets["libsvm"] = {"data": f"libsvm:path={os.path.abspath(path)},features={d}", "d": d,
                          "lam": 1e-3, "label": f"LIBSVM {os.path.basename(path)} (d = {d})"}
    return sets


def grid(family, d):
    """Fixed levels of a family: (label, codec spec, ρ̂) with ρ̂ a bound on ρ(θ) valid for every g
    (exact for random-k), used for the coupled step γ₀·ρ̂ of the fixed unbiased runs."""
    out = []
    counts = []
    for frac in FRACTIONS:
        k = max(1, round(frac * d))
        if k not in counts:
            counts.append(k)
    if family == "topk":
        for k in counts:
            out.append((f"k={k}", f"topk:k={k}+ef", 1.0))
    elif family == "randk":
        for k in counts:
            out.append((f"k={k}", f"randk:k={k}", k / d))
    elif family == "wangni":
        # ρ = ‖g‖²/Σ g_i²/p_i >= density: with p_i ∝ |g_i| (capped at 1), Σ g_i²/p_i <=
        # ‖g‖₁²/(density·d) <= ‖g‖²/density.
        for frac in FRACTIONS:
            out.append((f"δ={frac:g}", f"wangni:density={frac:g}", frac))
    elif family == "qsgd":
        # SPEC §2: E‖Q(u) − u‖² <= min(B/s², √B/s)·‖u‖², B = d (one bucket).
        for s in LEVELS_S:
            out.append((f"s={s}", f"qsgd:s={s},{QSGD_BASE}",
                        1.0 / (1.0 + min(d / s**2, math.sqrt(d) / s))))
    elif family == "terngrad":
        # ρ = ‖u‖²/Σ s_t|u_i| >= ‖u‖²/(‖u‖∞‖u‖₁) >= 1/√B per bucket.
        seen = set()
        for b in TERNGRAD_BUCKETS:
            eff = d if b == 0 or b >= d else b
            if eff in seen:
                continue
            seen.add(eff)
            out.append((f"B={b if b else 'd'}", f"terngrad:bucket={b}", 1.0 / math.sqrt(eff)))
    elif family == "topk_qsgd":
        for k in counts:
            for s in TOPK_QSGD_S:
                out.append((f"k={k},s={s}",
                            f"topk:k={k},values=qsgd,s={s},{QSGD_BASE}+ef", 1.0))
    return out


def dynamic_codec(family, d):
    """The configured codec of a dynamic run: the family and its fixed parameters. The biased
    top-k families run with error feedback (`+ef`) fixed and dynamic alike (the rule then looks
    at e + g): without it distributed top-k stalls far above ε (F-MNIST, k = 78: 0.04)."""
    return {"topk": "topk:k=1+ef", "randk": "randk:k=1", "wangni": "wangni:density=0.01",
            "qsgd": f"qsgd:s=16,{QSGD_BASE}", "terngrad": "terngrad:bucket=0",
            "topk_qsgd": f"topk:k=1,values=qsgd,s=16,{QSGD_BASE}+ef"}[family]


def common_args(ds, mode, cfg, runner):
    a = ["--problem", f"logistic:lambda={ds['lam']:g}", "--data", ds["data"], "--workers", str(M),
         "--sync", runner.sync, "--momentum", "0", "--seed", "1", "--log-every", "1",
         "--report-costs", REPORT_COSTS]
    if mode == "gd":
        a += ["--batch-size", "0", "--iterations", str(cfg["gd_iters"])]
    else:
        a += ["--batch-size", str(cfg["batch"]), "--iterations", str(cfg["sgd_iters"]),
              "--test-data", ds["data"], "--eval-every", str(cfg["eval_every"]),
              "--lr-decay", str(LR_DECAY)]
    return a


# ----------------------------------------------------------------------------------------------
# Turning records into curves


def curve(records, mode, cost_models, down_cost):
    """[(cost tuple, f)] in iteration order and the θ trace of a dynamic run; the cost tuple holds
    the exact total under each model, then the uplink-only cost under each (exact_costs).

    GD: the record of iteration i carries f(x_{i−1}) (the loss of the full gradient just
    computed), so it is paired with the cost of the first i − 1 iterations. SGD: test_loss (the
    full training objective, --test-data = the training set) is of x_i, after i iterations."""
    recs = [r for r in records[1:] if "iter" in r]
    cost_after = [tuple([0.0] * (2 * len(cost_models)))]  # cost after 0, 1, 2, ... iterations
    theta = []
    for r in recs:
        cost_after.append(exact_costs(r, cost_models, down_cost))
        if "theta" in r:
            theta.append((r["iter"], r["theta"], r.get("theta_s", 0), r.get("rho", 1.0)))
    points = []
    for i, r in enumerate(recs, start=1):
        if mode == "gd":
            f = r.get("loss")
            c = cost_after[i - 1]
        else:
            f = r.get("test_loss")
            c = cost_after[i]
        if f is None:
            continue
        points.append((c, f))
    return points, theta


def first_reach(points, fstar, f0, j):
    """(cost under model index j to reach ε or None, the cost spent when it was not reached,
    the smallest suboptimality seen)."""
    best = math.inf
    for c, f in points:
        sub = (f - fstar) / (f0 - fstar)
        best = min(best, sub)
        if sub <= EPS:
            return c[j], c[j], best
    last = points[-1][0][j] if points else 0.0
    return None, last, best


def thin(points, fstar, f0, limit=400):
    """Subsampled rows (cost under each model..., subopt) for the plots."""
    if not points:
        return []
    step = max(1, len(points) // limit)
    out = []
    for i, (c, f) in enumerate(points):
        if i % step == 0 or i == len(points) - 1:
            out.append(list(c) + [max((f - fstar) / (f0 - fstar), 1e-12)])
    return out


# ----------------------------------------------------------------------------------------------
# Step size and f*


def choose_step(runner, name, ds, cfg):
    """γ₀: among the powers of two for which uncompressed GD (identity codec) decreases the loss
    at every one of cfg['step_iters'] iterations, the one with the lowest final loss; scanned
    upwards until a step is not monotone or is worse twice. (The lowest loss alone picks steps at
    the edge of stability, where GD oscillates along the top eigenvector and top-k stalls.)"""
    base = ["--problem", f"logistic:lambda={ds['lam']:g}", "--data", ds["data"],
            "--workers", str(M), "--sync", runner.sync, "--momentum", "0", "--batch-size", "0",
            "--codec", "identity", "--iterations", str(cfg["step_iters"]), "--log-every", "1"]
    tried = []
    worse = 0
    best = (math.inf, None)
    for j in range(-8, 12):
        lr = 2.0**j
        rec, div = runner.train(f"{name}-step{j}", base + ["--lr", repr(lr)], allow_diverge=True)
        losses = [r.get("loss") for r in rec[1:]]
        ok = (not div and len(losses) == cfg["step_iters"] and
              all(x is not None and math.isfinite(x) for x in losses) and
              all(b <= a for a, b in zip(losses, losses[1:])))
        loss = losses[-1] if ok else math.inf
        tried.append((lr, loss))
        if not ok:
            break
        if loss < best[0]:
            best = (loss, lr)
            worse = 0
        else:
            worse += 1
            if worse == 2:
                break
    return best[1], tried


def choose_step_sgd(runner, name, ds, cfg):
    """The SGD step: γ₀, γ₀/2, γ₀/4, ... with uncompressed SGD (same batch and evaluation as
    the sweep, at most cfg['sgd_scan_iters'] iterations); the one that first reaches ε, else the
    lowest suboptimality seen; scanned down until worse twice. (A GD step is too large for
    minibatches: its noise floor is above ε on some data sets.)"""
    f0, fstar = math.log(2.0), ds["fstar_run"]
    a = common_args(ds, "sgd", {**cfg, "sgd_iters": cfg["sgd_scan_iters"]}, runner)
    tried = []
    best = (math.inf, math.inf, None)
    worse = 0
    for j in range(8):
        lr = ds["gamma"] / 2.0**j

        def stop(r):
            f = r.get("test_loss")
            return f is not None and (f - fstar) / (f0 - fstar) <= EPS / 2

        rec, div = runner.train(f"{name}-sgdstep{j}", a + ["--codec", "identity", "--lr",
                                                            repr(lr)], allow_diverge=True,
                                stop=stop)
        subs = [(r["iter"], (r["test_loss"] - fstar) / (f0 - fstar)) for r in rec[1:]
                if r.get("test_loss") is not None]
        reach = next((it for it, sub in subs if sub <= EPS), math.inf)
        low = min((sub for _, sub in subs), default=math.inf)
        key = (reach, low if not div else math.inf, lr)
        tried.append((lr, reach, low))
        if key[:2] < best[:2]:
            best = key
            worse = 0
        else:
            worse += 1
            if worse == 2:
                break
    return best[2], tried


def long_run(runner, name, ds, gamma, cfg):
    """f* from a long full-precision run: heavy-ball GD (momentum 0.9, identity codec)."""
    n = cfg["fstar_iters"]
    rec, _ = runner.train(
        f"{name}-fstar",
        ["--problem", f"logistic:lambda={ds['lam']:g}", "--data", ds["data"], "--workers",
         str(M), "--sync", runner.sync, "--momentum", "0.9", "--batch-size", "0", "--codec",
         "identity", "--lr", repr(gamma), "--iterations", str(n), "--log-every", str(n // 10)])
    losses = [r["loss"] for r in rec[1:] if "loss" in r]
    return losses[-1], losses[-2], losses[0]


# ----------------------------------------------------------------------------------------------
# The sweep


def tasks_for(dname, ds, mode, cfg, runner, families=None, halvings=0):
    """Every run of one data set × mode (of `families`, default all) at the step γ₀/2^halvings:
    (key, family, kind, label, step, cost model, args)."""
    gamma = (ds["gamma"] if mode == "gd" else ds["gamma_sgd"]) / 2.0**halvings
    step_name = "γ₀" if halvings == 0 else f"γ₀/{2**halvings}"
    base = common_args(ds, mode, cfg, runner)
    out = []
    for fam in families or cfg["families"]:
        # One step rule for every run, fixed and dynamic. A fixed run's trajectory does not
        # depend on --cost: one run serves every model (its `costs` field prices it exactly).
        for label, spec, _rho in grid(fam, ds["d"]):
            key = f"{dname}-{mode}-{fam}-fixed-{spec}-{step_name}"
            a = base + ["--codec", spec, "--lr", repr(gamma), "--cost", COSTS["bits"]]
            out.append({"key": key, "family": fam, "kind": "fixed", "label": label,
                        "step": step_name, "model": None, "args": a})
        for model in cfg["costs"]:
            key = f"{dname}-{mode}-{fam}-dynamic-{model}-{step_name}"
            a = base + ["--codec", dynamic_codec(fam, ds["d"]), "--tuner", "dynamic", "--cost",
                        COSTS[model], "--lr", repr(gamma)]
            out.append({"key": key, "family": fam, "kind": "dynamic", "label": "dynamic",
                        "step": step_name, "model": model, "args": a})
    return out


def nobody_reached(rs, fam, fstar):
    """Whether no run of the family (no fixed level, no dynamic run under any model) reached ε."""
    return not any(first_reach(r["points"], fstar, math.log(2.0), 0)[0] is not None
                   for r in rs if r["family"] == fam)


def execute(runner, task, mode, cfg, fstar, f0, ds_d, cap=None):
    """One run, ended once it is below ε/2 (the cost to ε is then known under every model), or,
    for a fixed level, once it has spent more than `cap[m]` (CAP_FACTOR × dynamic's cost to ε)
    under every cost model m: it is then known to cost more than that."""
    field = "loss" if mode == "gd" else "test_loss"
    models = list(cfg["costs"])
    state = {"capped": False}

    def stop(record):
        state["cum"] = [record["costs"][cost_key(record, m)] for m in models]
        f = record.get(field)
        if f is not None and (f - fstar) / (f0 - fstar) <= EPS / 2:
            return True
        if cap is not None and all(c > cap[j] for j, c in enumerate(state["cum"])):
            state["capped"] = True
            return True
        return False

    name = task["key"]
    for a, b in (("/", "_"), (":", "_"), (",", "_"), ("=", ""), ("ρ̂", "rho"), ("γ₀", "g0"),
                 ("θ", "th"), ("(", ""), (")", "")):
        name = name.replace(a, b)
    rec, div = runner.train(name, task["args"], allow_diverge=True, stop=stop)
    models = list(cfg["costs"])
    down_cost = [price(m, runner.down_bits(ds_d)) for m in models]
    points, theta = curve(rec, mode, models, down_cost)
    return {**{k: v for k, v in task.items() if k != "args"}, "diverged": div,
            "capped": state["capped"], "points": points, "theta": theta,
            "iterations": len(rec) - 1}


# ----------------------------------------------------------------------------------------------
# Comparison


def fmt(x, model):
    if x is None:
        return "—"
    if model == "bits":
        return f"{x / 1e6:.3g} M" if x >= 1e5 else f"{x:.3g}"
    if model == "packet":
        return f"{x:.4g}"
    return f"{x:.3g}"


def compare(results, fstar, f0, j, model, ju):
    """One row of the table for the runs of one family × cost model (index j of the exact total
    cost, ju of the uplink-only cost)."""
    dyn = [r for r in results if r["kind"] == "dynamic" and r["model"] == model]
    fixed = [r for r in results if r["kind"] == "fixed" and r["model"] in (None, model)]
    d_cost, d_spent, d_best = (first_reach(dyn[0]["points"], fstar, f0, j) if dyn else
                               (None, 0.0, math.inf))
    levels = {}
    for r in fixed:
        c, spent, best = first_reach(r["points"], fstar, f0, j)
        lb = math.inf if r["diverged"] else spent  # a lower bound when never reached
        cur = levels.get(r["label"])
        entry = {"cost": c, "bound": c if c is not None else lb, "reached": c is not None,
                 "step": r["step"], "run": r,
                 "cost_up": first_reach(r["points"], fstar, f0, ju)[0]}
        if cur is None or entry["bound"] < cur["bound"]:
            levels[r["label"]] = entry
    reached = [(e["cost"], lab, e["step"]) for lab, e in levels.items() if e["reached"]]
    best = min(reached) if reached else None
    bounds = sorted((e["bound"], e["reached"]) for e in levels.values())
    n = len(bounds)
    mid = [bounds[(n - 1) // 2], bounds[n // 2]] if n else [(math.inf, False)] * 2
    median = statistics.mean(b for b, _ in mid)
    median_exact = all(ok for _, ok in mid)
    row = {"model": model, "step": dyn[0]["step"] if dyn else "γ₀", "dyn": d_cost, "dyn_spent": d_spent, "dyn_best_sub": d_best,
           "best": best, "median": median, "median_exact": median_exact,
           "levels_reached": len(reached), "levels": n, "level_runs": levels}
    row["undetermined"] = False
    row["nobody"] = d_cost is None and best is None
    if d_cost is None:
        row["beats_best"] = False
        row["ratio_best"] = None
    elif best is None:
        # No fixed level reached ε: dynamic is within 1.1× of the best level when it reached ε
        # before any level had spent 1/1.1 of its cost; otherwise it cannot be decided here.
        row["beats_best"] = all(d_cost <= 1.1 * e["bound"] for e in levels.values())
        row["undetermined"] = not row["beats_best"]
        row["ratio_best"] = None
    else:
        row["beats_best"] = d_cost <= 1.1 * best[0] * (1 + 1e-12)
        row["ratio_best"] = best[0] / d_cost if d_cost > 0 else math.inf
    # Uplink-only: the same runs, the model broadcast left out.
    d_up = first_reach(dyn[0]["points"], fstar, f0, ju)[0] if dyn else None
    ups = [e["cost_up"] for e in levels.values() if e["cost_up"] is not None]
    row["ratio_best_up"] = (min(ups) / d_up if ups and d_up else None)
    # The grid is flat where the median level costs < 2.2× the best: there only "no worse than
    # the best" means something.
    row["flat"] = best is not None and median < 2.2 * best[0]
    if d_cost is None:
        row["ratio_median"] = None
        row["beats_median"] = False
    else:
        row["ratio_median"] = median / d_cost if d_cost > 0 else math.inf
        row["beats_median"] = row["flat"] or row["ratio_median"] >= 2
    row["pass"] = row["beats_best"] and row["beats_median"]
    return row


# ----------------------------------------------------------------------------------------------
# Figures: drawn by `thinwire report` (experiments/common/twplot.py). Each curve is written as a
# metrics-format file under out/plots/curves/ (its "loss" the suboptimality, its "cost" the cost
# under the figure's model; or θ per iteration), out/plots/figures.json lists the figures, and
# draw() renders them; `e2.py --replot` re-draws from those files without running anything.


def cost_figure(outdir, tag, title, fam_rows, j, model, families):
    """Suboptimality against cost under `model` (index j of the points' cost tuples), one panel
    per family: every fixed level and dynamic (highlighted). Returns its figures.json entry."""
    files, labels, highlight = [], {}, []
    for fam in families:
        _, curves = fam_rows[fam]
        for i, (label, pts, dyn) in enumerate(curves):
            path = os.path.join(outdir, "curves", tag, f"{fam}-{i:02d}.jsonl")
            twplot.write_curve(path, {"family": fam, "cost": COSTS[model]},
                               [{"iter": n, "cost": p[j], "loss": p[-1]}
                                for n, p in enumerate(pts)])
            files.append(path)
            labels[path] = label
            if dyn:
                highlight.append(path)
    return {"name": tag, "kind": "cost", "model": model, "title": title, "files": files,
            "labels": labels, "highlight": highlight}


def theta_figure(outdir, tag, title, theta_runs, families, models, d):
    """θ_t of rank 0 over iterations of each family's dynamic runs, one panel per family, one
    line per cost model (TernGrad's bucket 0, one bucket of all d values, drawn as d)."""
    files, labels = [], {}
    for fam in families:
        for model in models:
            th = theta_runs.get((fam, model), [])
            if not th:
                continue
            path = os.path.join(outdir, "curves", tag, f"{fam}-{model}.jsonl")
            step = max(1, len(th) // 600)
            twplot.write_curve(path, {"family": fam, "cost": COSTS[model]},
                               [{"iter": t[0], "theta": d if fam == "terngrad" and t[1] == 0
                                 else t[1]} for t in th[::step]])
            files.append(path)
            labels[path] = model
    return {"name": tag, "kind": "theta", "title": title, "files": files, "labels": labels,
            "highlight": []}


def draw(outdir, thinwire):
    """Renders every figure of outdir/figures.json to outdir/NAME.png."""
    with open(os.path.join(outdir, "figures.json"), encoding="utf-8") as f:
        figures = json.load(f)
    for fig in figures:
        if not fig["files"]:
            continue
        common = {"labels": fig["labels"], "title": fig["title"], "panel_by": "family",
                  "log_y": True}
        if fig["kind"] == "cost":
            pngs = twplot.report(
                thinwire, fig["files"], os.path.join(outdir, "report", fig["name"]), x=["cost"],
                x_label=f"cost ({COST_UNITS[fig['model']]}, log scale)",
                y_label="suboptimality (f − f*)/(f₀ − f*)", y_range="1e-5:2",
                hlines=[f"{EPS:g}=ε"], highlight=fig["highlight"], figures=["loss_vs_cost"],
                **common)
            png = pngs.get("loss_vs_cost")
        else:
            pngs = twplot.report(thinwire, fig["files"],
                                 os.path.join(outdir, "report", fig["name"]),
                                 figures=["theta_vs_iter"], **common)
            png = pngs.get("theta_vs_iter")
        if png:
            shutil.copyfile(png, os.path.join(outdir, fig["name"] + ".png"))
    print(f"e2: {len(figures)} figures in {outdir}", flush=True)


# ----------------------------------------------------------------------------------------------
# Main


def config(quick):
    if quick:
        return {"gd_iters": 300, "sgd_iters": 300, "batch": 32, "eval_every": 5,
                "step_iters": 50, "fstar_iters": 2000, "sgd_scan_iters": 300, "families": FAMILIES,
                "costs": list(COSTS), "datasets": ["synthetic"], "modes": ["gd"]}
    return {"gd_iters": 2000, "sgd_iters": 1500, "batch": 32, "eval_every": 5,
            "step_iters": 100, "fstar_iters": 6000, "sgd_scan_iters": 600, "families": FAMILIES,
            "costs": list(COSTS), "datasets": ["fmnist", "synthetic", "libsvm"],
            "modes": ["gd", "sgd"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--thinwire", required=True)
    ap.add_argument("--libsvm")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--command", default="experiments/e2_dynamic_tuning/run")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--replot", action="store_true",
                    help="only re-draw the figures from the curves of the last run (out/plots/)")
    args = ap.parse_args()
    cfg = config(args.quick)
    out = args.out
    if args.replot:
        draw(os.path.join(out, "plots"), args.thinwire)
        return
    if os.path.isdir(os.path.join(out, "runs")):
        shutil.rmtree(os.path.join(out, "runs"))
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    t_start = time.time()
    runner = Runner(args.thinwire, out, args.verbose)
    sets = datasets(args, out)
    runner.probe(sets["synthetic"]["data"], sets["synthetic"]["d"])
    print(f"e2: sync {runner.sync}, cost field in records: {runner.cost_field}", flush=True)

    # γ₀ and f* per data set.
    for dname in cfg["datasets"]:
        ds = sets[dname]
        ds["gamma"], ds["step_scan"] = choose_step(runner, dname, ds, cfg)
        ds["fstar_run"], ds["fstar_prev"], _ = long_run(runner, dname, ds, ds["gamma"], cfg)
        ds["gamma_sgd"], ds["sgd_scan"] = (choose_step_sgd(runner, dname, ds, cfg)
                                           if "sgd" in cfg["modes"] else (None, []))
        print(f"e2: {dname}: γ₀ = {ds['gamma']:g} (SGD {ds['gamma_sgd']}), long-run f = "
              f"{ds['fstar_run']:.10g} (previous log {ds['fstar_prev']:.10g})", flush=True)

    # The sweep, two runs at a time: the dynamic runs first, then the fixed levels, each stopped
    # at ε/2 or at CAP_FACTOR × the dynamic run's cost to ε under every cost model.
    jobs = []
    for dname in cfg["datasets"]:
        for mode in cfg["modes"]:
            for t in tasks_for(dname, sets[dname], mode, cfg, runner):
                jobs.append((dname, mode, t))
    print(f"e2: {len(jobs)} runs", flush=True)
    results = {}
    done = [0]
    failures = []

    def sweep(batch, caps):
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futs = {}
            for dname, mode, t in batch:
                cap = caps.get((dname, mode, t["family"]))
                fut = pool.submit(execute, runner, t, mode, cfg, sets[dname]["fstar_run"],
                                  math.log(2.0), sets[dname]["d"], cap)
                futs[fut] = (dname, mode)
            for fut in cf.as_completed(futs):
                dname, mode = futs[fut]
                try:
                    results.setdefault((dname, mode), []).append(fut.result())
                except Exception as e:  # one broken run must not lose the sweep
                    print(f"e2: run failed: {e}", flush=True)
                    failures.append(str(e))
                done[0] += 1
                if done[0] % 25 == 0:
                    print(f"e2: {done[0]}/{len(jobs)} runs, {time.time() - t_start:.0f} s",
                          flush=True)

    def caps_of(batch):
        caps = {}
        for dname, mode, fam in {(dn, md, t["family"]) for dn, md, t in batch}:
            ds = sets[dname]
            dyn = {r["model"]: r for r in results[(dname, mode)]
                   if r["family"] == fam and r["kind"] == "dynamic"}
            cap = []
            for j, m in enumerate(cfg["costs"]):
                c = (first_reach(dyn[m]["points"], ds["fstar_run"], math.log(2.0), j)[0]
                     if m in dyn else None)
                cap.append(math.inf if c is None else CAP_FACTOR * c)
            caps[(dname, mode, fam)] = cap
        return caps

    def run_batch(batch):
        sweep([j for j in batch if j[2]["kind"] == "dynamic"], {})
        sweep([j for j in batch if j[2]["kind"] == "fixed"], caps_of(batch))

    run_batch(jobs)
    # Step fallback (part of the protocol, fixed before the runs): a family none of whose runs
    # (fixed or dynamic) reached ε at γ₀ says nothing about the rule, so it is run again, every
    # level and every dynamic run, at γ₀/2, then γ₀/4, then γ₀/8, until some run reaches ε; its
    # rows report the runs at that step, or the γ₀ runs if no step helped.
    at_step0 = {}
    for halvings in (1, 2, 3):
        stuck = [(dn, md, fam) for (dn, md), rs in results.items() for fam in cfg["families"]
                 if nobody_reached(rs, fam, sets[dn]["fstar_run"])]
        if not stuck:
            break
        batch = []
        for dn, md, fam in stuck:
            keep = [r for r in results[(dn, md)] if r["family"] == fam]
            at_step0.setdefault((dn, md, fam), keep)
            results[(dn, md)] = [r for r in results[(dn, md)] if r["family"] != fam]
            batch += [(dn, md, t) for t in tasks_for(dn, sets[dn], md, cfg, runner, [fam],
                                                     halvings)]
        print(f"e2: step fallback γ₀/{2**halvings}: {len(stuck)} families, {len(batch)} runs",
              flush=True)
        jobs += batch
        run_batch(batch)
    for (dn, md, fam), rs0 in at_step0.items():
        if nobody_reached(results[(dn, md)], fam, sets[dn]["fstar_run"]):
            results[(dn, md)] = [r for r in results[(dn, md)] if r["family"] != fam] + rs0

    # f* = the long run's value, or anything lower any run saw (then the long run was short).
    for dname in cfg["datasets"]:
        ds = sets[dname]
        seen = [f for mode in cfg["modes"] for r in results[(dname, mode)]
                for _, f in r["points"] if f is not None and math.isfinite(f)]
        ds["fstar"] = min([ds["fstar_run"]] + seen)
        gd = [r for r in results[(dname, "gd")] if r["points"]] if "gd" in cfg["modes"] else []
        ds["f0"] = gd[0]["points"][0][1] if gd else math.log(2.0)

    models = cfg["costs"]
    table = []
    plots = os.path.join(out, "plots")
    if os.path.isdir(plots):
        shutil.rmtree(plots)
    figures = []
    for dname in cfg["datasets"]:
        ds = sets[dname]
        for mode in cfg["modes"]:
            rs = results[(dname, mode)]
            theta_runs = {}
            for j, model in enumerate(models):
                fam_rows = {}
                for fam in cfg["families"]:
                    fr = [r for r in rs if r["family"] == fam]
                    row = compare(fr, ds["fstar"], ds["f0"], j, model, j + len(models))
                    row.update({"dataset": dname, "mode": mode, "family": fam})
                    table.append(row)
                    curves = []
                    for lab, e in row["level_runs"].items():
                        curves.append((f"{lab} ({e['step']})",
                                       thin(e["run"]["points"], ds["fstar"], ds["f0"]), False))
                    dyn = [r for r in fr if r["kind"] == "dynamic" and r["model"] == model]
                    if dyn:
                        curves.append(("dynamic", thin(dyn[0]["points"], ds["fstar"], ds["f0"]),
                                       True))
                        theta_runs[(fam, model)] = dyn[0]["theta"]
                    fam_rows[fam] = (row, curves)
                figures.append(cost_figure(plots, f"{dname}-{mode}-{model}",
                                           f"{ds['label']}, {mode.upper()}, M = {M}", fam_rows,
                                           j, model, cfg["families"]))
            figures.append(theta_figure(plots, f"{dname}-{mode}-theta",
                                        f"{ds['label']}, {mode.upper()}, dynamic runs (rank 0)",
                                        theta_runs, cfg["families"], models, ds["d"]))
    with open(os.path.join(plots, "figures.json"), "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=1, ensure_ascii=False)
    try:
        draw(plots, args.thinwire)
    except RuntimeError as e:  # the table must not be lost: re-draw later with --replot
        print(f"e2: figures failed: {e}", flush=True)
    elapsed = time.time() - t_start
    write_outputs(args, cfg, sets, runner, table, out, elapsed, failures)


def write_outputs(args, cfg, sets, runner, table, out, elapsed, failures=()):
    models = cfg["costs"]
    lines = []
    lines.append("| data | alg | family | cost model | dynamic | best fixed (level, step) | "
                 "median fixed | best/dyn | median/dyn | best/dyn uplink only | levels reaching ε | "
                 "result |")
    lines.append("|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in table:
        m = r["model"]
        dyn = fmt(r["dyn"], m) if r["dyn"] is not None else f"> {fmt(r['dyn_spent'], m)}"
        if r["step"] != "γ₀":
            dyn += f" ({r['step']})"
        if r["best"] is not None:
            best = f"{fmt(r['best'][0], m)} ({r['best'][1]}, {r['best'][2]})"
        else:
            best = "none reached ε"
        med = ("" if r["median_exact"] else "≥ ") + (fmt(r["median"], m)
                                                      if math.isfinite(r["median"]) else "∞")
        rb = f"{r['ratio_best']:.2f}" if r["ratio_best"] is not None else "—"
        rbu = f"{r['ratio_best_up']:.2f}" if r["ratio_best_up"] is not None else "—"
        if r["ratio_median"] is None:
            rm = "—"
        elif math.isinf(r["ratio_median"]):
            rm = "∞"
        else:
            rm = ("" if r["median_exact"] else "≥ ") + f"{r['ratio_median']:.2f}"
        if r["pass"]:
            res = "**pass**"
        else:
            why = []
            if r["nobody"]:
                why.append("no run reached ε")
            elif r["dyn"] is None:
                why.append("dynamic never reached ε")
            else:
                if r["undetermined"]:
                    why.append("undecided: no level reached ε, but some stopped (cap) before "
                               "spending dynamic's cost")
                elif not r["beats_best"]:
                    why.append("> 1.1× best fixed")
                if not r["beats_median"]:
                    why.append("> ½ median")
            res = "**fail**: " + ", ".join(why)
        if r["flat"]:
            rm += " (flat)"
        lines.append(f"| {r['dataset']} | {r['mode'].upper()} | {r['family']} | {m} | {dyn} | "
                     f"{best} | {med} | {rb} | {rm} | {rbu} | "
                     f"{r['levels_reached']}/{r['levels']} | {res} |")
    table_md = "\n".join(lines) + "\n"
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table_md)
    n_pass = sum(r["pass"] for r in table)
    n_best = sum(r["beats_best"] for r in table)
    n_med = sum(r["beats_median"] for r in table)
    per_group = {}
    for r in table:
        g = per_group.setdefault((r["family"], r["model"]), [0, 0])
        g[0] += r["pass"]
        g[1] += 1
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"sync": runner.sync, "config": cfg,
                   "datasets": {k: {kk: vv for kk, vv in v.items()} for k, v in sets.items()
                                if "gamma" in v},
                   "rows": [{k: v for k, v in r.items() if k != "level_runs"} for r in table],
                   "runs": runner.count, "seconds": elapsed}, f, indent=1, default=str)

    b = []
    b.append(f"Command: `{args.command}`" + (" (the `--quick` subset)" if args.quick else "") +
             f" — {runner.count} runs of `thinwire train`, {elapsed / 60:.1f} min on the shared "
             f"2-core VM (two runs at a time, `nice -n 5`).\n")
    b.append(f"Setting: L2-regularized logistic regression (λ below, no bias, w₀ = 0), M = {M} "
             f"thread workers, `--sync {runner.sync}`"
             + (" (the tuner's master–worker `ps` was not available in this binary; every "
                "worker's message is priced once, as an uplink to a master would be)"
                if runner.sync != "ps" else "")
             + f", no momentum, seed 1. GD: full batch, at most {cfg['gd_iters']} iterations. "
             f"SGD: {cfg['batch']} rows per worker per step, decreasing step γ_t = γ₀/(1 + "
             f"t/{LR_DECAY}) (`--lr-decay {LR_DECAY}`), at most {cfg['sgd_iters']} "
             f"iterations, f evaluated on the whole training set every {cfg['eval_every']} "
             "iterations. ε = 10⁻³ on the relative suboptimality (f − f*)/(f₀ − f*), f₀ = f(0) "
             "= log 2; f* is the final value of a long full-precision run (heavy-ball GD, "
             f"momentum 0.9, identity codec, {cfg['fstar_iters']} iterations), or the lowest "
             "value any run reached if lower.\n")
    b.append("| data set | `--data` | λ | γ₀ GD | γ₀ SGD | f* | long run: last two logged "
             "values |")
    b.append("|---|---|---:|---:|---:|---:|---|")
    for dname in cfg["datasets"]:
        ds = sets[dname]
        spec = ds["data"].replace(out + "/", "out/")
        g_sgd = f"{ds['gamma_sgd']:g}" if ds.get("gamma_sgd") else "—"
        b.append(f"| {ds['label']} | `{spec}` | {ds['lam']:g} | {ds['gamma']:g} | {g_sgd} | "
                 f"{ds['fstar']:.8f} | {ds['fstar_prev']:.8f}, {ds['fstar_run']:.8f} |")
    b.append("")
    b.append("Step sizes: γ₀ is the power of two with the lowest loss after "
             f"{cfg['step_iters']} iterations of uncompressed GD among those whose loss "
             "decreases at every iteration (scanned upwards from 2⁻⁸); for SGD the first of "
             "γ₀, γ₀/2, γ₀/4, … with which uncompressed SGD (with the decreasing step) reaches ε "
             f"soonest (else gets lowest) in {cfg['sgd_scan_iters']} iterations. One step rule "
             "for every run: the same γ₀ serves every fixed level, every family and the "
             "dynamic runs of a data set and algorithm (no `--lr-coupling`; the rule predicts "
             "the decrease of that step, docs/tuning.md). A diverged run (non-finite loss) "
             "never reaches ε. Step fallback: a family none of whose runs (fixed or dynamic, "
             "any cost model) reaches ε at γ₀ is run again, all of it, at γ₀/2, then γ₀/4, then "
             "γ₀/8, until some run does; its rows report the runs at that step (marked beside "
             "the dynamic cost), or at γ₀ if no step helped.\n")
    b.append("Top-k and top-k + QSGD run with error feedback (`+ef`), fixed levels and dynamic "
             "alike (the rule is applied to e + g): without it, distributed top-k stalls far "
             "above ε (Fashion-MNIST, k = 78, 2000 iterations: 0.04). "
             "Grid of fixed levels: k and Wangni's density at 0.1, 0.3, 1, 3, 10, 30 % of d "
             "(k rounded, at least 1; duplicates dropped); QSGD s ∈ {1, 2, 4, 8, 16, 64, 256} "
             f"(`{QSGD_BASE}`); TernGrad bucket ∈ {{16, 64, 256, 1024, d}} (its level); top-k + "
             f"QSGD every k of the grid × s ∈ {{{', '.join(map(str, TOPK_QSGD_S))}}}. Dynamic "
             "runs start from the same family spec (QSGD may also pick buckets 64/256/1024, "
             "top-k + QSGD any k on a √2 grid × s ∈ {1 … 256}).\n")
    b.append("Cost models (per message of b bits, header included): `bits` C = b; `" +
             COSTS["linear"] + "` C = α + b/β seconds; `" + COSTS["packet"] + "` C = ⌈b/P⌉ "
             "packets; `" + COSTS["energy"] + "` C = ⌈b/P⌉·(P+H)·e_bit joules. Every cost is "
             "exact: the binary prices every message every rank sent (the workers' uplinks and "
             "the server's model broadcast to the 7 workers) under all four models "
             "(`--report-costs`, the `costs` field of each record); the dynamic runs optimize "
             "the model of their row (`--cost`). \"best/dyn uplink only\" leaves the broadcast "
             "(identity, the same for every level) out.\n")
    b.append("Every run ends once its suboptimality is below ε/2 (its cost to ε is then known), a "
             f"fixed level also once it has spent {CAP_FACTOR}× the dynamic run's cost to ε under "
             "every cost model (it cannot be the best then), or at the iteration cap. "
             "\"best/dyn\" is the best fixed level's cost over dynamic's (≥ 1: dynamic is no "
             "more expensive); \"median/dyn\" the median over the grid's levels, where a level "
             "that never reached ε counts with the cost it had spent when it stopped (a lower "
             "bound, marked ≥; ∞ for diverged). A row passes when dynamic costs ≤ 1.1× the best "
             "fixed level (best/dyn ≥ 0.91) and, unless the grid is flat (median < 2.2× best, "
             "marked), ≤ ½ the median (median/dyn ≥ 2).\n")
    b.append(table_md)
    if failures:
        b.append(f"{len(failures)} runs failed with an error and are missing from the table:\n")
        for e in failures:
            b.append("    " + e.splitlines()[0][:300])
        b.append("")
    n_nobody = sum(r["nobody"] for r in table)
    b.append(f"**Summary: {n_pass} of {len(table)} rows pass** (dynamic ≤ 1.1× best fixed: "
             f"{n_best}; ≤ ½ median or flat grid: {n_med}; rows where no run reached ε: "
             f"{n_nobody}). Per family × cost model (rows passing, over data sets × GD/SGD):\n")
    hdr = "| family | " + " | ".join(models) + " |"
    b.append(hdr)
    b.append("|---|" + "---:|" * len(models))
    for fam in cfg["families"]:
        b.append(f"| {fam} | " + " | ".join(f"{per_group[(fam, m)][0]}/{per_group[(fam, m)][1]}"
                                           for m in models) + " |")
    b.append("")
    imgs = os.path.join(HERE, "figures.md")
    if os.path.exists(imgs):
        b.append(open(imgs, encoding="utf-8").read().rstrip() + "\n")
    analysis = os.path.join(HERE, "analysis.md")
    if os.path.exists(analysis) and not args.quick:
        b.append(open(analysis, encoding="utf-8").read().rstrip() + "\n")
    with open(os.path.join(out, "block.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(b))
    print(f"e2: {n_pass}/{len(table)} rows pass; {runner.count} runs in {elapsed:.0f} s; "
          f"table in {os.path.join(out, 'table.md')}", flush=True)


if __name__ == "__main__":
    main()
