"""Fixtures shared by every suite.

Qt must see ``QT_QPA_PLATFORM=offscreen`` before it loads, so it is set here,
at the top of the first conftest pytest imports.

Servers: the session's PostgreSQL and broker are the configured ones when
they answer, else private ones started here (``pg_admin_url``,
``mqtt_settings``); ``CONSULTEASE_TEST_PRIVATE_SERVERS=1`` always starts
private ones. No server a fixture or test starts outlives the session: the
fixtures stop theirs in their finalizers, SIGTERM is turned into the same
interruption as Ctrl-C (so every finalizer runs), and whatever is still
running at the end is stopped by ``consultease.tools.servers.stop_all``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import psycopg
import pytest
from pytest_mqtt.model import MqttSettings

from consultease.db.migrate import upgrade
from consultease.tools import servers
from consultease.tools.embedded_broker import EmbeddedBroker
from tests.support.pg import (
    create_database,
    drop_database,
    private_servers_forced,
    server_for_tests,
    with_database,
)
from tests.support.qt import module_without_qt, qt_missing_packages

_interrupted_at: float | None = None
REPEAT_GRACE = 10.0
"""Seconds after the first interruption in which another is ignored: a terminal's
Ctrl-C reaches pytest and .ci/test at once, and .ci/test passes it on, so one
keypress arrives twice; the second must not cut the teardown that stops servers."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _interrupted_at  # noqa: PLW0603 - one process-wide signal state
    now = time.monotonic()
    if _interrupted_at is not None and now - _interrupted_at < REPEAT_GRACE:
        return
    _interrupted_at = now
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    # pytest tears its fixtures down on KeyboardInterrupt, not on SIGTERM (which
    # `timeout`, CI runners and .ci/test send): make both end the session alike.
    # This also undoes SIGINT being ignored when pytest is started as a
    # background job (.ci/test), which every process a test starts would inherit.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    servers.stop_all()


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.File | None:
    return module_without_qt(module_path, parent)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = qt_missing_packages()
    if missing is not None:
        terminalreporter.write_line(missing.summary(), yellow=True)


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_session() -> Iterator[None]:
    yield
    servers.stop_all()


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:  # refused, unreachable, or a name that does not resolve
        return False
    return True


@pytest.fixture(scope="session")
def mqtt_settings(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MqttSettings]:
    """The broker of the session (pytest-mqtt's fixture, overridden): the one of
    ``--mqtt-host``/``--mqtt-port`` when it answers, else a private one."""
    settings = MqttSettings(
        host=pytestconfig.getoption("--mqtt-host"),
        port=int(pytestconfig.getoption("--mqtt-port")),
        username=pytestconfig.getoption("--mqtt-username"),
        password=pytestconfig.getoption("--mqtt-password"),
        subscribe_all=pytestconfig.getoption("subscribe_all"),
    )
    if not private_servers_forced() and _answers(settings.host, settings.port):
        yield settings
        return
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as broker:
        settings.host, settings.port = "127.0.0.1", broker.port
        settings.username = settings.password = ""
        yield settings


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser URL of the server the integration tests use."""
    with server_for_tests(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    """A database migrated once per session; each test clones it."""
    name = create_database(pg_admin_url, prefix="ce_template")
    upgrade(with_database(pg_admin_url, name))
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = create_database(pg_admin_url, template=template_database)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = create_database(pg_admin_url)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the test's database, for arranging and asserting."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
