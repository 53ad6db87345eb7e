"""Running the suite where Qt cannot load: every Qt test reported as not run, and why.

PySide6 needs a few system libraries (libglib2.0-0, libegl1, ...) that only root can
install. pytest-qt imports PySide6 when pytest starts, so without them the whole run
would end in an INTERNALERROR. ``.ci/test`` probes Qt first; when the probe fails it
passes ``-p no:pytest-qt`` and names the missing Debian packages in
``CONSULTEASE_TEST_QT_MISSING``. Then every test module that needs Qt (all of
``tests/ui``, and any other module importing PySide6, pytest-qt or a Qt part of
``kiosk_ui``) is collected as one skipped item that names the packages, and
everything else runs.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ENV = "CONSULTEASE_TEST_QT_MISSING"
UI_TESTS = Path(__file__).resolve().parent.parent / "ui"
QT_MODULES = ("PySide6", "pytestqt", "shiboken6")
QT_FIXTURES = {"qtbot", "qapp", "qtmodeltester", "qtlog"}
# kiosk_ui modules that import no Qt (plain text and theme helpers).
QT_FREE_KIOSK_MODULES = {"kiosk_ui", "kiosk_ui.theme", "kiosk_ui.names", "kiosk_ui.problems"}


ERROR_ENV = "CONSULTEASE_TEST_QT_ERROR"


@dataclass(frozen=True, kw_only=True, slots=True)
class QtMissing:
    packages: tuple[str, ...]
    error: str = ""

    @property
    def reason(self) -> str:
        if not self.packages:
            return f"Qt cannot load here: {self.error or 'unknown error'}"
        listed = " ".join(self.packages)
        return (
            f"Qt cannot load here, missing system packages: {listed}; "
            f"as root: apt-get install -y {listed}"
        )

    def summary(self) -> str:
        return f"Qt tests not run: {self.reason}"


def qt_missing_packages() -> QtMissing | None:
    """What ``.ci/test`` found missing for Qt, or None when Qt loads."""
    value = os.environ.get(ENV)
    if value is None:
        return None
    return QtMissing(packages=tuple(value.split()), error=os.environ.get(ERROR_ENV, ""))


@cache
def needs_qt(path: Path) -> bool:
    """Whether the test module at ``path`` loads Qt (imports it or asks for a Qt fixture)."""
    if path.resolve().is_relative_to(UI_TESTS):
        return True
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            {arg.arg for arg in node.args.args} & QT_FIXTURES
        ):
            return True
        for name in names:
            if name.split(".")[0] in QT_MODULES:
                return True
            if name.split(".")[0] == "kiosk_ui" and name not in QT_FREE_KIOSK_MODULES:
                return True
    return False


class QtNotRunItem(pytest.Item):
    """The one item a Qt test module becomes where Qt cannot load: skipped (by a
    skip mark, so the report names the module), with why."""

    def runtest(self) -> None:
        raise AssertionError("a Qt test module ran where Qt cannot load")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}: Qt tests not run"


class QtNotRunModule(pytest.File):
    def collect(self) -> list[pytest.Item]:
        missing = qt_missing_packages()
        item = QtNotRunItem.from_parent(self, name="qt-tests-not-run")
        item.add_marker(pytest.mark.skip(reason=missing.reason if missing else "Qt cannot load"))
        return [item]


def module_without_qt(module_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """For ``pytest_pycollect_makemodule``: a skipped stand-in for a Qt test module
    when Qt cannot load, else None (pytest collects the module as usual)."""
    if qt_missing_packages() is None or not needs_qt(module_path):
        return None
    return QtNotRunModule.from_parent(parent, path=module_path)
