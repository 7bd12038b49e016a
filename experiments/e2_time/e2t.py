#!/usr/bin/env python3
"""E2-time: `--cost auto` against fixed levels and uncompressed, wall-clock time to ε on netlab.

For each scenario (a netlab lab of M = 4 MPI ranks, one per namespace, tbf-shaped at a rate, or a
rate that `tc qdisc change` switches at a known time after the training starts) it runs the same
logistic-regression problem (full-batch GD, one step rule for every run) with
  uncompressed   --codec identity
  fixed s        --codec qsgd:s=S,bucket=512,norm=max,coding=packed for each S of the grid
  dynamic        the same family, --tuner dynamic --cost auto:window=W (QSGD's s and bucket per
                 iteration, or uncompressed where the estimated link makes compression not pay)
and reports the wall-clock time (wall_s of the metrics, from the start of training) at which the
training loss first reaches f* + ε·(f0 − f*). f* is the loss of a long uncompressed threads run
(deterministic, the same data). A run stops once it reached the target (or at its cap).
linkcheck runs on every fixed-rate lab for α (1-byte half round trip) and β (ring shift), against
which the dynamic run's online estimate is compared.
"""
import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NETLAB = os.path.join(ROOT, "experiments", "netlab", "netlab")
sys.path.insert(0, os.path.join(ROOT, "experiments", "common"))
import twplot  # noqa: E402

PREFIX = "twet"
M = 4
D = 20000
DATA = f"synthetic:n=1000,d={D},cond=100,noise=0.1,seed=7"
PROBLEM = "logistic:lambda=1e-3"
STEP = ["--lr", "2", "--momentum", "0", "--batch-size", "0"]
EPS = 1e-3
GRID = [1, 3, 7, 15, 127]  # QSGD levels s (packed: 1 + ⌈log2(s+1)⌉ bits per element)
QSGD = "qsgd:s={},bucket=512,norm=max,coding=packed"
WINDOW = 16
CAP = 40.0  # seconds of training after which a run that has not reached the target stops


def methods():
    out = [("uncompressed", ["--codec", "identity"])]
    for s in GRID:
        out.append((f"qsgd s={s}", ["--codec", QSGD.format(s)]))
    out.append(("dynamic auto", ["--codec", QSGD.format(7), "--tuner", "dynamic", "--cost",
                                 f"auto:window={WINDOW}"]))
    return out


def scenarios(quick):
    s = [
        {"key": "10mbit", "rate": "10mbit", "label": "10 Mbit/s"},
        {"key": "100mbit", "rate": "100mbit", "label": "100 Mbit/s"},
        {"key": "1gbit", "rate": "1gbit", "label": "1 Gbit/s"},
        {"key": "10mbit-1gbit", "rate": "10mbit", "change": "1gbit", "at": 1.0,
         "label": "10 Mbit/s → 1 Gbit/s at 1.0 s"},
    ]
    return s[:1] if quick else s


def rate_bps(rate):
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    for u, f in units.items():
        if rate.endswith(u):
            return float(rate[: -len(u)]) * f
    raise ValueError(rate)


def peak(rate):
    return f"{rate_bps(rate) * 1.1 / 1e6:g}mbit"


