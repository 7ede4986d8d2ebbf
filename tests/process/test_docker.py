"""The container image of etc/docker/Dockerfile: it builds, serves clients and monitoring as its
unprivileged user, and leaves through lame duck mode on SIGUSR2 (the compose file's stop signal).

Needs a Docker daemon and a base image with Python 3.11+ (`python:3.12-slim` by default; set
TRIONATS_DOCKER_BASE to another, e.g. a local Debian image with python3-venv, where Docker Hub
cannot be reached). Skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
BASE = os.environ.get("TRIONATS_DOCKER_BASE", "python:3.12-slim")
#: Seconds for the image build (pip installs the package and its dependencies).
BUILD_TIMEOUT = 600


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=check)  # fmt: skip


@pytest.fixture(scope="module")
def image():
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.skip("no Docker daemon")
    if docker("image", "inspect", BASE, check=False).returncode != 0:
        if docker("pull", BASE, timeout=300, check=False).returncode != 0:
            pytest.skip(f"base image {BASE} is not available")
    tag = f"trionats:test-{os.getpid()}"
    built = docker("build", "--network", "host", "--build-arg", f"BASE={BASE}",
                   "-f", str(ROOT / "etc" / "docker" / "Dockerfile"), "-t", tag, str(ROOT),
                   timeout=BUILD_TIMEOUT, check=False)  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield tag
    docker("rmi", "-f", tag, check=False)


def wait_for_log(name: str, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = docker("logs", name, check=False)
        if text in logs.stdout + logs.stderr:
            return logs.stdout + logs.stderr
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the container's log: {logs.stdout + logs.stderr}")


def round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        received = b""
        while b"\r\n" not in received:
            received += sock.recv(65536)
        sock.sendall(b'CONNECT {"verbose":false}\r\nSUB box 1\r\nPUB box 2\r\nhi\r\nPING\r\n')
        expected = b"MSG box 1 2\r\nhi\r\nPONG\r\n"
        received = b""
        while len(received) < len(expected):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_image_serves_and_leaves_through_lame_duck(image):
    port, http_port = free_port(), free_port()
    name = f"trionats-test-{os.getpid()}"
    docker("run", "-d", "--name", name, "--network", "host", image, "-p", str(port),
           "-m", str(http_port))  # fmt: skip
    try:
        wait_for_log(name, "Server is ready")
        assert round_trip(port) == b"MSG box 1 2\r\nhi\r\nPONG\r\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok"}
        user = docker("exec", name, "id", "-un").stdout.strip()
        assert user == "trionats"  # not root
        docker("kill", "-s", "USR2", name)  # no client left to move: it exits at once
        logs = wait_for_log(name, "Server Exiting..")
        assert "Entering lame duck mode" in logs
        assert docker("wait", name, timeout=30).stdout.strip() == "0"
    finally:
        docker("rm", "-f", name, check=False)
