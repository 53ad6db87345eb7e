"""Where Qt cannot load, the suite still runs: Qt test modules are reported as
not run, naming the missing packages, and never end the run in an INTERNALERROR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.qt import needs_qt

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_qt_modules_are_told_apart_from_the_rest() -> None:
    tests = REPO_ROOT / "tests"
    assert needs_qt(tests / "ui" / "test_model.py")
    assert not needs_qt(tests / "unit" / "test_kiosk_text.py")  # kiosk_ui's Qt-free helpers
    assert not needs_qt(tests / "unit" / "test_layout.py")  # names Qt only in strings
    assert not needs_qt(tests / "unit" / "test_qt_missing.py")


def test_without_qt_the_qt_tests_are_skipped_with_the_packages_named(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONSULTEASE_TEST_QT_MISSING": "libglib2.0-0 libegl1",
        "QT_QPA_PLATFORM": "offscreen",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:pytest-qt",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'basetemp'}",
            "tests/ui/test_model.py",
            "tests/unit/test_kiosk_text.py",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "INTERNALERROR" not in out
    assert (
        "SKIPPED [1] tests/ui/test_model.py: Qt cannot load here, missing system packages: "
        "libglib2.0-0 libegl1; as root: apt-get install -y libglib2.0-0 libegl1"
    ) in out
    summary = out.strip().splitlines()[-1]
    assert " 1 skipped" in summary and " passed" in summary and "failed" not in summary, summary
