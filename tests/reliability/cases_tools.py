"""`thinwire bench` and `thinwire report`: integer flags in range, metrics files that are not."""
import os

from common import Case, write

GOOD_METRICS = ('{"config":{}}\n'
                '{"iter":1,"epoch":1,"loss":0.5,"bits":10,"sim_s":0.1,"wall_s":0.1}\n')


def bench(*extra, codec="identity", size="64"):
    reps = [] if "--reps" in extra else ["--reps", "1"]
    return ["bench", "--codec", codec, "--size", size] + reps + list(extra)


def metrics_setup(content, name="m.jsonl", mode="w"):
    def setup(env, work):
        write(os.path.join(work, name), content, mode)
    return setup


def cases(env):
    out = []
    for tag, value in [("neg", "-1"), ("zero", "0"), ("2^32", str(2 ** 32)),
                       ("2^64", str(2 ** 64)), ("word", "abc"), ("float", "1.5"), ("empty", "")]:
        out.append(Case("tools", "bench-size-" + tag, bench(size=value), 2,
                        r"--size: must be an integer in \[1, 2\^32 - 1\]"))
    for tag, value in [("neg", "-1"), ("zero", "0"), ("huge", "2147483647"), ("word", "x")]:
        out.append(Case("tools", "bench-reps-" + tag, bench("--reps", value), 2,
                        r"--reps: must be an integer in \[1, 10\^6\]", timeout=10))
    for tag, value in [("neg", "-1"), ("2^64", str(2 ** 64)), ("word", "x")]:
        out.append(Case("tools", "bench-seed-" + tag, bench("--seed", value), 2, r"--seed"))
    for tag, value in [("0", "0"), ("65", "65"), ("neg", "-1")]:
        out.append(Case("tools", "bench-threads-" + tag, bench("--threads", value, codec="qsgd"),
                        2, r"--threads"))
    out.append(Case("tools", "bench-ok", bench("--json"), 0))
    for tag, value in [("neg", "-1"), ("2^64", str(2 ** 64)), ("word", "x"), ("empty", "")]:
        out.append(Case("tools", "demo-seed-" + tag, ["demo", "--size", "100", "--seed", value], 2,
                        r"--seed: must be an integer in \[0, 2\^64-1\]"))
    for tag, value in [("neg", "-1"), ("zero", "0"), ("2^28+1", str(2 ** 28 + 1)), ("word", "x")]:
        out.append(Case("tools", "demo-size-" + tag, ["demo", "--size", value], 2, r"--size"))
    out.append(Case("tools", "demo-codec", ["demo", "--size", "100", "--codec", "nope"], 2,
                    r"--codec: unknown codec 'nope'"))
    out.append(Case("tools", "demo-ok", ["demo", "--size", "100", "--codec", "qsgd"], 0))
    out.append(Case("tools", "bench-bad-codec", bench(codec="qsgd:s=0"), 2, r"--codec"))

    def report(*args):
        return ["report"] + list(args)
    out.append(Case("tools", "report-ok", report("{W}/m.jsonl", "--out", "{W}/o"), 0,
                    setup=metrics_setup(GOOD_METRICS)))
    out.append(Case("tools", "report-dev-zero", report("/dev/zero", "--out", "{W}/o"), 1,
                    r"/dev/zero:1: line longer than 1 MiB", timeout=10))
    out.append(Case("tools", "report-dir", report("{W}", "--out", "{W}/o"), 1,
                    r"is a directory"))
    out.append(Case("tools", "report-missing", report("{W}/none.jsonl", "--out", "{W}/o"), 1,
                    r"none\.jsonl"))
    out.append(Case("tools", "report-out-file", report("{W}/m.jsonl", "--out", "{W}/m.jsonl"), 1,
                    r"m\.jsonl", setup=metrics_setup(GOOD_METRICS)))
    out.append(Case("tools", "report-no-config", report("{W}/m.jsonl", "--out", "{W}/o"), 1,
                    r"m\.jsonl:1", setup=metrics_setup('{"iter":1}\n')))
    out.append(Case("tools", "report-binary", report("{W}/m.jsonl", "--out", "{W}/o"), 1,
                    r"m\.jsonl", setup=metrics_setup(bytes(range(256)) * 64, mode="wb")))
    out.append(Case("tools", "report-long-line", report("{W}/m.jsonl", "--out", "{W}/o"), 1,
                    r"m\.jsonl:2: line longer",
                    setup=metrics_setup('{"config":{}}\n' + "x" * (2 << 20) + "\n")))
    out.append(Case("tools", "report-empty", report("{W}/m.jsonl", "--out", "{W}/o"), 1,
                    r"m\.jsonl", setup=metrics_setup("")))
    out.append(Case("tools", "report-bad-x", report("{W}/m.jsonl", "--out", "{W}/o", "--x", "no"),
                    2, r"--x", setup=metrics_setup(GOOD_METRICS)))
    out.append(Case("tools", "report-bad-label", report("{W}/m.jsonl", "--out", "{W}/o",
                                                        "--label", "a"), 2, r"--label",
                    setup=metrics_setup(GOOD_METRICS)))
    out.append(Case("tools", "report-no-out", report("{W}/m.jsonl"), 2, r"--out"))
    return out
