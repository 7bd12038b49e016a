"""The DDP hook with real Gloo processes: non-finite gradients, checkpoints across DDP's bucket
rebuild and between ranks, and the asynchronous hook. Workers are in hook_workers.py."""
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with Gloo is not available", allow_module_level=True)

import hook_workers  # noqa: E402
from spawn import equal, max_diff  # noqa: E402
from spawn import spawn as spawn_workers  # noqa: E402

def spawn(tmp_path, world, fn, *args):
    return spawn_workers(tmp_path, world, fn, *args, timeout_s=120)


def test_nonfinite_gradient_on_one_rank_is_seen_everywhere_and_leaves_no_trace(tmp_path):
    steps, bad_step = 6, 3
    results = spawn(tmp_path, 2, hook_workers.nonfinite_pass, steps, bad_step, 1)
    for r in results:
        # Every rank saw non-finite values at the poisoned step only (so a GradScaler skips),
        # nothing hung, and every segment of that step was passed through uncompressed.
        assert r["found_poisoned"] == [s == bad_step for s in range(steps)]
        assert r["units"] >= 3 and r["skips_poisoned"] == r["units"] and r["skips_skipped"] == 0
        # Residuals, counters and random streams untouched: the same as never taking the step.
        assert equal(r["poisoned"], r["skipped"]), max_diff(r["poisoned"], r["skipped"])
    assert equal(results[0]["poisoned"], results[1]["poisoned"])


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_nonfinite_error_policy_raises_on_every_rank(tmp_path, asynchronous):
    results = spawn(tmp_path, 2, hook_workers.nonfinite_error, 0, asynchronous)
    for r in results:
        assert r["error"] is not None and "NaN or infinity in the gradients of rank(s) [0]" in \
            r["error"], r["error"]
        assert r["is_thinwire"], r["last_error"]


@pytest.mark.parametrize("tuner", [None, "dynamic"])
def test_multi_bucket_resume_is_bit_identical(tmp_path, tuner):
    results = spawn(tmp_path, 2, hook_workers.resume, 4, tuner, False, False)
    for r in results:
        assert equal(r["straight"], r["resumed"]), max_diff(r["straight"], r["resumed"])
    # Rank 0's own state on rank 1: a clear error, not silently different parameters.
    assert "belongs to rank 0, this is rank 1" in results[1]["foreign_error"]


def test_rank0_gathered_state_restores_every_rank_exactly(tmp_path):
    results = spawn(tmp_path, 2, hook_workers.resume, 4, None, True, False)
    for r in results:
        assert equal(r["straight"], r["resumed"]), max_diff(r["straight"], r["resumed"])


def test_auto_cost_learns_the_link_from_the_hooks_own_all_gathers(tmp_path):
    steps, window = 5, 8
    results = spawn(tmp_path, 2, hook_workers.auto_cost, steps, window)
    for r in results:
        # Every all-gather was timed, once.
        assert r["link_samples"] == r["exchanges"] > steps
        # Every segment's tuner learnt from the exchanges after it was made; the first-made one
        # holds a full window.
        samples = [link["samples"] for link in r["links"].values()]
        assert max(samples) == min(window, r["link_samples"]) and min(samples) >= 1
        for link in r["links"].values():
            assert 0 < link["bandwidth_bps"] < float("inf") and link["latency_s"] >= 0
        # A level of the family, or dense where the measured link makes compression not pay
        # (timings differ from run to run, so the choice may too).
        assert all(d["codec"].startswith(("qsgd:", "identity", "fp16"))
                   for d in r["decisions"].values()), r["decisions"]
    # Each rank's level is its own, but every rank decodes the same messages: one model.
    assert equal(results[0]["params"], results[1]["params"]), \
        max_diff(results[0]["params"], results[1]["params"])


def test_async_hook_is_bit_identical_to_sync_and_overlaps_backward(tmp_path):
    steps = 4
    results = spawn(tmp_path, 2, hook_workers.asynchronous, steps)
    for r in results:
        assert r["units"] >= 4
        assert equal(r["sync"], r["async"]), max_diff(r["sync"], r["async"])
        # The synchronous hook exchanges inside its calls: nothing overlaps backward. The
        # asynchronous one returns at once and exchanges while autograd computes.
        assert max(r["overlap_sync"]) == 0.0
        overlapped = sum(r["overlap_async"]) / sum(r["exchange_async"])
        print(f"async hook: {overlapped:.0%} of exchange time overlapped backward "
              f"(per step {[round(o * 1e3, 2) for o in r['overlap_async']]} ms of "
              f"{[round(e * 1e3, 2) for e in r['exchange_async']]} ms)")
        assert sum(r["overlap_async"]) > 0.0


