"""Fixtures shared by every suite.

Qt must see ``QT_QPA_PLATFORM=offscreen`` before it loads, so it is set here,
at the top of the first conftest pytest imports.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from consultease.db.migrate import upgrade
from tests.support.pg import (
    create_database,
    drop_database,
    server_for_tests,
    with_database,
)


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
