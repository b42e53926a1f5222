"""Which library the package loads, and what it says when there is none."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sipprofile
from sipprofile import _ffi


def test_the_library_is_the_bundled_one_unless_told_otherwise():
    env = os.environ.get("SIPPROFILE_LIB")
    if env:
        assert _ffi.LIBRARY_PATH == env
    else:
        # pip install built it and put it beside the package's modules.
        assert _ffi.LIBRARY_PATH == str(_ffi.BUNDLED)
        assert Path(_ffi.LIBRARY_PATH).parent == Path(sipprofile.__file__).parent
    assert sipprofile.version().count(".") == 2


def _import_in(path: str, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("SIPPROFILE_LIB", "PYTHONPATH")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", "import sipprofile"], cwd=path, env=full,
                          capture_output=True, text=True, timeout=60)


def test_a_bad_sipprofile_lib_says_what_to_do(tmp_path):
    r = _import_in(str(tmp_path), PYTHONPATH=str(Path(sipprofile.__file__).parents[1]),
                   SIPPROFILE_LIB=str(tmp_path / "missing.so"))
    assert r.returncode != 0
    assert "ImportError: sipprofile: SIPPROFILE_LIB=" in r.stderr, r.stderr
    assert "missing.so" in r.stderr and "pip install ./bindings/python" in r.stderr


def test_no_library_anywhere_says_how_to_point_at_one(tmp_path):
    # The package's Python files alone, as with SIPPROFILE_NO_BUILD=1.
    pkg = tmp_path / "sipprofile"
    pkg.mkdir()
    for f in Path(sipprofile.__file__).parent.glob("*.py"):
        shutil.copy(f, pkg / f.name)
    r = _import_in(str(tmp_path), PYTHONPATH=str(tmp_path), LD_LIBRARY_PATH="")
    if r.returncode == 0:
        pytest.skip("a libsipprofile.so.0 is installed on the loader path")
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: sipprofile: libsipprofile.so.0 not found"), r.stderr
    assert "SIPPROFILE_LIB" in last and "cargo build --release --lib" in last
