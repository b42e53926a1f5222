"""Builds libsipprofile with cargo and bundles it in the package, so that
``pip install ./bindings/python`` (from a clone of the repository) gives a
package that needs nothing else.

Settings, through the environment:
  SIPPROFILE_CARGO_PROFILE  release (default) or debug: which build to bundle
  SIPPROFILE_NO_BUILD=1     bundle nothing: the package then loads the library
                            from $SIPPROFILE_LIB or the loader path
  CARGO, CARGO_TARGET_DIR   as for cargo itself
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the repository: Cargo.toml builds the library
LIBRARY = "libsipprofile.so"
BUNDLED_NAME = "libsipprofile.so.0"  # its SONAME
# Executables of the crate that go beside the library, where it looks for
# them: each is built and bundled when Cargo.toml declares it.
BESIDE_LIBRARY = ["sipprofile-server"]


def _declared_bins(cargo_toml: str) -> list:
    return [b for b in BESIDE_LIBRARY if f'name = "{b}"' in cargo_toml]


class BuildWithLibrary(build_py):
    """build_py, then cargo build, then the library (and BESIDE_LIBRARY) into the package."""

    def run(self):
        super().run()
        if os.environ.get("SIPPROFILE_NO_BUILD"):
            return
        manifest = ROOT / "Cargo.toml"
        if not manifest.exists():
            raise SystemExit(
                f"sipprofile: {manifest} not found. Install the package from a clone of the "
                "repository (pip install ./bindings/python), or set SIPPROFILE_NO_BUILD=1 and "
                "point SIPPROFILE_LIB at a built libsipprofile.so.")
        profile = os.environ.get("SIPPROFILE_CARGO_PROFILE", "release")
        if profile not in ("release", "debug"):
            raise SystemExit(f"sipprofile: SIPPROFILE_CARGO_PROFILE={profile!r}: use release or debug")
        cargo = os.environ.get("CARGO", "cargo")
        if shutil.which(cargo) is None:
            raise SystemExit(f"sipprofile: {cargo!r} not found: building the library needs Rust "
                             "(https://rustup.rs), or set SIPPROFILE_NO_BUILD=1 and SIPPROFILE_LIB.")
        bins = _declared_bins(manifest.read_text())
        cmd = [cargo, "build", "--manifest-path", str(manifest), "--lib"]
        cmd += [arg for b in bins for arg in ("--bin", b)]
        if profile == "release":
            cmd.append("--release")
        print("sipprofile: " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        if not target.is_absolute():
            target = ROOT / target
        out = target / profile
        dest = Path(self.build_lib) / "sipprofile"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out / LIBRARY, dest / BUNDLED_NAME)
        for b in bins:
            shutil.copy2(out / b, dest / b)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: platform-specific, not pure Python."""

    def has_ext_modules(self):
        return not os.environ.get("SIPPROFILE_NO_BUILD")


cmdclass = {"build_py": BuildWithLibrary}
try:  # the library does not use Python's C API: any Python 3, this platform
    try:
        from setuptools.command.bdist_wheel import bdist_wheel
    except ImportError:
        from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel
except ImportError:
    pass

setup(cmdclass=cmdclass, distclass=BinaryDistribution)
