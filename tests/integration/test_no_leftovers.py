"""No server and no temp folder outlives a test session, however it ends.

Each test runs a small session of its own (tests/integration/leftover_probe.py)
that starts a private PostgreSQL, the session's broker and a test's own
mosquitto, then fails or is interrupted; afterwards none of its processes may
still run and its temp folder ($TMPDIR) must be empty. Run directly with
pytest, or through .ci/test (which adds a broker of its own when none answers).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consultease.tools.servers import free_port
from tests.support.qt import qt_missing_packages

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/integration/leftover_probe.py"


@dataclass(frozen=True, kw_only=True, slots=True)
class Proc:
    pid: int
    started: str  # field 22 of /proc/PID/stat: tells a reused pid apart
    cmdline: str

    def alive(self) -> bool:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        return fields[0] != "Z" and fields[19] == self.started


def processes() -> list[tuple[Proc, int]]:
    """Every process on the machine, with its parent pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append(
            (Proc(pid=int(entry.name), started=fields[19], cmdline=cmdline), int(fields[1]))
        )
    return found


def proc_of(pid: int) -> Proc | None:
    return next((proc for proc, _ in processes() if proc.pid == pid), None)


def session_processes(root_pid: int, marker: str) -> list[Proc]:
    """The descendants of ``root_pid`` and every process naming ``marker`` (a
    daemonised postmaster's parent is no longer the session)."""
    everything = processes()
    children: dict[int, list[Proc]] = {}
    for proc, parent in everything:
        children.setdefault(parent, []).append(proc)
    found: dict[int, Proc] = {}
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child.pid] = child
            todo.append(child.pid)
    for proc, _ in everything:
        if marker in proc.cmdline and proc.pid != os.getpid():
            found[proc.pid] = proc
    return list(found.values())


def end(procs: list[Proc]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(proc.alive() for proc in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in procs:
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"the probe session ended early ({process.returncode}):\n{output}")
        if time.monotonic() > deadline:
            pytest.fail("the probe session did not start its servers in time")
        time.sleep(0.2)


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    """A folder outside /tmp/pytest-of-USER: as root the probe's PostgreSQL runs as
    another account and must traverse it, and pytest takes o+x away from that
    folder whenever another session starts."""
    path = Path(tempfile.mkdtemp(prefix="consultease-leftover-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    ("runner", "ending"),
    [
        ("pytest", "a failing test"),
        ("pytest", "SIGINT"),
        ("pytest", "SIGTERM"),
        (".ci/test", "SIGTERM"),
        (".ci/test", "Ctrl-C"),
    ],
)
def test_no_server_or_temp_folder_outlives_the_session(
    runner: str, ending: str, outside_basetemp: Path
) -> None:
    tmp_path = outside_basetemp
    temp = tmp_path / "tmp"
    temp.mkdir()
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "LEFTOVER_PROBE_READY": str(ready),
        "LEFTOVER_PROBE_MODE": "fail" if ending == "a failing test" else "wait",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    args = [PROBE, "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}", "-q"]
    if runner == "pytest":
        # The private PostgreSQL and broker the session starts on a fresh machine.
        env["CONSULTEASE_TEST_PRIVATE_SERVERS"] = "1"
        if qt_missing_packages() is not None:
            args += ["-p", "no:pytest-qt"]
        command = [sys.executable, "-m", "pytest", *args]
    else:
        # Nothing answers on this port, so .ci/test starts a broker of its own.
        env["CONSULTEASE_TEST_MQTT_PORT"] = str(free_port())
        env.pop("CONSULTEASE_TEST_MQTT_HOST", None)
        command = [str(REPO_ROOT / ".ci" / "test"), *args]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    started: list[Proc] = []
    try:
        wait_for(ready, process, timeout=300)
        started = session_processes(process.pid, str(tmp_path))
        reported = [proc_of(pid) for pid in json.loads(ready.read_text())["pids"]]
        # The probe's postmaster (private when run by pytest) and its own broker.
        assert None not in reported and len(reported) >= (runner == "pytest"), reported
        started += [proc for proc in reported if proc is not None and proc not in started]
        if ending == "SIGINT":
            process.send_signal(signal.SIGINT)
        elif ending == "SIGTERM":
            process.send_signal(signal.SIGTERM)
        elif ending == "Ctrl-C":
            os.killpg(process.pid, signal.SIGINT)  # the terminal signals the whole job
        output, _ = process.communicate(timeout=180)
    finally:
        if process.stdout is not None:
            process.stdout.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            # A daemonised postmaster is not in the group: end what the probe
            # started, so that a failing test leaves nothing behind either.
            end([proc for proc in started if proc.alive()])
    text = output.decode(errors="replace")
    assert process.returncode == (1 if ending == "a failing test" else 2), text
    assert started, "the probe session started no process"
    time.sleep(0.5)  # a process that got its signal a moment before the session ended
    left = [proc for proc in started if proc.alive()]
    left += [
        proc
        for proc in session_processes(process.pid, str(tmp_path))
        if proc.alive() and proc not in left
    ]
    assert not left, "still running after the session:\n" + "\n".join(p.cmdline for p in left)
    assert not list(temp.iterdir()), f"left in the temp folder: {sorted(temp.iterdir())}"
