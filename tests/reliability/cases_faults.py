"""Training faults: a run stopped by SIGKILL, SIGTERM or SIGINT after a checkpoint resumes to the
bit-identical model of an uninterrupted run, and leaves no temporary file behind."""
import filecmp
import os
import signal
import subprocess
import time

from common import Case

RUN = ["train", "--data", "synthetic:n=2000,d=50", "--problem", "logistic", "--workers", "2",
       "--iterations", "600", "--batch-size", "16", "--progress", "none"]
CHECKPOINTED = RUN + ["--checkpoint", "{W}/ck", "--checkpoint-every", "20"]


def interrupted(sig):
    """Setup: start the run, wait for its first checkpoint, then send `sig`."""
    def setup(env, work):
        argv = [env.cli] + [a.replace("{W}", work) for a in CHECKPOINTED]
        proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        manifest = os.path.join(work, "ck", "latest.json")
        deadline = time.monotonic() + 60
        while not os.path.exists(manifest) and proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("no checkpoint after 60 s")
            time.sleep(0.005)
        proc.send_signal(sig)
        if proc.wait(timeout=30) == 0:
            raise RuntimeError("the run finished before the signal; make it longer")
    return setup


def same_as_uninterrupted(env, work, proc):
    ref = os.path.join(work, "ref.npy")
    subprocess.run([env.cli] + RUN + ["--save-model", ref], cwd=work, check=True,
                   capture_output=True, timeout=60)
    if not filecmp.cmp(ref, os.path.join(work, "m.npy"), shallow=False):
        return "the resumed model differs from the uninterrupted one"
    leftovers = [n for n in os.listdir(os.path.join(work, "ck")) if ".tmp." in n]
    return "temporary files left: %s" % leftovers if leftovers else None


def cases(env):
    out = []
    for name, sig in [("sigkill", signal.SIGKILL), ("sigterm", signal.SIGTERM),
                      ("sigint", signal.SIGINT)]:
        out.append(Case("faults", "resume-after-" + name,
                        CHECKPOINTED + ["--resume", "--save-model", "{W}/m.npy"], 0,
                        setup=interrupted(sig), check=same_as_uninterrupted, timeout=120))
    return out
