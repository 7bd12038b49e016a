"""`thinwire train`: flags, TOML configurations, outputs and checkpoints, non-finite steps."""
import fcntl
import os
import stat

from common import (TRAIN, Case, absent, all_of, finite_model, unchanged, write)

COUNT_FLAGS = ["workers", "local-steps", "batch-size", "iterations", "seed", "log-every",
               "eval-every", "checkpoint-every"]
BAD_COUNTS = [("neg", "-1"), ("word", "abc"), ("empty", ""), ("float", "1.5"), ("exp", "1e3"),
              ("hex", "0x10"), ("int64max", "9223372036854775807"),
              ("int64over", "9223372036854775808"), ("u64over", "18446744073709551616"),
              ("huge", "1" * 400), ("two", "1 2"), ("plus", "+-3")]
FLOAT_FLAGS = ["lr", "momentum", "weight-decay", "gossip-lr", "epochs"]
BAD_FLOATS = [("nan", "nan"), ("inf", "inf"), ("neginf", "-inf"), ("over", "1e400"),
              ("word", "abc"), ("empty", ""), ("neg", "-1"), ("huge", "9" * 500)]
SPEC_FLAGS = {
    "problem": ["nope", "mlp:hidden=0", "mlp:hidden=axb", "logistic:lambda=-1", ":", "mlp:x=1",
                "mlp:hidden=100000000", "mlp:hidden=65536x65536", "mlp:hidden=" + "x".join(["2"] * 70),
                "mlp:hidden=4294967296x4294967296"],
    "data": ["nope", "synthetic:n=0", "synthetic:d=abc", "synthetic:task=x", "idx:images=/nope",
             "synthetic:n=64,n=65", "synthetic:n=64,d=4,nope=1"],
    "sharding": ["nope", "dirichlet:alpha=0", "dirichlet:alpha=-1", "dirichlet:alpha=abc"],
    "backend": ["nope", "THREADS", ""],
    "algorithm": ["nope", "SGD", "local_sgd"],
    "sync": ["nope", "ring:x=1", "GOSSIP"],
    "topology": ["nope", "torus:rows=abc", "regular", "regular:d=99", "random"],
    "codec": ["nope", "qsgd:s=0", "qsgd:s=abc", "qsgd:bucket=-1", "topk:k=0", "topk:k=-1",
              "qsgd:s=16+ef+ef", "+ef", "qsgd:norm=x", "randk:k=nan"],
    "downlink-codec": ["nope", "qsgd:s=-1"],
    "tuner": ["nope", "schedule:", "schedule:T=abc"],
    "cost": ["nope", "linear:x=1"],
    "link": ["latency=1e300s", "latency=-1s", "latency=abc", "bandwidth=0", "bandwidth=1e300Gbit",
             "bandwidth=nan", "overhead=0.5", "model=nope", "nope", "latency=2h"],
    "on-nonfinite": ["nope", "SKIP"],
}


def train(*extra):
    return TRAIN + list(extra)