def burst_bytes(rate):
    return max(int((rate_bps(rate) / 500 + 7) // 8), 4096)


def records(path):
    out = []
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return out
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written
    return out


class Lab:
    def __init__(self, rate, lab_id):
        self.rate = rate
        self.id = lab_id
        self.name = f"{PREFIX}{lab_id}"
        subprocess.run([NETLAB, "up", str(M), "--rate", rate, "--peakrate", peak(rate), "--prefix",
                        PREFIX, "--id", lab_id, "-q"], check=True, stdout=subprocess.DEVNULL)

    def down(self):
        subprocess.run([NETLAB, "down", "-q", "--prefix", PREFIX, "--id", self.id])

    def change_rate(self, rate):
        """tc qdisc change on every shaped device of the lab (host egress and switch ports)."""
        tbf = ["tbf", "rate", rate, "burst", str(burst_bytes(rate)), "latency", "50ms",
               "peakrate", peak(rate), "mtu", "1514"]
        for i in range(M):
            subprocess.run(["tc", "-n", f"{self.name}h{i}", "qdisc", "change", "dev",
                            f"{self.name}v{i}", "root"] + tbf, check=True)
            subprocess.run(["tc", "-n", f"{self.name}br", "qdisc", "change", "dev",
                            f"{self.name}p{i}", "root"] + tbf, check=True)

    def linkcheck(self, out):
        with open(out, "w") as f:
            subprocess.run([NETLAB, "exec", "-q", "--prefix", PREFIX, "--id", self.id, "--",
                            "linkcheck", "--sizes", "0.25", "--send-mib", "0.25", "--reps", "3"],
                           stdout=f, stderr=subprocess.DEVNULL, check=True)


def parse_linkcheck(path):
    """α (s) from the idle 1-byte half round trip (mean), β (bit/s) from the ring shift."""
    alpha = beta = None
    with open(path) as f:
        for line in f:
            if "half round trip" in line and "mean" in line:
                words = line.replace("(", " ").replace(")", " ").replace(",", " ").split()
                i = words.index("mean")
                alpha = float(words[i + 1]) * 1e-6
            if line.strip().startswith("ring shift") or line.strip().startswith("ring-shift"):
                nums = [w for w in line.split() if _is_float(w)]
                # columns: MiB, median s, min s, Mbit/s, % of the configured rate
                if len(nums) >= 4:
                    beta = float(nums[3]) * 1e6
    return alpha, beta


def _is_float(w):
    try:
        float(w)
        return True
    except ValueError:
        return False


def train_mpi(binary, lab, args, metrics, target, cap_s, change=None, log=None, seed=1):
    """Runs one MPI training on the lab; stops it once the loss reached `target` (two more records
    so the curve shows it) or after cap_s of training. `change` = (rate, seconds): the link rate
    changes that long after the first metrics record. Returns (records, change wall_s or None)."""
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [NETLAB, "exec", "-q", "--prefix", PREFIX, "--id", lab.id, "--timeout", "300", "-x",
           "OMP_NUM_THREADS=1", "--", binary, "train", "--backend", "mpi", "--workers", str(M),
           "--problem", PROBLEM, "--data", DATA, "--sync", "allgather", "--seed", str(seed),
           "--log-every", "2", "--eval-every", "1000000", "--progress", "none",
           "--iterations", "3000", "--metrics", metrics] + STEP + args
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
    started = None
    changed_at = None
    reached = None
    try:
        while proc.poll() is None:
            time.sleep(0.02)
            rec = records(metrics)
            if rec and started is None:
                started = time.monotonic() - rec[-1]["wall_s"]
            if change and changed_at is None and started is not None and \
                    time.monotonic() - started >= change[1]:
                lab.change_rate(change[0])
                changed_at = time.monotonic() - started
            if rec and reached is None:
                for i, r in enumerate(rec):
                    if r.get("loss") is not None and r["loss"] <= target:
                        reached = i
                        break
            if reached is not None and len(rec) >= reached + 3:
                break
            if started is not None and time.monotonic() - started > cap_s:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return records(metrics), changed_at


def time_to(rec, target):
    for r in rec:
        if r.get("loss") is not None and r["loss"] <= target:
            return r["wall_s"], r["iter"]
    return None, None


def reference(binary, out):
    """f* and f0 from a long uncompressed threads run (deterministic)."""
    path = os.path.join(out, "reference.jsonl")
    subprocess.run(["nice", "-n", "5", binary, "train", "--backend", "threads", "--workers", str(M),
                    "--problem", PROBLEM, "--data", DATA, "--sync", "allgather", "--seed", "1",
                    "--codec", "identity", "--iterations", "800", "--log-every", "1",
                    "--progress", "none", "--metrics", path] + STEP, check=True,
                   stdout=subprocess.DEVNULL)
    rec = records(path)
    losses = [r["loss"] for r in rec if r.get("loss") is not None]
    return min(losses), losses[0]


def median_after(rec, key, skip=0.25):
    vals = [r[key] for r in rec if key in r]
    vals = vals[int(len(vals) * skip):]
    return statistics.median(vals) if vals else None


def plots(thinwire, out, results, scen):
    """Figures by `thinwire report` (experiments/common/twplot.py), per scenario, against
    wall-clock time, from repetition 1 of each method: the loss of every method with the target
    and the rate change marked (KEY-loss.png); the level the dynamic run chose, in bits per
    element (KEY-theta.png); and its estimated β (KEY-beta.png). Returns the PNG paths."""
    pdir = os.path.join(out, "plots")
    os.makedirs(pdir, exist_ok=True)
    made = []
    for s in scen:
        key = s["key"]
        res = results[key]
        runs = res["runs"]
        ch = res.get("changed_at")
        vlines = [] if ch is None else [f"{ch:.3f}=rate change"]

        def curve(name, what, rows):
            """A metrics-format file of (iter, wall_s, y) rows, y in the "loss" field."""
            path = os.path.join(pdir, "curves", key,
                                f"{what}-{name.replace(' ', '-').replace('=', '')}.jsonl")
            twplot.write_curve(path, {"method": name},
                               [{"iter": it, "wall_s": t, "loss": y} for it, t, y in rows])
            return path

        def figure(files, what, y_label, log_y=True, hlines=()):
            pngs = twplot.report(thinwire, list(files), os.path.join(pdir, "report", key + what),
                                 labels=files, title=f"E2-time, {s['label']}", x=["wall"],
                                 log_y=log_y, x_label="wall-clock s", y_label=y_label,
                                 hlines=hlines, vlines=vlines, figures=["loss_vs_wall"])
            png = os.path.join(pdir, f"{key}-{what}.png")
            shutil.copyfile(pngs["loss_vs_wall"], png)
            made.append(png)

        loss = {}
        for name, r in runs.items():
            rows = [(x.get("iter"), x["wall_s"], x["loss"]) for x in r["records"]
                    if x.get("loss") is not None and x.get("wall_s") is not None]
            loss[curve(name, "loss", rows)] = name
        figure(loss, "loss", "training loss", hlines=[f"{res['target']:.6g}=target"])
        dyn = runs["dynamic auto"]["records"]
        level = curve("dynamic auto", "theta", [(x.get("iter"), x["wall_s"], x["tuned_bits"] / D)
                                                for x in dyn if x.get("tuned_bits")])
        figure({level: "dynamic --cost auto (rank 0); 32 = uncompressed"}, "theta",
               "chosen level, bits per element", log_y=False)
        beta = curve("dynamic auto", "beta",
                     [(x.get("iter"), x["wall_s"], x["link_bandwidth_bps"] / 1e6)
                      for x in dyn if x.get("link_bandwidth_bps")])
        figure({beta: "dynamic --cost auto (rank 0)"}, "beta", "estimated β (Mbit/s)")
    return made


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def signed_pct(x):
    return "—" if x is None else f"{x * 100:+.0f} %"


def table(results, scen):
    names = [n for n, _ in methods()]
    head = "| link | " + " | ".join(names) + " | best fixed | dynamic / best fixed | " \
        "dynamic / uncompressed |"
    lines = [head, "|" + "---|" * (len(names) + 4)]
    for s in scen:
        res = results[s["key"]]
        cells = []
        t = {}
        for n in names:
            r = res["runs"][n]
            t[n] = r["time"]
            reached = [x for x in r.get("times", []) if x is not None]
            spread = f", {min(reached):.2f}–{max(reached):.2f}" if len(reached) > 1 else ""
            cells.append("> %.0f s (cap)" % r["cap"] if r["time"] is None else
                         f"{r['time']:.2f} s ({r['iter']} it{spread})")
        fixed = [n for n in names if n != "dynamic auto" and t[n] is not None]
        best = min(fixed, key=lambda n: t[n]) if fixed else None
        dyn = t["dynamic auto"]
        ratio_best = dyn / t[best] if dyn is not None and best else None
        ratio_unc = dyn / t["uncompressed"] if dyn is not None and t["uncompressed"] else None
        lines.append(f"| {s['label']} | " + " | ".join(cells) +
                     f" | {best or '—'} | {fmt(ratio_best)} | {fmt(ratio_unc)} |")
    return "\n".join(lines)


def estimate_table(results, scen):
    lines = ["| link | α linkcheck (µs) | α̂ online (µs) | α̂/α | β linkcheck (Mbit/s) | "
             "β̂ online (Mbit/s) | β̂/β | iteration time predicted/measured − 1: median |per "
             "iteration| | the same for the sum over the run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in scen:
        res = results[s["key"]]
        dyn = res["runs"]["dynamic auto"]
        a, b = res.get("linkcheck") or (None, None)
        ah = dyn.get("alpha")
        bh = dyn.get("beta")
        ra = ah / a if a and ah is not None else None
        rb = bh / b if b and bh is not None else None
        lines.append(
            f"| {s['label']} | {fmt(a and a * 1e6, 0)} | {fmt(ah and ah * 1e6, 0)} | {fmt(ra)} | "
            f"{fmt(b and b / 1e6, 1)} | {fmt(bh and bh / 1e6, 1)} | {fmt(rb)} | "
            f"{fmt(dyn.get('pred_err') and dyn['pred_err'] * 100, 0)} % | "
            f"{signed_pct(dyn.get('total_err'))} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--thinwire", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated scenario keys")
    ap.add_argument("--command", default="experiments/e2_time/run")
    ap.add_argument("--reps", type=int, default=3, help="runs per method and link (median)")
    ap.add_argument("--replot", action="store_true",
                    help="tables and plots again from OUT (results.json and the metrics)")
    args = ap.parse_args()
    if args.replot:
        return report(args, *load_results(args))
    os.makedirs(args.out, exist_ok=True)
    subprocess.run([NETLAB, "down", "-q", "--prefix", PREFIX])
    scen = scenarios(args.quick)
    if args.only:
        keep = args.only.split(",")
        scen = [s for s in scen if s["key"] in keep]
    fstar, f0 = reference(args.thinwire, args.out)
    target = fstar + EPS * (f0 - fstar)
    print(f"e2-time: f* = {fstar:.6g}, f0 = {f0:.6g}, target = {target:.6g}", file=sys.stderr)
    results = {}
    for n, s in enumerate(scen):
        lab = Lab(s["rate"], f"{n}{os.getpid() % 1000}")
        res = {"target": target, "runs": {name: {"cap": CAP, "times": [], "iters": [], "recs": []}
                                          for name, _ in methods()}}
        try:
            if "change" not in s:
                lc = os.path.join(args.out, f"linkcheck-{s['key']}.txt")
                lab.linkcheck(lc)
                res["linkcheck"] = parse_linkcheck(lc)
            for rep in range(args.reps):
                # The order rotates from one repetition to the next, so that a drift in the
                # machine's load does not always fall on the same method.
                order = methods()
                order = order[rep % len(order):] + order[:rep % len(order)]
                for name, margs in order:
                    metrics = metrics_path(args.out, s["key"], name, rep)
                    change = (s["change"], s["at"]) if "change" in s else None
                    if change:
                        lab.change_rate(s["rate"])  # every run starts at the first rate
                    # Repetition r runs every method with seed r + 1: the repetitions sample the
                    # codecs' random numbers too, not only the machine's timing noise.
                    rec, changed = train_mpi(args.thinwire, lab, margs, metrics, target, CAP,
                                             change, log=metrics.replace(".jsonl", ".log"),
                                             seed=rep + 1)
                    if changed is not None and name == "dynamic auto" and rep == 0:
                        res["changed_at"] = changed
                    t, it = time_to(rec, target)
                    run = res["runs"][name]
                    run["times"].append(t)
                    run["iters"].append(it)
                    run["recs"].append(rec)
                    print(f"  {s['key']:>14} rep {rep + 1} {name:>14}: "
                          f"{'not reached' if t is None else f'{t:.2f} s, {it} it'}"
                          f"{'' if changed is None else f' (rate changed at {changed:.2f} s)'}",
                          file=sys.stderr)
        finally:
            lab.down()
        for name, run in res["runs"].items():
            summarize(run, name == "dynamic auto")
        results[s["key"]] = res
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"fstar": fstar, "f0": f0, "keys": [s["key"] for s in scen],
                   "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "reps": args.reps}, f)
    save_results(args, results)
    report(args, *load_results(args))


def metrics_path(out, key, name, rep=0):
    return os.path.join(out, f"{key}-{name.replace(' ', '-').replace('=', '')}-r{rep + 1}.jsonl")


def summarize(run, dynamic):
    """Median time over the repetitions (None unless most reached the target); for the dynamic
    run also the online estimate and the error of its predicted iteration times."""
    reached = [t for t in run["times"] if t is not None]
    run["time"] = statistics.median(reached) if 2 * len(reached) > len(run["times"]) else None
    its = [i for i in run["iters"] if i is not None]
    run["iter"] = int(statistics.median(its)) if its else None
    recs = run.pop("recs")
    if not dynamic:
        return
    run["alpha"] = statistics.median(
        [median_after(r, "link_latency_s") for r in recs if r])
    run["beta"] = statistics.median(
        [median_after(r, "link_bandwidth_bps") for r in recs if r])
    errs = []
    totals = []
    for rec in recs:
        pairs = [(r["pred_iter_s"], r["iter_s"]) for r in rec
                 if r.get("pred_iter_s") and r.get("iter_s")]
        pairs = pairs[len(pairs) // 4:]
        errs += [abs(p / m - 1) for p, m in pairs]
        if pairs:
            totals.append(sum(p for p, _ in pairs) / sum(m for _, m in pairs) - 1)
    run["pred_err"] = statistics.median(errs) if errs else None
    run["total_err"] = statistics.median(totals) if totals else None


def save_results(args, results):
    with open(os.path.join(args.out, "results.json")) as f:
        head = json.load(f)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        head["scenarios"] = {
            k: {"target": v["target"], "changed_at": v.get("changed_at"),
                "linkcheck": v.get("linkcheck"),
                "runs": {n: {kk: vv for kk, vv in r.items() if kk != "records"}
                         for n, r in v["runs"].items()}} for k, v in results.items()}
        json.dump(head, f, indent=1)


def load_results(args):
    with open(os.path.join(args.out, "results.json")) as f:
        head = json.load(f)
    scen = [s for s in scenarios(False) if s["key"] in head["keys"]]
    results = head["scenarios"]
    for key, res in results.items():
        for name, run in res["runs"].items():
            run["records"] = records(metrics_path(args.out, key, name))
    return results, scen, head["fstar"], head["f0"], head["date"], head.get("reps", 1)


def report(args, results, scen, fstar, f0, date, reps=1):
    made = plots(args.thinwire, args.out, results, scen)
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    block = [
        "Command: `" + args.command + "` (" + date +
        f" UTC, {cpu}, 2 cores shared with other jobs: wall-clock times carry that noise).",
        "",
        f"Problem: `{PROBLEM}` on `{DATA}`, full-batch GD (`--lr 2 --momentum 0` for every "
        f"run), M = {M} MPI ranks (`--sync allgather`), one per netlab namespace, tbf at the rate "
        f"with peakrate 1.1 × rate. Target: training loss ≤ f* + ε·(f0 − f*), ε = {EPS:g}, "
        f"f* = {fstar:.6g} (800 uncompressed threads iterations), f0 = {f0:.6g}. Time = wall_s "
        "of the first record at the target (from the start of training; records every 2 "
        f"iterations); each cell is the median of {reps} runs (range after the iterations), "
        "repetition r with `--seed r` for every method (the codecs' random numbers differ "
        "between repetitions), the methods' order rotating from one repetition to the next.",
        "",
        "Time to target:",
        "",
        table(results, scen),
        "",
        "Online estimate of the dynamic runs (median over each run's records after the first "
        "quarter, then over the runs) "
        "against linkcheck on the same lab (α: 1-byte half round trip, mean; β: ring shift, "
        "every link busy both ways), and the error of the predicted iteration time:",
        "",
        estimate_table(results, scen),
        "",
    ]
    with open(os.path.join(args.out, "block.md"), "w") as f:
        f.write("\n".join(block))
    print("\n".join(block))
    print("plots: " + " ".join(made), file=sys.stderr)


if __name__ == "__main__":
    main()
