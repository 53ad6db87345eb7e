"""A private X server with no window manager (Xvfb), as a kiosk's bare X session is."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def bare_x_server(width: int, height: int, *, timeout: float = 20.0) -> Iterator[str]:
    """Start Xvfb with one screen of ``width`` x ``height``; yield its ``DISPLAY``.

    The display number is chosen by the server (``-displayfd``), so parallel runs
    never collide. There is no window manager: nothing resizes or places windows.
    """
    # X servers put their sockets in /tmp/.X11-unix and leave the folder behind:
    # remove it afterwards if this server made it and nothing else uses it.
    socket_dir = Path("/tmp/.X11-unix")
    socket_dir_existed = socket_dir.exists()
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb); .ci/test installs it")
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [
            binary,
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as reader:
            number = reader.readline().strip()
        if not number.isdigit():
            raise RuntimeError(f"Xvfb did not start (exit code {process.poll()})")
        yield f":{number}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not socket_dir_existed:
            with contextlib.suppress(OSError):  # not empty: another X server uses it
                socket_dir.rmdir()