def flag_cases():
    out = []
    for flag in COUNT_FLAGS:
        for tag, value in BAD_COUNTS:
            if flag == "seed" and tag == "int64max":
                continue  # the seed takes the whole non-negative int64 range (seed-int64max-ok)
            out.append(Case("flags", "count-%s-%s" % (flag, tag), train("--" + flag, value), 2,
                            r"--%s" % flag))
    # The overflow of issue 22: batch x workers wrapped, steps per epoch became 0 (SIGFPE).
    out.append(Case("flags", "batch-size-2^40-ok", train("--batch-size", str(2 ** 40)), 0))
    out.append(Case("flags", "batch-size-2^40+1", train("--batch-size", str(2 ** 40 + 1)), 2,
                    r"--batch-size: must be in \[0, 2\^40\]"))
    out.append(Case("flags", "seed-int64max-ok", train("--seed", "9223372036854775807"), 0))
    out.append(Case("flags", "workers-0", train("--workers", "0"), 2, r"--workers.*\[1, 4096\]"))
    out.append(Case("flags", "epochs-1e300", train("--epochs", "1e300", "--iterations", "0"), 2,
                    r"--epochs: .*more than 2\^40 iterations"))
    out.append(Case("flags", "workers-5000", train("--workers", "5000"), 2, r"--workers"))
    out.append(Case("flags", "workers-more-than-rows", train("--workers", "65"), 2, r"--workers"))
    out.append(Case("flags", "log-every-0", train("--log-every", "0"), 2, r"--log-every"))
    out.append(Case("flags", "local-steps-sgd", train("--local-steps", "2"), 2, r"--local-steps"))
    for flag in FLOAT_FLAGS:
        for tag, value in BAD_FLOATS:
            extra = ["--iterations", "0"] if flag == "epochs" else []
            out.append(Case("flags", "float-%s-%s" % (flag, tag),
                            train("--" + flag, value, *extra), 2, r"--%s" % flag))
    for flag, values in SPEC_FLAGS.items():
        for i, value in enumerate(values):
            args = train("--" + flag, value)
            if flag in ("topology",):
                args += ["--algorithm", "choco"]
            if flag == "downlink-codec":
                args += ["--sync", "ps"]
            out.append(Case("flags", "spec-%s-%d" % (flag, i), args, 2, r"--%s" % flag))
    out.append(Case("flags", "topology-help-names-only-known", ["train", "--help"], 0,
                    check=help_lists_known_topologies))
    for i, value in enumerate(["ring", "torus", "hypercube", "complete", "star", "regular:d=1"]):
        out.append(Case("flags", "topology-ok-%d" % i,
                        train("--algorithm", "choco", "--topology", value, "--workers", "4"), 0))
    out.append(Case("flags", "unknown-flag", train("--nope"), 2, r"--nope"))
    out.append(Case("flags", "missing-value", ["train", "--lr"], 2, r"--lr"))
    out.append(Case("flags", "unknown-command", ["trian"], 2, r"unknown command 'trian'"))
    out.append(Case("flags", "no-command", [], 2, r"subcommand|command"))
    out.append(Case("flags", "huge-unknown-command", ["x" * 100000], 2, r"unknown command"))
    out.append(Case("flags", "resume-without-checkpoint", train("--resume"), 2, r"--resume"))
    out.append(Case("flags", "ps-with-local-sgd", train("--algorithm", "local-sgd", "--sync", "ps"),
                    2, r"--sync"))
    out.append(Case("flags", "save-model-txt", train("--save-model", "m.txt"), 2,
                    r"--save-model.*extension", check=absent("m.txt")))
    out.append(Case("flags", "save-model-noext", train("--save-model", "model"), 2,
                    r"--save-model"))
    out.append(Case("flags", "data-huge-token", train("--data", "synthetic:" + "y" * 100000), 2,
                    r"--data"))
    out.append(Case("flags", "sync-gossip-unknown-topology", train("--sync", "gossip:nope"), 2,
                    r"--topology: unknown topology 'nope'"))
    out.append(Case("flags", "data-missing-file", train("--data", "libsvm:path=/nonexistent.svm"),
                    1, r"/nonexistent\.svm: cannot open"))
    out.append(Case("flags", "data-missing-bare-file", train("--data", "/nonexistent.svm"), 1,
                    r"/nonexistent\.svm: cannot open"))
    for cmd in ["train", "compress", "decompress", "inspect", "codecs", "report", "bench"]:
        out.append(Case("flags", "help-" + cmd, [cmd, "--help"], 0))
    return out


def help_lists_known_topologies(env, work, proc):
    text = proc.stdout.decode()
    line = [l for l in text.split("\n") if "--topology" in l]
    if not line:
        return "--topology is not in --help"
    return "--help names 'random', which is rejected" if "random" in line[0] else None


def toml_case(name, text, rc, pattern, extra=(), binary=False):
    def setup(env, work):
        write(os.path.join(work, "c.toml"), text, "wb" if binary else "w")
    return Case("toml", "toml-" + name, ["train", "--config", "{W}/c.toml"] + TRAIN[1:] +
                list(extra), rc, pattern, setup=setup)


