"""The state publisher in a child process, off the ingest service's interpreter lock.

The ingest service spends its interpreter on MQTT packets and batches; the
state publisher's JSON, row reads and QOS 1 publishing used to take a fifth
or more of a core on the same lock and the same connection. ``StateProcess``
runs ``consultease state-publisher --child`` instead and supervises it:

- the child gets the database and broker URLs in its environment (never on
  its command line, where ``ps`` would show the passwords);
- it reports what it published as ``published N`` lines on its stdout, which
  the parent adds to its own counters and metrics;
- it stops when its stdin closes. The parent closes it on ``close()``, and
  the kernel closes it when the parent dies in any way (even ``kill -9``), so
  the child can never outlive the service. It runs in a process group of
  its own and ignores SIGINT, so Ctrl-C in a terminal reaches only the
  parent, which then stops it in order;
- if it dies while the parent runs, it is started again after a pause.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Final

from consultease.config import MqttEndpoint
from consultease.ingest.state_publisher import StateService

log = logging.getLogger(__name__)

REPORT_PREFIX: Final = "published "
RESTART_DELAY: Final = 1.0
MAX_RESTART_DELAY: Final = 30.0
STABLE_AFTER: Final = 30.0
"""A child that ran this long before dying restarts after the shortest pause again."""


class StateProcess:
    """``consultease state-publisher --child`` as a supervised child process."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        client_id: str,
        ca_file: str | None = None,
        on_published: Callable[[int], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self._command = [
            sys.executable,
            "-m",
            "consultease",
            "state-publisher",
            "--child",
            "--client-id",
            client_id,
        ]
        if ca_file is not None:
            self._command += ["--mqtt-ca-file", ca_file]
        if verbose:
            self._command.append("--verbose")
        self._env = dict(
            os.environ, CONSULTEASE_DATABASE_URL=database_url, CONSULTEASE_MQTT_URL=mqtt_url
        )
        self._on_published = on_published
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._supervisor: threading.Thread | None = None
        self.starts = 0
        """How many times a child was started (1 unless it had to be restarted)."""

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        with self._lock:
            process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("StateProcess.start called twice")
        self._supervisor = threading.Thread(
            target=self._supervise, name="consultease-state-supervisor", daemon=True
        )
        self._supervisor.start()

    def close(self, timeout: float = 5.0) -> None:
        """Close the child's stdin (it stops cleanly), wait, and make sure it is gone."""
        self._closing.set()
        with self._lock:
            process = self._process
        if process is not None:
            _stop_child(process, timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)

    def _supervise(self) -> None:
        delay = RESTART_DELAY
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                process = self._spawn()
            except OSError as exc:
                log.error("cannot start the state publisher: %s", exc)
            else:
                self._follow(process)
                code = process.wait()
                if process.stdin is not None:
                    with contextlib.suppress(OSError):
                        process.stdin.close()
                if self._closing.is_set():
                    break
                log.error("the state publisher exited with code %s; restarting it", code)
            if time.monotonic() - started > STABLE_AFTER:
                delay = RESTART_DELAY
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, MAX_RESTART_DELAY)

    def _spawn(self) -> subprocess.Popen[str]:
        with self._lock:
            if self._closing.is_set():
                raise OSError("stopping")
            process = subprocess.Popen(
                self._command,
                env=self._env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # its log lines join ours
                text=True,
                # A process group of its own: Ctrl-C in a terminal reaches only
                # the service, which then stops its child in order.
                process_group=0,
            )
            self._process = process
            self.starts += 1
        log.info("state publisher running as process %d", process.pid)
        return process

    def _follow(self, process: subprocess.Popen[str]) -> None:
        """Read the child's reports until its stdout closes (it ended)."""
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(REPORT_PREFIX) and self._on_published is not None:
                try:
                    count = int(line[len(REPORT_PREFIX) :])
                except ValueError:
                    continue
                self._on_published(count)
        process.stdout.close()


def _stop_child(process: subprocess.Popen[str], timeout: float) -> None:
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(OSError):  # it is gone already: the pipe broke
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("the state publisher did not stop within %.1f s; terminating it", timeout)
        process.terminate()
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the child side ----------------------------------------------------------------------


def run_child(
    database_url: str,
    endpoint: MqttEndpoint,
    *,
    client_id: str,
    ca_file: str | None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
) -> int:
    """The child's main: publish until stdin closes (or SIGTERM), reporting on stdout."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    report_lock = threading.Lock()

    def report(count: int) -> None:
        with report_lock:
            try:
                stdout.write(f"{REPORT_PREFIX}{count}\n")
                stdout.flush()
            except (OSError, ValueError):
                pass  # the parent is gone; stdin's EOF stops us next

    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (see the module doc)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def watch_stdin() -> None:
        for _ in stdin:
            pass
        stop.set()

    service = StateService(
        database_url, endpoint, client_id=client_id, ca_file=ca_file, on_published=report
    )
    threading.Thread(target=watch_stdin, name="consultease-state-parent", daemon=True).start()
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.close()
    return 0
