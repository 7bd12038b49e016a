"""Makes `import thinwire` find the package built in build/python/python when it is not installed
and PYTHONPATH does not point there (ctest sets PYTHONPATH; a bare `pytest python/tests` from the
repository root after the README's CMake route uses this fallback).

With THINWIRE_TEST_INSTALLED=1 (CI, after `pip install ./python` into a venv) the package must come
from the interpreter's site-packages, never from the source or build tree."""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_built = os.path.join(_here, "..", "..", "build", "python", "python")
try:
    import thinwire  # noqa: F401
except ImportError:
    if os.environ.get("THINWIRE_TEST_INSTALLED"):
        raise
    sys.path.insert(0, os.path.abspath(_built))
    import thinwire  # noqa: F401

if os.environ.get("THINWIRE_TEST_INSTALLED"):
    _site = os.path.realpath(os.path.join(sys.prefix, "lib"))
    if not os.path.realpath(thinwire.__file__).startswith(_site + os.sep):
        raise ImportError(f"THINWIRE_TEST_INSTALLED: thinwire was imported from "
                          f"{thinwire.__file__}, not from the installed package under {_site}")


def pytest_report_header(config):
    info = thinwire.build_info()
    return (f"thinwire {thinwire.__version__} ({info['build_type']}, "
            f"optimized={info['optimized']}) from {os.path.dirname(thinwire.__file__)}")