def toml_cases():
    out = [
        toml_case("dotted-100k", "a" + ".a" * 100000 + " = 1\n", 2, r"c\.toml:1: nested too"),
        toml_case("dotted-65", ".".join(["a"] * 66) + " = 1\n", 2, r"c\.toml:1"),
        toml_case("dotted-quoted-ok", 'data = "synthetic:n=64,d=4" # a.b.c.d\n', 0, None),
        toml_case("nested-arrays", "lr = " + "[" * 5000 + "]" * 5000 + "\n", 2, r"c\.toml"),
        toml_case("nested-inline", "lr = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n", 2,
                  r"c\.toml"),
        toml_case("batch-huge", "batch-size = 9223372036854775807\n", 2,
                  r"c\.toml:1:.*--batch-size.*2\^40"),
        toml_case("batch-neg", "batch-size = -5\n", 2, r"c\.toml:1:.*--batch-size"),
        toml_case("unknown-key", "nope = 1\n", 2, r"c\.toml:1:\d+: unknown key 'nope'"),
        toml_case("lr-string", 'lr = "fast"\n', 2, r"c\.toml:1:.*'lr' must be a number"),
        toml_case("workers-float", "workers = 2.5\n", 2, r"'workers' must be an integer"),
        toml_case("bool-int", "nesterov = 1\n", 2, r"'nesterov' must be true or false"),
        toml_case("syntax", "lr = \n", 2, r"c\.toml:1"),
        toml_case("unterminated", 'data = "abc\n', 2, r"c\.toml:1"),
        toml_case("duplicate", "lr = 0.1\nlr = 0.2\n", 2, r"c\.toml:2"),
        toml_case("table", "[train]\nlr = 0.1\n", 2, r"c\.toml:1:.*unknown key 'train'"),
        toml_case("binary", bytes(range(256)) * 4, 2, r"c\.toml", binary=True),
        toml_case("nul", b"lr = 0.1\x00\n", 2, r"c\.toml", binary=True),
        toml_case("too-big", "# " + "x" * (1 << 20) + "\n", 2, r"c\.toml: larger than 1 MiB"),
        toml_case("long-string", 'codec = "' + "q" * 300000 + '"\n', 2, r"--codec"),
        toml_case("ok", 'lr = 0.05\nmomentum = 0.5\nseed = 7\n', 0, None),
        toml_case("lr-inf", "lr = inf\n", 2, r"--lr"),
        toml_case("lr-nan", "lr = nan\n", 2, r"--lr"),
        toml_case("iterations-huge", "iterations = 9223372036854775807\n", 2, r"--iterations"),
        toml_case("seed-neg", "seed = -1\n", 2, r"--seed"),
        toml_case("latency", 'link = "latency=1e300s"\n', 2, r"--link.*latency.*\[0, 3600\]"),
    ]
    out.append(Case("toml", "toml-directory", ["train", "--config", "{W}"] + TRAIN[1:], 2,
                    r"is a directory"))
    out.append(Case("toml", "toml-missing", ["train", "--config", "{W}/none.toml"] + TRAIN[1:], 1,
                    r"none\.toml: cannot open"))
    out.append(Case("toml", "toml-dev-null", ["train", "--config", "/dev/null"] + TRAIN[1:], 0))
    out.append(Case("toml", "toml-dev-zero", ["train", "--config", "/dev/zero"] + TRAIN[1:], 2,
                    r"/dev/zero", timeout=20))
    return out


def fill_dir(env, work):
    os.makedirs(os.path.join(work, "d"))


