"""Shared helpers of the experiment scripts (E1, E3, scaling): run `thinwire train`, read its
metrics JSONL, compute time-to-X on the simulated clock, write Markdown tables, and plot with
`thinwire report` (experiments/common/twplot.py, the one plotting path).

Every run is one `thinwire train` process with `--metrics out/NAME.jsonl`; its stdout/stderr go
to out/NAME.log. A finished metrics file (its last record has iter == the run's total iterations)
is reused when the script is called with --reuse, so tables can be rewritten without training.
"""
import concurrent.futures
import json
import math
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "common"))
import twplot  # noqa: E402


def find_thinwire():
    """THINWIRE=path, else the first release build found in build/."""
    env = os.environ.get("THINWIRE")
    if env:
        return env
    for sub in ("exps-release", "release", "dev"):
        path = os.path.join(ROOT, "build", sub, "apps", "thinwire", "thinwire")
        if os.access(path, os.X_OK):
            return path
    sys.exit("error: no thinwire binary; build one (cmake --preset release && cmake --build "
             "build/release --target thinwire_cli) or set THINWIRE=path")


class Run:
    """One training run: a name, the flags, and (after it ran) its records."""

    def __init__(self, name, flags, **labels):
        self.name = name
        self.flags = list(flags)
        self.labels = labels
        self.config = None
        self.records = []

    def metrics_path(self, out):
        return os.path.join(out, self.name + ".jsonl")

    def load(self, out):
        with open(self.metrics_path(out), encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        self.config = lines[0]["config"]
        self.records = lines[1:]
        return self

    def complete(self, out, flags=()):
        """True when the metrics file exists, its run finished (the log has the summary) and its
        recorded configuration has the value of every --flag VALUE given here."""
        path = self.metrics_path(out)
        if not os.path.exists(path):
            return False
        try:
            self.load(out)
        except (ValueError, KeyError, IndexError):
            return False
        log = os.path.join(out, self.name + ".log")
        if not (self.records and os.path.exists(log) and "summary" in open(log).read()):
            return False
        args = list(flags) + self.flags
        for key, value in zip(args[::1], args[1:]):
            name = key[2:] if key.startswith("--") else None
            if name in self.config and name != "metrics" and not same(self.config[name], value):
                return False
        return True


def same(recorded, text):
    """Whether a configuration value from the metrics equals a flag's text."""
    if isinstance(recorded, bool):
        return str(recorded).lower() == text.lower()
    if isinstance(recorded, (int, float)):
        try:
            return float(recorded) == float(text)
        except ValueError:
            return False
    return str(recorded) == text


def run_all(runs, out, thinwire, jobs, reuse, common_flags):
    """Runs every run (at most `jobs` at a time, under nice), or reuses finished ones."""
    os.makedirs(out, exist_ok=True)

    def one(run):
        if reuse and run.complete(out, common_flags):
            return run.name, 0.0, "reused"
        log_path = os.path.join(out, run.name + ".log")
        if reuse and os.path.exists(log_path) and "error: non-finite" in open(log_path).read():
            # Training is deterministic for a seed: a diverged run diverges again.
            return run.name, 0.0, "FAILED (reused: diverged, see its log)"
        cmd = (["nice", "-n", "5", thinwire, "train"] + common_flags + run.flags +
               ["--metrics", run.metrics_path(out), "--progress", "none"])
        start = time.time()
        with open(os.path.join(out, run.name + ".log"), "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            return run.name, time.time() - start, f"FAILED (exit {rc}, see {run.name}.log)"
        return run.name, time.time() - start, "ok"

    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, secs, status in pool.map(one, runs):
            print(f"  {name:<34} {status:<8} {secs:7.1f} s wall", flush=True)
            if status.startswith("FAILED"):
                failed.append(name)
    for run in runs:
        if run.name not in failed:
            run.load(out)
    return failed


def smoothed_losses(records, window):
    """(record, mean training loss of the last `window` records) for every record with a loss."""
    out = []
    recent = []
    for r in records:
        if r.get("loss") is None:
            continue
        recent.append(r["loss"])
        if len(recent) > window:
            recent.pop(0)
        out.append((r, sum(recent) / len(recent)))
    return out


def loss_at_epoch(records, epoch, window):
    """Smoothed training loss at the first record with epoch >= `epoch`."""
    for r, loss in smoothed_losses(records, window):
        if r["epoch"] >= epoch - 1e-9:
            return loss
    return math.nan


def first_below(records, target, window, key="sim_s"):
    """`key` of the first record whose smoothed training loss is <= target (None if never)."""
    for r, loss in smoothed_losses(records, window):
        if loss <= target:
            return r[key]
    return None


def evals(records):
    return [r for r in records if r.get("test_accuracy") is not None]


def accuracy_at_epoch(records, epoch):
    for r in evals(records):
        if r["epoch"] >= epoch - 1e-9:
            return r["test_accuracy"]
    return math.nan


def first_accuracy(records, target, key="sim_s"):
    for r in evals(records):
        if r["test_accuracy"] >= target - 1e-12:
            return r[key]
    return None


def final_accuracy(records):
    e = evals(records)
    return e[-1]["test_accuracy"] if e else math.nan


def mean_last_accuracy(records, count):
    """Mean test accuracy of the last `count` evaluations: the epoch-to-epoch noise of a
    constant-step run is ~1 point, so a single evaluation cannot resolve 0.5 points."""
    e = evals(records)[-count:]
    return sum(r["test_accuracy"] for r in e) / len(e) if e else math.nan


def fmt_bits(bits):
    for unit, scale in (("Tbit", 1e12), ("Gbit", 1e9), ("Mbit", 1e6)):
        if bits >= scale:
            return f"{bits / scale:.2f} {unit}"
    return f"{bits:.0f} bit"


def fmt_s(seconds):
    if seconds is None:
        return "not reached"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    return f"{seconds:.1f} s"


def fmt_pct(x):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f} %"


def plot(thinwire, out, groups, subdir="", **options):
    """Plots each group of runs with `thinwire report` (twplot.report) into
    out/plots/GROUP[/SUBDIR]; `options` are twplot.report's (default: the loss on a log axis and
    the accuracy against simulated time, bits and epochs). Returns the directories made."""
    made = []
    for group, runs in groups.items():
        dest = os.path.join(out, "plots", group, subdir)
        kwargs = {"title": group, "log_y": True, "x": ["sim", "bits", "epoch"], **options}
        labels = {r.metrics_path(out): r.labels.get("label", r.name) for r in runs}
        try:
            twplot.report(thinwire, [r.metrics_path(out) for r in runs], dest, labels=labels,
                          **kwargs)
        except RuntimeError as e:
            print(f"  warning: plots of {group}: {e}")
            continue
        made.append(dest)
    return made


def copy_pngs(src_dir, dest_dir, names):
    """Copies the chosen PNGs (those that exist) into docs/img/...; returns the copied names."""
    os.makedirs(dest_dir, exist_ok=True)
    copied = []
    for src_name, dest_name in names:
        src = os.path.join(src_dir, src_name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(dest_dir, dest_name))
            copied.append(dest_name)
    return copied


def write_block(name, text):
    path = os.path.join(ROOT, "scripts", "results-block")
    subprocess.run([sys.executable, path, name], input=text, text=True, check=True)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine_note():
    load = os.getloadavg()
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end")
