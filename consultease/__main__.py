"""``python -m consultease``: the same as the ``consultease`` command.

From a fresh source checkout whose dependencies are not installed yet, it
first runs ``.ci/setup`` (a virtual environment in ``.venv`` with everything
installed) and then re-runs itself inside that environment. That is what
lets ``python3 -m consultease demo`` work as the very first command.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

_REQUIRED = ("psycopg", "paho", "sqlalchemy", "cachetools", "rich")


def _bootstrap() -> None:
    if all(importlib.util.find_spec(name) is not None for name in _REQUIRED):
        return
    root = Path(__file__).resolve().parent.parent
    setup = root / ".ci" / "setup"
    venv_python = root / ".venv" / "bin" / "python"
    if not setup.exists() or Path(sys.prefix).resolve() == (root / ".venv").resolve():
        missing = [n for n in _REQUIRED if importlib.util.find_spec(n) is None]
        sys.exit(f"consultease: error: missing dependencies: {', '.join(missing)}")
    print("consultease: first run, installing dependencies into .venv …", file=sys.stderr)
    subprocess.run([str(setup)], check=True)
    os.execv(venv_python, [str(venv_python), "-m", "consultease", *sys.argv[1:]])


_bootstrap()

from consultease.cli import main  # noqa: E402 - after the bootstrap on purpose

sys.exit(main())
