"""The one way experiments draw figures: `thinwire report`, the tool users run on their own
metrics (gnuplot driven from C++, tested in tests/cli/report_test.cpp).

An experiment hands it metrics files of `thinwire train --metrics`, or curves it computed itself
(a suboptimality against a cost, say) written with write_curve() in the same JSONL format, and
picks the figures with report()'s options (the flags of `thinwire report --help`).

    sys.path.insert(0, os.path.join(ROOT, "experiments", "common"))
    import twplot
    pngs = twplot.report(thinwire, files, "out/plots/g", x=["sim"], log_x=True)
"""
import json
import os
import shutil
import subprocess


def write_curve(path, config, records):
    """Writes a metrics-format file: {"config": config}, then one record (a dict with at least
    "iter") per line. `thinwire report` plots "loss", "theta", "test_accuracy", ... against
    "iter", "epoch", "bits", "sim_s", "wall_s" or "cost"; config keys name the run (--panel-by,
    the derived labels)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"config": config}, ensure_ascii=False) + "\n")
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def report(thinwire, files, out_dir, *, labels=None, title=None, x=None, log_x=False,
           log_y=False, x_label=None, y_label=None, y_range=None, hlines=(), vlines=(), smooth=None,
           panel_by=None, highlight=(), figures=None, svg=False):
    """Runs `thinwire report FILES --out OUT_DIR` (OUT_DIR emptied first) and returns
    {figure name: PNG path}. `labels` maps a file to its legend text; `hlines` holds "Y" or
    "Y=LABEL" strings, `vlines` "X" or "X=LABEL" (seconds, on the sim and wall figures); `y_range` is "LO:HI"; x and figures are lists of names. Raises
    RuntimeError with the tool's one-line error when it fails."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    cmd = [thinwire, "report"] + list(files) + ["--out", out_dir]
    for f, text in (labels or {}).items():
        cmd += ["--label", f"{f}={text}"]
    if title:
        cmd += ["--title", title]
    if x:
        cmd += ["--x", ",".join(x)]
    if log_x:
        cmd.append("--log-x")
    if log_y:
        cmd.append("--log-y")
    if x_label:
        cmd += ["--x-label", x_label]
    if y_label:
        cmd += ["--y-label", y_label]
    if smooth:
        cmd += ["--smooth", str(smooth)]
    if y_range:
        cmd += ["--y-range", y_range]
    for h in hlines:
        cmd += ["--hline", h]
    for v in vlines:
        cmd += ["--vline", v]
    if panel_by:
        cmd += ["--panel-by", panel_by]
    for f in highlight:
        cmd += ["--highlight", f]
    if figures:
        cmd += ["--figures", ",".join(figures)]
    if not svg:
        cmd.append("--no-svg")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"thinwire report exited {proc.returncode}: {proc.stderr.strip()}")
    return {name[:-4]: os.path.join(out_dir, name) for name in sorted(os.listdir(out_dir))
            if name.endswith(".png")}
