"""nats.js (the npm `nats` client, 2.29) JetStream end to end: streams, a pull consumer,
key-value and the object store (chunked objects), against trionats and nats-server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess

JS_DIR = Path(__file__).parent.parent / "js"
CHECKS = ["streams", "pull-consumer", "kv", "object-store"]

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_checks(url: str) -> list[str]:
    if not (JS_DIR / "node_modules" / "nats").is_dir():
        pytest.fail("nats.js is not installed: run `make test` (it runs npm ci in tests/js)")
    result = subprocess.run(["node", str(JS_DIR / "jetstream-e2e.mjs"), url],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.removeprefix("ok ") for line in result.stdout.splitlines()]


def test_nats_js_jetstream_against_trionats(tmp_path):
    with TrionatsProcess("-js", "-sd", str(tmp_path)) as server:
        assert run_checks(server.url) == CHECKS


def test_nats_js_jetstream_against_reference_server(tmp_path):
    with NatsServerProcess("-js", "-sd", str(tmp_path)) as server:
        assert run_checks(server.url) == CHECKS