def output_cases():
    out = []
    out.append(Case("outputs", "save-model-is-metrics",
                    train("--metrics", "{W}/m.npy", "--save-model", "{W}/./m.npy"), 1,
                    r"--save-model: .* is also the --metrics file", check=absent("m.npy")))
    out.append(Case("outputs", "metrics-is-dir", train("--metrics", "{W}"), 1, r"--metrics.*"
                    r"directory"))
    out.append(Case("outputs", "metrics-no-dir", train("--metrics", "{W}/no/m.jsonl"), 1,
                    r"--metrics.*does not exist"))
    out.append(Case("outputs", "save-model-no-dir", train("--save-model", "{W}/no/m.npy",
                                                          "--iterations", "100000"), 1,
                    r"--save-model.*does not exist", timeout=10))
    out.append(Case("outputs", "save-model-is-dir", train("--save-model", "{W}/d.npy"), 1,
                    r"--save-model.*directory",
                    setup=lambda env, work: os.makedirs(os.path.join(work, "d.npy"))))
    out.append(Case("outputs", "checkpoint-is-file", train("--checkpoint", "{W}/f"), 1,
                    r"--checkpoint", setup=lambda env, work: write(os.path.join(work, "f"), "x"),
                    check=unchanged("f", b"x")))
    out.append(Case("outputs", "checkpoint-under-file",
                    train("--checkpoint", "{W}/f/ck", "--iterations", "100000"), 1,
                    r"--checkpoint", timeout=10,
                    setup=lambda env, work: write(os.path.join(work, "f"), "x")))
    out.append(Case("outputs", "metrics-dev-null-checkpoint",
                    train("--metrics", "/dev/null", "--checkpoint", "{W}/ck",
                          "--checkpoint-every", "1"), 0, check=is_char_device("/dev/null")))
    out.append(Case("outputs", "metrics-dev-null-resume", train(
        "--metrics", "/dev/null", "--checkpoint", "{W}/ck", "--resume", "--iterations", "6"), 0,
        setup=run_first(train("--metrics", "/dev/null", "--checkpoint", "{W}/ck")),
        check=is_char_device("/dev/null")))
    out.append(Case("outputs", "metrics-symlink-resume", train(
        "--metrics", "{W}/link.jsonl", "--checkpoint", "{W}/ck", "--resume", "--iterations",
        "6"), 0, setup=symlink_then_run, check=symlink_kept))
    out.append(Case("outputs", "resume-below-checkpoint", train(
        "--checkpoint", "{W}/ck", "--resume", "--iterations", "2"), 2,
        r"--iterations: the checkpoint .* is at iteration 3",
        setup=run_first(train("--checkpoint", "{W}/ck"))))
    out.append(Case("outputs", "resume-equal-ok", train(
        "--checkpoint", "{W}/ck", "--resume", "--iterations", "3"), 0,
        setup=run_first(train("--checkpoint", "{W}/ck"))))
    out.append(Case("outputs", "resume-missing", train("--checkpoint", "{W}/ck", "--resume"), 1,
                    r"--resume: no checkpoint"))
    out.append(Case("outputs", "resume-other-lr", train(
        "--checkpoint", "{W}/ck", "--resume", "--lr", "0.5", "--iterations", "6"), 2,
        r"--resume:.*--lr", setup=run_first(train("--checkpoint", "{W}/ck"))))
    out.append(Case("outputs", "resume-corrupt-manifest", train(
        "--checkpoint", "{W}/ck", "--resume", "--iterations", "6"), 1, r"latest\.json",
        setup=lambda env, work: (os.makedirs(os.path.join(work, "ck")),
                                 write(os.path.join(work, "ck", "latest.json"), "{nope"))))
    out.append(Case("outputs", "checkpoint-locked", train("--checkpoint", "{W}/ck"), 1,
                    r"--checkpoint: .*ck is in use by another thinwire run",
                    setup=hold_lock, cleanup=release_lock))
    out.append(Case("outputs", "stale-tmp-removed",
                    train("--checkpoint", "{W}/ck", "--metrics", "{W}/m.jsonl"), 0,
                    setup=stale_tmp, check=all_of(absent("ck/ckpt-1.rank-0.twck.tmp.999999999"),
                                                  absent("m.jsonl.tmp.999999998"))))
    out.append(Case("outputs", "unwritable-out-compress", [
        "compress", "--codec", "identity", "--in", "{F}/v.npy", "--out", "{W}/no/m.twm"], 1,
        r"no/m\.twm"))
    return out


_locks = {}


