"""The codec bindings: round trips, in-place (zero-copy) reads and writes, error mapping."""
import numpy as np
import pytest

import thinwire as tw

QSGD4 = "qsgd:s=7,bucket=512,norm=max,coding=packed"


def _vector(n=1000, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("spec", tw.example_codec_specs())
def test_every_example_spec_round_trips_to_its_element_count(spec):
    codec = tw.Codec(spec)
    v = _vector()
    msg = codec.encode(v, seed=3, rank=1, iteration=2)
    assert isinstance(msg, bytes)
    assert len(msg) <= codec.max_encoded_bytes(v.size)
    info = tw.inspect(msg)
    assert info["elements"] == v.size and info["bytes"] == len(msg)
    assert info["spec"] == codec.spec
    out = tw.decode(msg)
    assert out.dtype == np.float32 and out.shape == (v.size,)
    if codec.lossless:
        np.testing.assert_array_equal(out, v)
    # Same (seed, rank, iteration) gives the same bytes (SPEC.md §2).
    assert codec.encode(v, seed=3, rank=1, iteration=2) == msg


def test_identity_is_exact_and_fp16_is_a_cast():
    v = _vector()
    np.testing.assert_array_equal(tw.decode(tw.Codec("identity").encode(v)), v)
    np.testing.assert_array_equal(tw.decode(tw.Codec("fp16").encode(v)),
                                  v.astype(np.float16).astype(np.float32))


def test_qsgd_decoded_error_is_within_one_level_of_the_bucket_max():
    # Max-norm QSGD with s levels rounds |v_i|/max to a neighbouring multiple of 1/s, so the
    # error per element is at most max|u|/s of its bucket (SPEC.md §2).
    v = _vector(2048)
    out = tw.decode(tw.Codec(QSGD4).encode(v, seed=7))
    for b in range(0, v.size, 512):
        u = v[b:b + 512]
        assert np.abs(out[b:b + 512] - u).max() <= np.abs(u).max() / 7 * (1 + 1e-5)


def test_decode_writes_into_out_in_place_and_accumulates():
    v = _vector()
    msg = tw.Codec("identity").encode(v)
    out = np.ones(v.size, np.float32)
    result = tw.decode(msg, out=out, accumulate=True)
    assert result is out  # the caller's array, no copy
    np.testing.assert_array_equal(out, v + 1)
    tw.decode(msg, out=out)
    np.testing.assert_array_equal(out, v)


def test_decode_into_a_view_writes_through_to_the_base_array():
    base = np.zeros(2 * 100, np.float32)
    v = _vector(100)
    tw.decode(tw.Codec("identity").encode(v), out=base[100:])
    np.testing.assert_array_equal(base[100:], v)
    assert not base[:100].any()


def test_encode_into_a_preallocated_uint8_buffer():
    codec = tw.Codec(QSGD4)
    v = _vector()
    buf = np.zeros(codec.max_encoded_bytes(v.size), np.uint8)
    n = codec.encode_into(v, buf, seed=1)
    assert bytes(buf[:n]) == codec.encode(v, seed=1)
    with pytest.raises(tw.InvalidArgument, match="encode_into"):
        codec.encode_into(v, np.zeros(10, np.uint8))


def test_messages_are_accepted_from_any_byte_buffer():
    v = _vector()
    msg = tw.Codec("identity").encode(v)
    for form in (bytearray(msg), memoryview(msg), np.frombuffer(msg, np.uint8)):
        np.testing.assert_array_equal(tw.decode(form), v)


def test_inputs_are_never_converted_silently():
    codec = tw.Codec("identity")
    with pytest.raises(TypeError, match="float32"):
        codec.encode(np.zeros(4, np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        codec.encode(_vector(10)[::2])
    with pytest.raises(TypeError, match="expected a NumPy array"):
        codec.encode([1.0, 2.0])
    out = np.zeros(4, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        tw.decode(codec.encode(np.zeros(4, np.float32)), out=out)


def test_cpp_errors_become_python_exceptions_with_the_cpp_message():
    with pytest.raises(tw.InvalidArgument, match=r"qsgd: levels must be in \[1, 2\^20\], got 0"):
        tw.Codec("qsgd:s=0")
    with pytest.raises(ValueError):  # InvalidArgument is also a ValueError
        tw.Codec("nosuchcodec")
    msg = bytearray(tw.Codec("identity").encode(_vector(10)))
    msg[-1] ^= 0xFF
    with pytest.raises(tw.CorruptMessage, match="checksum"):
        tw.decode(bytes(msg))
    with pytest.raises(tw.Error):
        tw.decode(b"not a message")
    with pytest.raises(tw.InvalidArgument):
        tw.decode(tw.Codec("identity").encode(_vector(10)), out=np.zeros(9, np.float32))
    with pytest.raises(tw.InvalidArgument):
        tw.decode(tw.Codec("identity").encode(_vector(10)), accumulate=True)
    with pytest.raises(tw.InvalidArgument, match="finite"):
        tw.Codec("identity").encode(np.array([1.0, np.nan], np.float32))


def test_parse_codec_reads_the_error_feedback_suffix():
    codec, ef = tw.parse_codec("topk:k=5+ef")
    assert ef and codec.spec.startswith("topk")
    with pytest.raises(tw.InvalidArgument):
        tw.Codec("topk:k=5+ef")  # Codec() takes specs without +ef


def test_error_feedback_telescopes_and_its_state_round_trips():
    # Σ_t decode(c_t) = Σ_t v_t - e_T (error_feedback.hpp), up to fp32 rounding.
    ef = tw.ErrorFeedback("topk:k=10", 200)
    total_sent = np.zeros(200, np.float32)
    total_v = np.zeros(200, np.float32)
    for t in range(5):
        v = _vector(200, seed=t)
        msg = ef.encode(v, iteration=t)
        assert tw.inspect(msg)["error_feedback"]
        tw.decode(msg, out=total_sent, accumulate=True)
        total_v += v
    np.testing.assert_allclose(total_sent + ef.residual, total_v, atol=1e-5)

    state = ef.save()
    restored = tw.ErrorFeedback(tw.Codec("topk:k=10"), 200)
    restored.load(state)
    np.testing.assert_array_equal(restored.residual, ef.residual)
    v = _vector(200, seed=9)
    assert restored.encode(v, iteration=5) == ef.encode(v, iteration=5)

    with pytest.raises(tw.InvalidArgument):
        tw.ErrorFeedback("topk:k=10", 199).load(state)
    with pytest.raises(tw.CorruptMessage):
        tw.ErrorFeedback("topk:k=10", 200).load(state[:-1])


def test_allreduce_residual_takes_its_length_from_the_call_it_is_built_for():
    from thinwire import _thinwire
    # d = 61 over 4 ranks: chunks of 16, 15, 15, 15; rank 3 owns chunk 0.
    assert tw.AllreduceResidual("topk:k=5", "allgather", 61, 3, 4).dimension == 61
    ring = tw.AllreduceResidual("topk:k=5", "ring", 61, 3, 4)
    assert (ring.dimension, ring.algorithm, ring.length, ring.rank, ring.size) == \
        (16, "ring", 61, 3, 4)
    assert isinstance(ring, tw.ErrorFeedback)
    with pytest.raises(tw.InvalidArgument):
        tw.AllreduceResidual("randk:k=5,shared_seed=1", "shared_randk", 61, 0, 4)

    inputs = [_vector(40, seed=r) for r in range(2)]
    right = [tw.AllreduceResidual("topk:k=5", "allgather", 40, r, 2) for r in range(2)]
    out = _thinwire.allreduce_threads(inputs, tw.Codec("topk:k=5"), algorithm="allgather",
                                      residuals=right)
    assert all(np.array_equal(out[0], o) for o in out)
    assert np.linalg.norm(right[0].residual) > 0
    wrong = [tw.AllreduceResidual("topk:k=5", "ring", 40, r, 2) for r in range(2)]
    with pytest.raises(tw.InvalidArgument, match="built for the ring of 40 elements"):
        _thinwire.allreduce_threads(inputs, tw.Codec("topk:k=5"), algorithm="allgather",
                                    residuals=wrong)
    with pytest.raises(TypeError, match="AllreduceResidual"):
        _thinwire.allreduce_threads(inputs, tw.Codec("topk:k=5"), algorithm="allgather",
                                    residuals=[tw.ErrorFeedback("topk:k=5", 40)] * 2)


def test_torch_tensors_are_read_and_written_in_place():
    torch = pytest.importorskip("torch")  # only this test needs torch
    t = torch.randn(300)
    msg = tw.Codec("identity").encode(t)
    assert isinstance(msg, bytes)
    out = torch.zeros(300)
    tw.decode(msg, out=out)
    assert torch.equal(out, t)
    # A tensor that requires grad is read through detach(), not copied.
    p = torch.randn(50, requires_grad=True)
    np.testing.assert_array_equal(tw.decode(tw.Codec("identity").encode(p)), p.detach().numpy())
    # Messages as uint8 tensors, both ways.
    codec = tw.Codec(QSGD4)
    buf = torch.zeros(codec.max_encoded_bytes(300), dtype=torch.uint8)
    n = codec.encode_into(t, buf, seed=2)
    assert bytes(buf[:n].numpy()) == codec.encode(t, seed=2)
    assert tw.inspect(buf[:n])["elements"] == 300
    with pytest.raises(TypeError, match="float32"):
        tw.Codec("identity").encode(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        tw.Codec("identity").encode(torch.zeros(4, 4).t())


def test_tuners_follow_the_cli_specs():
    fixed = tw.Tuner("fixed", codec="topk:k=5")
    assert fixed.name == "fixed" and fixed.last is None and fixed.save_state() == ""
    assert fixed.decide(0, _vector()).codec_spec == tw.Codec("topk:k=5").spec
    schedule = tw.Tuner("schedule:0=8,10=2", codec="topk:k=5")
    assert [schedule.decide(t, _vector()).level for t in (0, 9, 10, 99)] == [8, 8, 2, 2]
    assert schedule.last.codec.spec == tw.Codec("topk:k=2").spec
    with pytest.raises(tw.InvalidArgument, match="iteration 0"):
        tw.Tuner("schedule:5=2", codec="topk:k=5")
    with pytest.raises(tw.InvalidArgument, match="no level to tune"):
        tw.Tuner("dynamic", codec="fp16")


def test_errors_name_python_arguments_not_cli_flags():
    cases = [
        (dict(tuner="dyn"), r"^tuner='dyn': unknown tuner 'dyn'"),
        (dict(tuner="schedule:-1=4"), r"^tuner='schedule:-1=4': iterations must be >= 0"),
        (dict(tuner="fixed", lr_coupling=True),
         r"^lr_coupling=True: .*it needs tuner='dynamic' \(got 'fixed'\).*optimizer's lr"),
        (dict(tuner="dynamic", cost="free"), r"^cost='free': unknown model 'free'"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(tw.InvalidArgument, match=pattern) as info:
            tw.Tuner(codec="qsgd:s=7", **kwargs)
        assert "--" not in str(info.value), str(info.value)
    with pytest.raises(tw.InvalidArgument, match=r"^codec='fp16': 'fp16' has no level to tune"):
        tw.Tuner("dynamic", codec="fp16")
    tuner = tw.Tuner("fixed", codec="topk:k=5")
    with pytest.raises(tw.InvalidArgument, match=r"^tuner: the checkpoint was written by"):
        tuner.load_state('{"tuner": "dynamic", "codec": "topk:k=5", "level": 5, "levels": 0, '
                         '"rho": 1, "bits": 1, "lr_scale": 1}')


def _auto_tuner(latency, bandwidth, window=16, compute=None):
    """A dynamic packed-QSGD tuner under cost='auto' whose window is full of messages that took
    exactly latency + bits/bandwidth (sizes 20k, 40k, ... bits)."""
    tuner = tw.Tuner("dynamic", codec=QSGD4, cost=f"auto:window={window}")
    for i in range(window):
        bits = 2e4 * (i + 1)
        tuner.observe_message(bits, latency + bits / bandwidth)
    if compute is not None:
        tuner.observe_compute(compute)
    return tuner


def test_auto_cost_learns_the_link_it_is_shown_and_prices_with_it():
    tuner = tw.Tuner("dynamic", codec=QSGD4, cost="auto:latency=100us,bandwidth=10Mbit,window=16")
    assert tuner.link == {"latency_s": pytest.approx(1e-4), "bandwidth_bps": pytest.approx(1e7),
                          "bandwidth_fitted": False, "compute_s": 0.0, "samples": 0}
    v = _vector(20000)
    # Until the window is full the configured level is sent (docs/tuning.md).
    assert tuner.decide(0, v).codec.spec == QSGD4
    # Samples on an exact line: Theil–Sen gives the line back.
    fitted = _auto_tuner(latency=2e-3, bandwidth=5e6, compute=0.05)
    link = fitted.link
    assert link["latency_s"] == pytest.approx(2e-3, rel=1e-9)
    assert link["bandwidth_bps"] == pytest.approx(5e6, rel=1e-9)
    assert link["bandwidth_fitted"] and link["samples"] == 16
    assert link["compute_s"] == pytest.approx(0.05)
    # The price follows the link: with an iteration's compute as its fixed cost, a faster link
    # makes bits cheaper and the rule sends a finer level (more bits per element).
    bits = [_auto_tuner(1e-3, beta, compute=0.05).decide(3, v, copies=3).bits
            for beta in (1e6, 1e8, 1e10)]
    assert bits[0] < bits[1] < bits[2], bits
    # fixed= overrides the estimate; without a fixed cost the link's speed alone moves nothing
    # but α's share, so the levels coincide on 1 Mbit/s and 100 Mbit/s links of equal α/β ratio.
    slow = _auto_tuner(1e-3, 1e6).decide(3, v, fixed=0.0)
    fast = _auto_tuner(1e-5, 1e8).decide(3, v, fixed=0.0)
    assert slow.codec.spec == fast.codec.spec

    # The estimator's state round-trips: the same estimate and the same decision.
    restored = tw.Tuner("dynamic", codec=QSGD4, cost="auto:window=16")
    restored.load_link(fitted.save_link())
    assert restored.link == fitted.link
    assert restored.decide(3, v).codec.spec == fitted.decide(3, v).codec.spec

    other = tw.Tuner("dynamic", codec=QSGD4, cost="bits")
    assert other.link is None
    for call in (lambda: other.observe_message(1e4, 1e-3), lambda: other.observe_compute(0.1),
                 lambda: other.save_link()):
        with pytest.raises(tw.InvalidArgument, match="needs cost='auto'"):
            call()
    with pytest.raises(tw.InvalidArgument, match="copies"):
        fitted.decide(3, v, copies=0)


def test_dynamic_tuner_decides_on_residual_plus_v_and_its_state_round_trips():
    tuner = tw.Tuner("dynamic", codec="topk:k=5", cost="bits")
    ef = tw.ErrorFeedback("topk:k=5", 1000)
    for t in range(3):  # give the residual some content
        ef.encode(_vector(seed=t), iteration=t)
    v = _vector(seed=10)
    d = tuner.decide(3, v, residual=ef)
    # The same as deciding on e + v formed in float32 (what ErrorFeedback encodes).
    same = tw.Tuner("dynamic", codec="topk:k=5").decide(3, ef.residual + v)
    assert d.as_dict() == same.as_dict()
    assert d.as_dict() != tuner.decide(3, v).as_dict()  # the residual matters
    assert 0 < d.rho <= 1 and d.bits > 0 and d.level >= 1
    # Encoding with the chosen codec: the message is self-describing and sizes are as predicted.
    tuner.decide(3, v, residual=ef)  # the last decision is d again (saved below)
    msg = ef.encode(v, iteration=3, codec=d.codec)
    assert tw.inspect(msg)["spec"] == d.codec_spec and 8 * len(msg) == d.bits
    restored = tw.Tuner("dynamic", codec="topk:k=5")
    restored.load_state(tuner.save_state())
    assert restored.last.as_dict() == tuner.last.as_dict()
    with pytest.raises(tw.InvalidArgument, match="'dynamic' tuner"):
        tw.Tuner("fixed", codec="topk:k=5").load_state(tuner.save_state())
    with pytest.raises(tw.InvalidArgument, match="residual"):
        tuner.decide(4, _vector(999), residual=ef)
    with pytest.raises(TypeError, match="ErrorFeedback"):
        tuner.decide(4, v, residual=np.zeros(1000, np.float32))
    with pytest.raises(TypeError, match="thinwire.Codec"):
        ef.encode(v, codec="topk:k=3")


def test_error_feedback_telescopes_across_codecs_chosen_per_message():
    # Σ_t decode(c_t) = Σ_t v_t - e_T holds whichever codec encodes each message.
    ef = tw.ErrorFeedback("topk:k=10", 300)
    sent = np.zeros(300, np.float32)
    total = np.zeros(300, np.float32)
    for t, spec in enumerate(["topk:k=3", "topk:k=50", "qsgd:s=3,bucket=64", "topk:k=10"]):
        v = _vector(300, seed=t)
        msg = ef.encode(v, iteration=t, codec=tw.Codec(spec))
        assert tw.inspect(msg)["spec"] == tw.Codec(spec).spec
        tw.decode(msg, out=sent, accumulate=True)
        total += v
    np.testing.assert_allclose(sent + ef.residual, total, atol=1e-5)
