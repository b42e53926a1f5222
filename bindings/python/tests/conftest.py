import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "peers" / "kamailio.sh"


def free_port() -> int:
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Kamailio:
    def __init__(self, rundir: str, port: int):
        self.rundir, self.port = rundir, port

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def bindings(self) -> str:
        return subprocess.run([str(SCRIPT), "bindings", self.rundir], capture_output=True, text=True).stdout


@pytest.fixture
def kamailio():
    with tempfile.TemporaryDirectory(prefix="sipprofile-py-kam-") as d:
        port = free_port()
        subprocess.run([str(SCRIPT), "start", d, str(port), "MD5"], check=True)
        try:
            yield Kamailio(d, port)
        finally:
            subprocess.run([str(SCRIPT), "stop", d])


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "profiles.db")
