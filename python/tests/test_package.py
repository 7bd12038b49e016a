"""The installed package: its version is the C++ project's, its metadata is installed, and the
extension was compiled with optimization."""
import importlib.metadata
import os
import re

import pytest

import thinwire

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def _project_version():
    with open(os.path.join(_ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(\s*thinwire\s+VERSION\s+([0-9.]+)", f.read()).group(1)


def test_version_is_the_cmake_project_version():
    assert thinwire.__version__ == _project_version()
    assert thinwire.build_info()["version"] == thinwire.__version__


def test_installed_metadata_matches_the_module():
    try:
        dist = importlib.metadata.distribution("thinwire")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("THINWIRE_TEST_INSTALLED"):
            raise
        pytest.skip("thinwire is used from the build tree, not installed with pip")
    assert dist.version == thinwire.__version__
    assert "numpy" in " ".join(dist.requires or [])


def test_extension_is_optimized():
    info = thinwire.build_info()
    if info["build_type"] == "Debug" and not os.environ.get("THINWIRE_TEST_INSTALLED"):
        pytest.skip("a Debug build tree (the pip build is Release)")
    assert info["optimized"], info
