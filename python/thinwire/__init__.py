"""thinwire: communication-efficient distributed learning (Python bindings).

Codecs are built from the CLI's spec strings and compress float32 NumPy arrays or torch tensors
into self-describing messages (bytes); ``decode`` needs no codec object::

    import numpy as np, thinwire
    codec = thinwire.Codec("qsgd:s=7,bucket=512,norm=max,coding=packed")
    msg = codec.encode(np.ones(1000, np.float32), seed=1, rank=0, iteration=3)
    thinwire.inspect(msg)["bits_per_element"]
    v = thinwire.decode(msg)

``thinwire.Tuner("dynamic", codec="topk:k=100", cost="bits")`` chooses the codec level per message
as ``thinwire train --tuner`` does (``decide(t, v, residual=ef)`` → a ``Decision``).

``thinwire.torch`` holds the DDP communication hook and the quantized local-SGD averager; it is
imported lazily so that the codecs work without torch installed.
"""
import warnings as _warnings

from ._thinwire import (  # noqa: F401  (re-exported API)
    __version__,
    build_info,
    AllreduceResidual,
    Codec,
    balanced_chunk,
    ring_owned_chunk,
    CorruptMessage,
    Decision,
    Error,
    ErrorFeedback,
    InvalidArgument,
    IoError,
    Timeout,
    TransportError,
    Tuner,
    codec_names,
    decode,
    example_codec_specs,
    inspect,
    parse_codec,
)



class NonFiniteGradient(Error, FloatingPointError):
    """Raised on every rank by the DDP hook with nonfinite="error" when any rank's gradients hold
    NaN or infinity (PyTorch 1.13 re-raises errors from communication hooks in backward() as a
    RuntimeError whose message starts with the class name; the hook keeps the exception in
    ``hook.last_error``)."""


__all__ = [
    "__version__",
    "NonFiniteGradient",
    "AllreduceResidual",
    "build_info",
    "balanced_chunk",
    "ring_owned_chunk",
    "Codec",
    "CorruptMessage",
    "Decision",
    "Error",
    "ErrorFeedback",
    "InvalidArgument",
    "IoError",
    "Timeout",
    "TransportError",
    "Tuner",
    "codec_names",
    "decode",
    "example_codec_specs",
    "inspect",
    "parse_codec",
]

if not build_info()["optimized"]:
    _warnings.warn(
        "thinwire: the extension was built without compiler optimization (CMAKE_BUILD_TYPE "
        f"{build_info()['build_type']!r}); encoding is several times slower. Reinstall with "
        "pip (Release by default) or configure CMake with -DCMAKE_BUILD_TYPE=Release.",
        RuntimeWarning, stacklevel=2)
