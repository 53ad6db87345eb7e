"""CPU cost that machine load cannot move: CPU seconds and instructions per process.

Throughput on a shared two-core machine swings with whatever else runs; the
CPU time a process spends per message hardly does (it moves with cache
pressure, not with waiting). ``cpu_seconds`` reads user + system time from
``/proc/PID/stat``; with ``descendants`` a service's child processes (the
state publisher) are measured beside it.
``instructions`` asks ``perf stat`` where the machine exposes the counter
(many virtual machines do not: then it says so, and nothing is guessed).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_PROC: Final = Path("/proc")
_LISTEN: Final = "0A"
"""TCP state LISTEN in /proc/net/tcp."""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return text.rsplit(")", 1)[1].split()


def _all_parents() -> dict[int, int]:
    """pid -> parent pid of every process visible now."""
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    parents = _all_parents()
    found, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the given processes have used so far (gone ones: 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # After the name: state(0) ppid(1) … utime(11) stime(12).
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` on this machine, when we may see it."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (_PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(entry.name)
    return None


# -- instructions -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PerfSupport:
    supported: bool
    detail: str
    """Why not, when it is not supported."""


_COUNT: Final = re.compile(r"^\s*([0-9.]+|<not supported>|<not counted>),[^,]*,instructions")


def perf_support() -> PerfSupport:
    """Whether ``perf stat -e instructions`` counts here (``perf stat -e instructions true``)."""
    perf = shutil.which("perf")
    if perf is None:
        return PerfSupport(supported=False, detail="perf is not installed")
    try:
        result = subprocess.run(
            [perf, "stat", "-x", ",", "-e", "instructions", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PerfSupport(supported=False, detail=f"perf stat failed: {exc}")
    value = _parse_instructions(result.stderr)
    if value is None:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = "the instructions counter is not supported on this machine"
        if result.returncode != 0 and lines:
            reason = lines[-1].strip()
        return PerfSupport(supported=False, detail=reason)
    return PerfSupport(supported=True, detail="")


def _parse_instructions(perf_stderr: str) -> int | None:
    for line in perf_stderr.splitlines():
        match = _COUNT.match(line)
        if match and match.group(1)[0].isdigit():
            return int(float(match.group(1)))
    return None


class InstructionCounter:
    """``perf stat -e instructions -p PID`` over a window: start, then ``stop()``."""

    def __init__(self, pids: Iterable[int]) -> None:
        perf = shutil.which("perf")
        assert perf is not None
        self._process = subprocess.Popen(
            [perf, "stat", "-x", ",", "-e", "instructions", "-p", ",".join(map(str, pids))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> int | None:
        """Instructions counted since the start (``None`` when perf counted nothing)."""
        self._process.send_signal(2)  # SIGINT: perf prints its counts and exits
        try:
            _, stderr = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return None
        return _parse_instructions(stderr)
