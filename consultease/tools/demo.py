"""``consultease demo``: the whole system on one machine, with no setup.

In start order (and stopped in reverse, on Ctrl-C or SIGTERM):

1. PostgreSQL: ``CONSULTEASE_DATABASE_URL`` if set, else a private server
   whose data lives in a per-user directory kept between runs;
2. the broker: ``CONSULTEASE_MQTT_URL`` if set, else mosquitto on a free port
   (or amqtt in this process when mosquitto is not installed);
3. ``db upgrade`` and, on an empty database only, 30 demo faculty;
4. the ingest service;
5. 30 simulated desk units at a human pace (one rebooting now and then);
6. students asking available lecturers for consultations
   (``student_traffic``, a few a minute; the demo students carry card UIDs);
7. the board: the kiosk window, or with ``--headless`` (or no display) the
   same board drawn in the terminal, with the open requests beneath it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import platformdirs
from rich.console import Console
from rich.live import Live

from consultease.config import Settings
from consultease.db.migrate import upgrade
from consultease.errors import ConsultEaseError
from consultease.extras import has_extra
from consultease.live.consultations import ConsultationWatcher
from consultease.live.listener import FacultyListener
from consultease.tools.environment import provide_services
from consultease.tools.seed import seed_demo_faculty
from consultease.tools.student_traffic import StudentTraffic, seed_demo_students
from consultease.tools.terminal_board import TerminalBoard

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """Where the demo keeps its database between runs.

    The per-user data directory; for root, ``/var/lib/consultease`` (the
    PostgreSQL server runs as an unprivileged user that cannot enter /root).
    """
    if os.geteuid() == 0:
        return Path("/var/lib/consultease")
    return platformdirs.user_data_path("consultease")


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoOptions:
    data_dir: Path
    headless: bool = False
    duration: float | None = None
    desks: int = 30
    changes_per_minute: float = 3.0
    reboot_rate: float = 0.002
    requests_per_minute: float = 2.0
    """Consultation requests from students over the whole campus (0: none)."""


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """One demo per data directory at a time; the lock goes with the process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "demo.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConsultEaseError(
                f"another demo is already running with data in {data_dir}"
            ) from None
        yield


class _StopSignals:
    """SIGINT and SIGTERM set an event instead of raising mid-shutdown."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self.event

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run_demo(settings: Settings, options: DemoOptions) -> int:
    console = Console(stderr=True)
    with _StopSignals() as stop, contextlib.ExitStack() as stack:
        stack.enter_context(_exclusive(options.data_dir))

        endpoints = provide_services(
            stack, settings, data_dir=options.data_dir, report=console.print
        )
        database_url, protocol = endpoints.database_url, endpoints.mqtt_protocol
        settings = settings.with_overrides(database_url=database_url, mqtt_url=endpoints.mqtt_url)

        upgrade(database_url)
        faculty_ids = seed_demo_faculty(database_url)[: options.desks]
        console.print(f"[bold]Faculty[/]: {len(faculty_ids)} on the board")

        students = seed_demo_students(database_url)
        console.print(f"[bold]Students[/]: {students} registered, with RFID card UIDs")

        _start_ingest(stack, settings, protocol)
        _start_desks(stack, settings, options, faculty_ids, protocol)
        if options.requests_per_minute > 0:
            traffic = StudentTraffic(database_url, per_minute=options.requests_per_minute)
            traffic.start()
            stack.callback(traffic.stop)

        window = not options.headless and has_display() and has_extra("kiosk")
        if not window:
            if not options.headless and not has_display():
                console.print("No display found: showing the board in the terminal.")
            elif not options.headless:
                console.print(
                    "The kiosk window needs the [kiosk] extra "
                    "(pip install 'consultease[kiosk]'): showing the board in the terminal."
                )
            changes = _terminal_board(stack, database_url, stop, options.duration)
            console.print(f"demo: the board showed {changes} live changes")
        else:
            _kiosk_window(settings, stop, options.duration)
        console.print("stopping…")
    return 0


def _start_ingest(stack: contextlib.ExitStack, settings: Settings, protocol: str) -> None:
    from consultease.ingest.service import IngestService  # noqa: PLC0415 - demo-only wiring

    service = IngestService(settings, protocol=protocol)
    service.start()
    stack.callback(service.stop)


def _start_desks(
    stack: contextlib.ExitStack,
    settings: Settings,
    options: DemoOptions,
    faculty_ids: list[int],
    protocol: str,
) -> None:
    from desk_firmware_sim.config import MqttVersion, SimConfig  # noqa: PLC0415
    from desk_firmware_sim.faults import FaultConfig  # noqa: PLC0415
    from desk_firmware_sim.runner import Fleet  # noqa: PLC0415

    assert settings.mqtt_url is not None
    fleet = Fleet(
        SimConfig(
            faculty_ids=tuple(faculty_ids),
            mqtt_url=settings.mqtt_url,
            rate=options.changes_per_minute,
            heartbeat_interval=min(30.0, settings.offline_after / 3),
            state_dir=options.data_dir / "desks",
            faults=FaultConfig(reboot_rate=options.reboot_rate),
            mqtt_version=MqttVersion.V5 if protocol == "5" else MqttVersion.V311,
        )
    )
    fleet.start()
    stack.callback(fleet.stop)


def _terminal_board(
    stack: contextlib.ExitStack,
    database_url: str,
    stop: threading.Event,
    duration: float | None,
) -> int:
    listener = FacultyListener(database_url, application_name="consultease-demo-board")
    requests = ConsultationWatcher(
        database_url, follow_all=True, application_name="consultease-demo-requests"
    )
    board = TerminalBoard(listener, requests=requests)
    listener.start()
    requests.start()
    stack.callback(listener.close)
    stack.callback(requests.close)
    stack.callback(board.close)
    board.wait_until_live(10)
    deadline = None if duration is None else time.monotonic() + duration
    console = Console()
    if console.is_terminal:
        with Live(board.render(), console=console, refresh_per_second=2) as live:
            while not stop.wait(0.5) and (deadline is None or time.monotonic() < deadline):
                live.update(board.render())
    else:  # piped (CI): a line every few seconds instead of a redrawn screen
        while not stop.wait(
            5 if deadline is None else min(5, max(0.1, deadline - time.monotonic()))
        ):
            counts = listener.cache.counts()
            print(
                f"board: {counts.get('available', 0)} of {len(listener.cache)} available, "
                f"{board.changes_seen} live changes, "
                f"{len(board.open_requests())} open consultation requests",
                flush=True,
            )
            if deadline is not None and time.monotonic() >= deadline:
                break
    return board.changes_seen


def _kiosk_window(settings: Settings, stop: threading.Event, duration: float | None) -> None:
    """The kiosk runs as its own process: Qt wants the main thread to itself."""
    assert settings.database_url is not None
    env = dict(os.environ, CONSULTEASE_DATABASE_URL=settings.database_url)
    kiosk = subprocess.Popen([sys.executable, "-m", "consultease", "kiosk"], env=env)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while kiosk.poll() is None and not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        if kiosk.poll() is None:
            kiosk.terminate()
            try:
                kiosk.wait(3)
            except subprocess.TimeoutExpired:
                kiosk.kill()
                kiosk.wait()
