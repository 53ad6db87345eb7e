"""``consultease kiosk --fullscreen`` in a bare X session (Xvfb, no window manager): the
window is the screen, and every control and the sign-in are on it, down to 800x480."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.xvfb import bare_x_server
from tests.ui.support import seed_board


def inside(outer: list[int], inner: list[int]) -> bool:
    ox, oy, ow, oh = outer
    x, y, w, h = inner
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


@pytest.mark.parametrize("size", [(800, 480), (1024, 600)], ids=["800x480", "1024x600"])
def test_fullscreen_fills_the_screen_without_a_window_manager(
    size: tuple[int, int], database_url: str, db: psycopg.Connection[Any], repo_root: Path
) -> None:
    seed_board(db, 30)
    width, height = size
    with bare_x_server(width, height) as display:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        env.pop("WAYLAND_DISPLAY", None)
        done = subprocess.run(
            [sys.executable, "-m", "tests.ui.fullscreen_probe", database_url],
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    screen = [0, 0, width, height]
    assert report["exit"] == 0
    assert report["screen"] == screen
    assert report["window"] == screen, "the window is the whole screen, frame and all"
    for control in ("admin", "clock", "search", "sign_in"):
        assert inside(screen, report[control]), (control, report[control])
    assert report["dialog"] == screen, "the sign-in covers the kiosk"
