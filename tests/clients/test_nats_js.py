"""nats.js (the npm `nats` client) end to end against trionats, and against nats-server for reference."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess

JS_DIR = Path(__file__).parent.parent / "js"
CHECKS = ["pubsub-wildcards", "request-reply", "headers", "queue-group", "no-responders", "drained"]

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_checks(url: str) -> list[str]:
    if not (JS_DIR / "node_modules" / "nats").is_dir():
        pytest.fail("nats.js is not installed: run `make test` (it runs npm ci in tests/js)")
    result = subprocess.run(
        ["node", str(JS_DIR / "e2e.mjs"), url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.removeprefix("ok ") for line in result.stdout.splitlines()]


def test_nats_js_against_trionats():
    with TrionatsProcess() as server:
        assert run_checks(server.url) == CHECKS


def test_nats_js_against_reference_server():
    with NatsServerProcess() as server:
        assert run_checks(server.url) == CHECKS
