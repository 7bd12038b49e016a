"""Case type, shared fixtures and small file helpers of the reliability suite (run_suite.py)."""
import os
import struct
import subprocess

# A tiny run that finishes in well under a second: logistic regression on 64 synthetic rows.
TRAIN = ["train", "--data", "synthetic:n=64,d=4", "--problem", "logistic", "--workers", "2",
         "--iterations", "3", "--batch-size", "8", "--progress", "none"]


class Case:
    """One invocation and its expected outcome (see run_suite.py for how it is judged)."""

    def __init__(self, area, name, args, rc, pattern=None, setup=None, check=None, cleanup=None,
                 timeout=30, mpi=False, launcher=None, env=None):
        self.area = area
        self.name = name
        self.args = args
        self.rc = rc
        self.pattern = pattern
        self.setup = setup
        self.check = check
        self.cleanup = cleanup
        self.timeout = timeout
        self.mpi = mpi
        self.launcher = launcher  # a function env -> argv, replacing [cli] + args
        self.extra_env = env or {}

    def argv(self, env):
        if self.launcher is not None:
            return self.launcher(env)
        return [env.cli] + list(self.args)

    def environment(self, env):
        e = dict(os.environ)
        e.update(self.extra_env)
        return e


class Env:
    def __init__(self, cli, reseal, tmp, mpi=False):
        self.cli = cli
        self.reseal = reseal
        self.tmp = tmp
        self.fixtures = os.path.join(tmp, "fixtures")
        os.makedirs(self.fixtures, exist_ok=True)
        self.mpi = mpi  # the CLI was built with MPI (CMake passes --mpi)

    def path(self, name):
        return os.path.join(self.fixtures, name)

    def make_fixtures(self, cases):
        write_npy(self.path("v.npy"), [0.5, -1.25, 3.0, 0.0, 7.5, -2.0, 1e-3, 42.0])
        write_f32(self.path("v.f32"), [1.0, 2.0, 3.0, 4.0])
        write_npy(self.path("empty.npy"), [])
        with open(self.path("a.svm"), "w") as f:
            for i in range(40):
                f.write("%d 1:%g 3:%g 4:%g\n" % (1 if i % 2 else -1, i * 0.1, 1 - i * 0.05, 0.5))
        for name, codec in MESSAGE_CODECS:
            subprocess.run([self.cli, "compress", "--codec", codec, "--in", self.path("v.npy"),
                            "--out", self.path(name + ".twm")], check=True)

    def forge(self, path):
        """Recomputes a message's checksum after a test changed its header or payload."""
        subprocess.run([self.reseal, path], check=True)


MESSAGE_CODECS = [
    ("identity", "identity"), ("fp16", "fp16"), ("bf16", "bf16"), ("qsgd", "qsgd:s=16"),
    ("qsgd_elias", "qsgd:s=4,coding=elias"), ("sign", "sign"), ("terngrad", "terngrad"),
    ("topk", "topk:k=0.5"), ("randk", "randk:k=0.5"), ("threshold", "threshold:tau=0.1"),
    ("wangni", "wangni:density=0.5"), ("qsgd_ef", "qsgd:s=16+ef"),
]


def write_npy(path, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % len(values), *values))


def write_f32(path, values):
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


def read_floats(path):
    """The values of a .npy (float32, 1-D) or .f32 file."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".npy"):
        header_len = struct.unpack("<H", data[8:10])[0]
        data = data[10 + header_len:]
    return struct.unpack("<%df" % (len(data) // 4), data[:len(data) // 4 * 4])


def write(path, content, mode="w"):
    with open(path, mode) as f:
        f.write(content)


def finite_model(path):
    """A check: the file at `path` (relative to the case's folder) holds a finite model."""
    def check(env, work, proc):
        full = os.path.join(work, path)
        if not os.path.exists(full):
            return "%s was not written" % path
        values = read_floats(full)
        if not values:
            return "%s is empty" % path
        bad = sum(1 for v in values if v != v or v in (float("inf"), float("-inf")))
        return "%d of %d values of %s are not finite" % (bad, len(values), path) if bad else None
    return check


def absent(path):
    def check(env, work, proc):
        return "%s exists" % path if os.path.exists(os.path.join(work, path)) else None
    return check


def unchanged(path, content):
    def check(env, work, proc):
        full = os.path.join(work, path)
        with open(full, "rb") as f:
            got = f.read()
        return None if got == content else "%s changed" % path
    return check


def all_of(*checks):
    def check(env, work, proc):
        for c in checks:
            problem = c(env, work, proc)
            if problem:
                return problem
        return None
    return check
