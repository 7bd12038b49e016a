"""2-process torch.distributed tests (Gloo, CPU) of thinwire.torch: the DDP hook and the
quantized local-SGD averager. Workers are in ddp_workers.py."""
import os

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with Gloo is not available", allow_module_level=True)

import torch.multiprocessing as mp  # noqa: E402

import ddp_workers  # noqa: E402

WORLD = 2
QSGD4 = "qsgd:s=7,bucket=512,norm=max,coding=packed"


def _spawn(tmp_path, fn, *args):
    init_file = tmp_path / "init"
    mp.spawn(fn, args=(WORLD, str(init_file), str(tmp_path)) + args, nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def _equal(a, b):
    # A bool, not tensors: pytest's assertion rewriting would print whole tensors on failure.
    return bool(len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b)))


def _max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def test_hook_state_is_checked_against_the_hook_it_is_loaded_into():
    import thinwire
    import thinwire.torch as twt

    hook = twt.ddp_hook(QSGD4, seed=4)
    state = hook.state_dict()
    assert state["codec"] == QSGD4 and state["error_feedback"] and state["seed"] == 4
    twt.ddp_hook(QSGD4).load_state_dict(state)
    with pytest.raises(thinwire.InvalidArgument, match="saved for codec"):
        twt.ddp_hook("identity").load_state_dict(state)
    with pytest.raises(thinwire.InvalidArgument, match="saved for codec"):
        twt.ddp_hook(QSGD4, error_feedback=False).load_state_dict(state)
    assert twt.ddp_hook("topk:k=4+ef", error_feedback=None).error_feedback
    assert not twt.ddp_hook("topk:k=4", error_feedback=None).error_feedback
    with pytest.raises(thinwire.InvalidArgument, match="period"):
        twt.QuantizedModelAverager(period=0)


def test_identity_hook_matches_ddp_and_qsgd_4bit_trains_close_to_it(tmp_path):
    steps = 40
    results = _spawn(tmp_path, ddp_workers.compare_hooks, steps, QSGD4)
    for r in results:
        # identity decodes exactly; the average (g0 + g1)/2 equals DDP's g0/2 + g1/2 bit for bit
        # because halving is exact in binary floating point.
        assert _equal(r["identity"], r["plain"]), _max_diff(r["identity"], r["plain"])
        assert _equal(r["identity_raw"], r["plain"]), _max_diff(r["identity_raw"], r["plain"])
    # Every rank ends with the same model.
    assert _equal(results[0]["compressed"], results[1]["compressed"])
    r = results[0]
    assert r["loss_plain"] < 0.5 * r["loss_initial"]  # the problem is actually being learned
    # 4-bit max-norm QSGD with error feedback: the stated tolerance is 10 % of the uncompressed
    # final loss.
    assert r["loss_compressed"] <= 1.10 * r["loss_plain"], (r["loss_compressed"], r["loss_plain"])
    assert r["bytes_sent"] > 0


def test_resumed_run_with_saved_hook_state_continues_exactly(tmp_path):
    results = _spawn(tmp_path, ddp_workers.resume, 10, QSGD4)
    for r in results:
        assert _equal(r["straight"], r["resumed"]), _max_diff(r["straight"], r["resumed"])


def test_quantized_local_sgd_keeps_ranks_equal_and_trains_close_to_exact(tmp_path):
    # Averaging happens at averager steps 0, 4, ..., 40: with 41 steps the last step averages,
    # after which both ranks hold the same x_ref bit for bit.
    results = _spawn(tmp_path, ddp_workers.local_sgd, 41,
                     "qsgd:s=127,bucket=512,norm=max,coding=packed", 4)
    assert _equal(results[0]["quantized"], results[1]["quantized"])
    assert _equal(results[0]["exact"], results[1]["exact"])
    r = results[0]
    assert r["loss_exact"] < 0.5 * r["loss_initial"]
    # 8-bit QSGD on the model deltas: stated tolerance 10 % of exact local SGD's final loss.
    assert r["loss_quantized"] <= 1.10 * r["loss_exact"], (r["loss_quantized"], r["loss_exact"])
    assert r["bytes_sent"] > 0
