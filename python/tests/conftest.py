"""Makes `import thinwire` find the package built in build/python/python when PYTHONPATH does not
point there already (ctest sets PYTHONPATH; a bare `pytest python/tests` from the repository root
uses this fallback)."""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_built = os.path.join(_here, "..", "..", "build", "python", "python")
try:
    import thinwire  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.abspath(_built))
