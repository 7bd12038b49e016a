"""Builds the thinwire Python package: the pure-Python modules in thinwire/ plus the extension
thinwire._thinwire, which CMake builds from the repository's top-level project (the extension
links the library's targets) with everything but the Python module switched off.

Environment (all optional):
  THINWIRE_BUILD_TYPE   CMAKE_BUILD_TYPE of the extension and the libraries, default Release
  THINWIRE_BUILD_DIR    the CMake build tree, default <repository>/build/pip; kept between
                        builds, so a reinstall only recompiles what changed
  THINWIRE_CMAKE_ARGS   extra CMake arguments, split like a shell would
                        (e.g. "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_FLAGS=-Werror")
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs (default: pip's --parallel or all CPUs)
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOP_CMAKELISTS = ROOT / "CMakeLists.txt"


def project_version() -> str:
    """The version in the top-level `project(thinwire VERSION x.y.z ...)`: the one place it is
    written; the extension gets the same value from CMake (thinwire.__version__)."""
    if not TOP_CMAKELISTS.is_file():
        raise SystemExit(
            f"thinwire: {TOP_CMAKELISTS} not found; the Python package is built from a checkout "
            "of the whole repository (pip install ./python from its root)")
    match = re.search(r"project\(\s*thinwire\s+VERSION\s+([0-9][0-9.]*)",
                      TOP_CMAKELISTS.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"thinwire: no `project(thinwire VERSION ...)` in {TOP_CMAKELISTS}")
    return match.group(1)


class CMakeBuild(build_ext):
    """Configures and builds the thinwire_python target, then copies the extension where
    setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        cmake = shutil.which("cmake")
        if cmake is None:
            raise SystemExit("thinwire: cmake not found (Debian: apt-get install cmake)")
        build_dir = Path(os.environ.get("THINWIRE_BUILD_DIR") or ROOT / "build" / "pip")
        if not build_dir.is_absolute():
            build_dir = ROOT / build_dir
        build_type = os.environ.get("THINWIRE_BUILD_TYPE") or "Release"
        configure = [
            cmake, "-S", str(ROOT), "-B", str(build_dir),
            f"-DCMAKE_BUILD_TYPE={build_type}",
            "-DTHINWIRE_BUILD_PYTHON=ON",
            "-DTHINWIRE_BUILD_TESTS=OFF",
            "-DTHINWIRE_BUILD_BENCH=OFF",
            "-DTHINWIRE_BUILD_APPS=OFF",
            "-DTHINWIRE_BUILD_EXAMPLES=OFF",
            # The interpreter running this build (a venv's python too): the extension is built
            # for its version and ABI.
            f"-DPython3_EXECUTABLE={sys.executable}",
        ] + shlex.split(os.environ.get("THINWIRE_CMAKE_ARGS", ""))
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(self.parallel or
                                                                   os.cpu_count() or 1)
        build = [cmake, "--build", str(build_dir), "--target", "thinwire_python",
                 "--parallel", jobs]
        for command in (configure, build):
            print("thinwire:", " ".join(shlex.quote(c) for c in command), flush=True)
            subprocess.run(command, check=True)

        built = sorted((build_dir / "python" / "thinwire").glob("_thinwire*.so"))
        if len(built) != 1:
            raise SystemExit(f"thinwire: expected one _thinwire*.so in "
                             f"{build_dir}/python/thinwire, found {[p.name for p in built]}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(
    version=project_version(),
    packages=["thinwire"],
    ext_modules=[Extension("thinwire._thinwire", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