@pytest.mark.parametrize("world", [3, 4])
def test_ring_equals_the_cpp_collective_bit_for_bit(tmp_path, world):
    import numpy as np
    import thinwire
    from thinwire import _thinwire

    codec, iterations = hook_workers.QSGD4, 3
    results = spawn(tmp_path, world, hook_workers.ring_collective, codec, iterations)
    c = thinwire.Codec(codec)
    for n in hook_workers.RING_LENGTHS:
        feedback = [thinwire.AllreduceResidual(c, "ring", n, r, world) for r in range(world)]
        for r in range(world):  # the ring keeps the residual of the chunk it owns
            owned = thinwire.balanced_chunk(n, world, thinwire.ring_owned_chunk(r, world))
            assert feedback[r].dimension == owned[1]
        for it in range(iterations):
            inputs = [hook_workers.ring_inputs(r, n, it).numpy() for r in range(world)]
            ring = _thinwire.allreduce_threads(inputs, c, algorithm="ring", seed=11,
                                               iteration=it, residuals=feedback)
            gather = _thinwire.allreduce_threads(inputs, c, algorithm="allgather", seed=11,
                                                 iteration=it)
            for r in range(world):
                got = results[r]
                assert np.array_equal(got[("ring", n, it)].numpy(), ring[r]), (n, it, r)
                assert np.array_equal(got[("residual", n, it)].numpy(), feedback[r].residual)
                assert np.array_equal(got[("allgather", n, it)].numpy(), gather[r]), (n, it, r)
            # The ring's result is the same on every rank, and it is compressed: not the exact
            # mean, but close to it (QSGD 4-bit, a few re-quantizations).
            assert all(np.array_equal(ring[0], ring[r]) for r in range(world))
            if n >= 1000:
                exact = np.mean(inputs, axis=0)
                error = np.linalg.norm(ring[0] - exact) / np.linalg.norm(exact)
                assert 0 < error < 0.5, error


@pytest.mark.parametrize("world", [3, 4])
def test_ring_hook_keeps_every_rank_identical(tmp_path, world):
    results = spawn(tmp_path, world, hook_workers.ring_training, 5, "ring")
    for r in results[1:]:
        assert equal(results[0]["params"], r["params"]), max_diff(results[0]["params"],
                                                                  r["params"])
    r = results[0]
    assert r["counts"] == {"ring": 5 * 5}, r["counts"]  # five segments, five steps
    assert r["losses"][-1] < 0.5 * r["losses"][0], r["losses"]


def test_auto_picks_ring_for_large_segments_and_allgather_for_small_ones():
    import thinwire.torch as twt

    hook = twt.ddp_hook(hook_workers.QSGD4)
    assert hook.algorithm(262_144, 2) == "allgather"  # ring never pays at 2 ranks
    assert hook.algorithm(262_144, 4) == "ring"  # 128 KiB messages: bandwidth dominates
    assert hook.algorithm(512, 4) == "allgather"  # 300 B messages: latency dominates
    tuned = twt.ddp_hook(hook_workers.QSGD4, tuner="dynamic")
    assert tuned.algorithm(262_144, 4) == "allgather"
    import thinwire
    with pytest.raises(thinwire.InvalidArgument, match="does not combine with tuner"):
        twt.ddp_hook(hook_workers.QSGD4, tuner="dynamic", allreduce="ring")


def test_identity_hook_equals_ddp_in_the_cases_users_combine(tmp_path):
    results = spawn(tmp_path, 2, hook_workers.identity_cases, 4)
    for r in results:
        for case in ("buckets", "bucket_view", "unused", "no_sync"):
            for mode in ("sync", "async"):
                assert equal(r[(case, mode)], r[(case, "plain")]), (
                    case, mode, max_diff(r[(case, mode)], r[(case, "plain")]))
