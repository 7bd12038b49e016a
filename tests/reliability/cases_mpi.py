"""MPI ranks started with different settings (mpiexec MPMD): every rank checks at start that all
ranks resolved the same configuration, and a mismatch names the setting and the ranks."""
from common import TRAIN, Case

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMPI_MCA_mpi_yield_when_idle": "1",
    "LSAN_OPTIONS": "detect_leaks=0",
}

BASE = [a for a in TRAIN if a not in ("--workers", "2")] + ["--backend", "mpi"]


def mpmd(rank0, rank1):
    def launcher(env):
        return (["mpiexec", "--oversubscribe", "--bind-to", "none", "-n", "1", env.cli] + BASE +
                rank0 + [":", "-n", "1", env.cli] + BASE + rank1)
    return launcher


def cases(env):
    if not env.mpi:
        return []
    differ = [
        ("lr", ["--lr", "0.1"], ["--lr", "0.2"], r"--lr is 0\.1 on rank 0 but 0\.2 on rank 1"),
        ("seed", ["--seed", "1"], ["--seed", "2"], r"--seed is 1 on rank 0 but 2 on rank 1"),
        ("codec", ["--codec", "qsgd:s=4"], ["--codec", "qsgd:s=16"], r"--codec .* rank 1"),
        ("problem", ["--problem", "logistic"], ["--problem", "least-squares"],
         r"--problem .* rank 1"),
        ("algorithm", [], ["--algorithm", "local-sgd"], r"--(algorithm|codec) .* rank 1"),
        ("data", ["--data", "synthetic:n=64,d=4"], ["--data", "synthetic:n=64,d=5"],
         r"--data .* rank 1"),
        ("momentum", ["--momentum", "0"], ["--momentum", "0.5"], r"--momentum .* rank 1"),
        ("sync", ["--sync", "ring"], ["--sync", "allgather"], r"--sync .* rank 1"),
        ("batch-size", ["--batch-size", "8"], ["--batch-size", "4"], r"--batch-size .* rank 1"),
        ("gossip", ["--algorithm", "choco"], ["--algorithm", "qlocal-sgd", "--sync", "gossip"],
         r"--algorithm .* rank 1"),
        ("tuner", [], ["--tuner", "dynamic"], r"--tuner .* rank 1"),
        ("mlp-hidden", ["--problem", "mlp:hidden=8"], ["--problem", "mlp:hidden=9"],
         r"--problem .* rank 1"),
        ("iterations", ["--iterations", "3"], ["--iterations", "4"], r"--iterations .* rank 1"),
    ]
    out = []
    for name, a, b, pattern in differ:
        out.append(Case("mpi", "mpi-differ-" + name, [], 1, r"ranks disagree.*" + pattern,
                        launcher=mpmd(a, b), mpi=True, env=MPI_ENV, timeout=60))
    out.append(Case("mpi", "mpi-same-ok", [], 0, launcher=mpmd(["--lr", "0.1"], ["--lr", "0.1"]),
                    mpi=True, env=MPI_ENV, timeout=60))
    return out