def hold_lock(env, work):
    os.makedirs(os.path.join(work, "ck"))
    fd = os.open(os.path.join(work, "ck", ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _locks[work] = fd


def release_lock(env, work):
    fd = _locks.pop(work, None)
    if fd is not None:
        os.close(fd)


def stale_tmp(env, work):
    os.makedirs(os.path.join(work, "ck"))
    write(os.path.join(work, "ck", "ckpt-1.rank-0.twck.tmp.999999999"), "torn")
    write(os.path.join(work, "m.jsonl.tmp.999999998"), "torn")


def run_first(args):
    def setup(env, work):
        import subprocess
        argv = [env.cli] + [a.replace("{W}", work) for a in args]
        subprocess.run(argv, cwd=work, check=True, capture_output=True, timeout=30)
    return setup


def symlink_then_run(env, work):
    os.symlink("real.jsonl", os.path.join(work, "link.jsonl"))
    run_first(train("--metrics", "{W}/link.jsonl", "--checkpoint", "{W}/ck"))(env, work)


def symlink_kept(env, work, proc):
    link = os.path.join(work, "link.jsonl")
    if not os.path.islink(link):
        return "link.jsonl was replaced by a regular file"
    with open(os.path.join(work, "real.jsonl")) as f:
        lines = f.read().splitlines()
    return None if len(lines) >= 3 and '"config"' in lines[0] else "real.jsonl lost its records"


def is_char_device(path):
    def check(env, work, proc):
        return None if stat.S_ISCHR(os.stat(path).st_mode) else "%s is no longer a device" % path
    return check


ALGORITHMS = [
    ("sgd-ring", ["--algorithm", "sgd", "--sync", "ring"]),
    ("sgd-allgather", ["--algorithm", "sgd", "--sync", "allgather"]),
    ("sgd-ps", ["--algorithm", "sgd", "--sync", "ps"]),
    ("sgd-gossip", ["--algorithm", "sgd", "--sync", "gossip"]),
    ("sgd-ef", ["--algorithm", "sgd", "--codec", "topk:k=0.5+ef"]),
    ("sgd-momentum", ["--algorithm", "sgd", "--momentum", "0.9"]),
    ("local-sgd", ["--algorithm", "local-sgd", "--local-steps", "2"]),
    ("qlocal-sgd", ["--algorithm", "qlocal-sgd", "--local-steps", "2"]),
    ("choco", ["--algorithm", "choco"]),
    ("sgd-dynamic", ["--algorithm", "sgd", "--tuner", "dynamic"]),
]


def nonfinite_cases():
    out = []
    blowup = ["--problem", "least-squares", "--data", "synthetic:n=64,d=4,task=least-squares",
              "--lr", "1e30", "--iterations", "12"]
    for name, args in ALGORITHMS:
        out.append(Case("nonfinite", "skip-" + name, train(*blowup, *args, "--on-nonfinite",
                                                           "skip", "--save-model", "m.npy"), 0,
                        check=finite_model("m.npy")))
        out.append(Case("nonfinite", "error-" + name, train(*blowup, *args), 1,
                        r"iteration \d+.*rank \d+.*(--lr|--on-nonfinite)", check=absent("m.npy")))
    out.append(Case("nonfinite", "skip-metrics-finite", train(
        *blowup, "--on-nonfinite", "skip", "--metrics", "m.jsonl"), 0,
        check=metrics_skipped))
    return out


def metrics_skipped(env, work, proc):
    import json
    with open(os.path.join(work, "m.jsonl")) as f:
        records = [json.loads(l) for l in f if l.strip()][1:]
    if not records or records[-1].get("skipped", 0) < 1:
        return "no skipped step recorded"
    return None


def cases(env):
    return flag_cases() + toml_cases() + output_cases() + nonfinite_cases() + fifo_cases()


def fifo_cases():
    def make_fifo(env, work):
        os.mkfifo(os.path.join(work, "p"))
    return [Case("outputs", "metrics-fifo-no-reader", train("--metrics", "{W}/p"), 1,
                 r"--metrics: .*p is a pipe that nobody reads", setup=make_fifo, timeout=10),
            Case("outputs", "save-model-fifo-no-reader", train("--save-model", "{W}/p.npy"), 1,
                 r"--save-model: .*pipe", timeout=10,
                 setup=lambda env, work: os.mkfifo(os.path.join(work, "p.npy")))]
