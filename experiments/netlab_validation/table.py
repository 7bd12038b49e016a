#!/usr/bin/python3
"""Builds the netlab-validation table from the runs of `run`.

    table.py MANIFEST

For every (method, ranks, rate): comm_s of the last metrics record of the threads run (kind
`predicted`: the simulated clock's prediction) and of each measured MPI run on netlab (kind
`measured:NAME`, one column group per NAME: OpenMPI's defaults and a variant), the ratio
measured/predicted of each run and of their median, and pass when |ratio − 1| ≤ 25 % for the
median. Checks that the bits sent are identical between the backends (the same messages).
"""
import argparse
import csv
import json
import statistics
import sys

TOLERANCE = 0.25


def last_record(path):
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if "comm_s" in rec:
                    last = rec
    if last is None:
        sys.exit(f"error: table.py: no metrics record with comm_s in {path}")
    return last


def read_manifest(path, kind):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["kind"] != kind:
                continue
            key = (r["key"], int(r["ranks"]), r["rate"])
            entry = rows.setdefault(key, {"label": r["label"], "link": r["link"], "recs": [],
                                          "loads": []})
            entry["recs"].append(last_record(r["file"]))
            entry["loads"].append(float(r["load"] or 0))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    args = ap.parse_args()
    predicted = read_manifest(args.manifest, "predicted")
    with open(args.manifest, encoding="utf-8") as f:
        kinds = [r["kind"] for r in csv.DictReader(f, delimiter="\t")]
    names = list(dict.fromkeys(k.split(":", 1)[1] for k in kinds if k.startswith("measured:")))
    measured = [(name, read_manifest(args.manifest, "measured:" + name)) for name in names]

    head = "| run | M | link | bits sent | predicted comm_s |"
    rule = "|---|---:|---|---:|---:|"
    for name, _ in measured:
        head += f" measured, {name} | ratio | pass |"
        rule += "---|---|---|"
    out = [head, rule]
    passed = {name: 0 for name, _ in measured}
    counted = {name: 0 for name, _ in measured}
    loads = {name: [] for name, _ in measured}
    mismatch = []
    for key, pred_entry in predicted.items():
        pred = pred_entry["recs"][0]
        rate = key[2].replace("mbit", " Mbit/s")
        line = (f"| {pred_entry['label']} | {key[1]} | {rate} | {pred['bits'] / 1e6:.1f} Mbit | "
                f"{pred['comm_s']:.3f} |")
        for name, rows in measured:
            entry = rows.get(key)
            if entry is None:
                line += " — | — | — |"
                continue
            meas = [m["comm_s"] for m in entry["recs"]]
            loads[name] += entry["loads"]
            if any(m["bits"] != pred["bits"] for m in entry["recs"]):
                mismatch.append(f"{key[0]} M={key[1]} {key[2]} ({name})")
            ratio = statistics.median(meas) / pred["comm_s"]
            ok = abs(ratio - 1) <= TOLERANCE
            passed[name] += ok
            counted[name] += 1
            each = ", ".join(f"{x:.3f}" for x in meas)
            each_ratio = ", ".join(f"{x / pred['comm_s']:.2f}" for x in meas)
            line += (f" {each} | {each_ratio} → **{ratio:.2f}** | " + ("yes" if ok else "**no**")
                     + " |")
        out.append(line)
    out.append("")
    for name, _ in measured:
        load = loads[name]
        span = f"; load average {min(load):.1f}–{max(load):.1f}" if load else ""
        out.append(f"- {name}: {passed[name]} of {counted[name]} within ±{TOLERANCE:.0%} "
                   f"(median of the measured runs against the prediction){span}.")
    out.append("- Bits sent: " + ("identical between the MPI and the threads run in every row "
                                  "(the same messages)." if not mismatch else
                                  "**differ** for " + "; ".join(mismatch)))
    out.append("")
    out.append("Link models of the predictions (latency: the mean of linkcheck's 1-byte half "
               "round trip on that lab, before and after its runs; out/linkcheck-*.txt):")
    out.append("")
    seen = {}
    for key, entry in predicted.items():
        seen.setdefault((key[1], key[2]), entry["link"])
    for (m, rate), spec in sorted(seen.items()):
        out.append(f"- M = {m}, {rate}: `{spec}`")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
