"""Layering: protocol/ and core/ stay pure (no I/O library, no import of the server layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trionats

PACKAGE = Path(trionats.__file__).parent
PURE_DIRS = ("protocol", "core")
FORBIDDEN_TOP_LEVEL = {"trio", "socket", "ssl", "asyncio", "selectors", "anyio"}
ALLOWED_TRIONATS = ("trionats.protocol", "trionats.core", "trionats.defaults", "trionats.errors")


def pure_modules() -> list[Path]:
    return sorted(path for name in PURE_DIRS for path in (PACKAGE / name).rglob("*.py"))


def module_name(path: Path, package_dir: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """Absolute names of every module `path` imports, at any depth (TYPE_CHECKING included).

    `from pkg import name` counts as importing `pkg.name` too, since `name` may be a module
    (`from .. import defaults`).
    """
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path, package_dir)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                source = ".".join(base)
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("__import__")  # dynamic imports would dodge this check
    return found


def violations(path: Path, package_dir: Path = PACKAGE) -> list[str]:
    bad = []
    for name in sorted(imported_modules(path, package_dir)):
        top = name.split(".")[0]
        if name == "__import__" or name.startswith("importlib"):
            bad.append(f"dynamic import ({name})")
        elif top in FORBIDDEN_TOP_LEVEL:
            bad.append(name)
        elif top == "trionats" and name != "trionats":
            # `from trionats import x` adds both "trionats" and "trionats.x"; judge the latter.
            if not any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_TRIONATS):
                bad.append(name)
    # Report `from x import y` once, as x, when x itself is already refused.
    return [name for name in bad if not any(name.startswith(other + ".") for other in bad)]


def test_there_are_modules_to_check():
    names = {module_name(path) for path in pure_modules()}
    assert {"trionats.protocol.parser", "trionats.core.sublist"} <= names


@pytest.mark.parametrize("path", pure_modules(), ids=module_name)
def test_pure_module_imports(path):
    assert violations(path) == []


def test_the_checker_catches_what_it_should(tmp_path):
    # The checker itself: relative imports resolve, and each kind of offence is reported.
    fake = tmp_path / "trionats" / "core" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "import trio\n"
        "import socket as s\n"
        "from ssl import SSLContext\n"
        "from .. import client\n"
        "from ..server import Server\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from trionats.connection import Connection\n"
        "from .. import defaults, errors\n"
        "from ..protocol.subjects import FWC\n"
        "from . import sublist\n"
    )
    assert violations(fake, tmp_path / "trionats") == [
        "socket",
        "ssl",
        "trio",
        "trionats.client",
        "trionats.connection",
        "trionats.server",
    ]
