"""Finding a PostgreSQL server for the tests, and cloning databases from a template."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from consultease.tools.servers import PostgresInstance

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def with_database(url: str, dbname: str) -> str:
    """The same server, another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


def private_servers_forced() -> bool:
    """``CONSULTEASE_TEST_PRIVATE_SERVERS=1``: the session starts its own
    PostgreSQL and broker even when shared ones answer."""
    return os.environ.get("CONSULTEASE_TEST_PRIVATE_SERVERS", "") == "1"


@contextmanager
def server_for_tests(tmp_root: Path) -> Iterator[str]:
    """``CONSULTEASE_TEST_DATABASE_URL``, else the local server if it answers,
    else a private server started for this session."""
    configured = os.environ.get("CONSULTEASE_TEST_DATABASE_URL")
    if configured and not private_servers_forced():
        yield configured
        return
    if not private_servers_forced() and answers(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    if os.geteuid() == 0:
        # As root the server runs as another account, which must traverse every
        # folder above its data; pytest takes o+x away from /tmp/pytest-of-root
        # whenever another session starts, so keep the data out of it.
        tmp_root = Path(tempfile.mkdtemp(prefix="consultease-test-pg-"))
    instance = PostgresInstance(tmp_root / "pg", durable=False)
    try:
        instance.start()
        yield instance.url
    finally:
        instance.destroy()
        if os.geteuid() == 0:
            shutil.rmtree(tmp_root, ignore_errors=True)


def create_database(admin_url: str, *, template: str | None = None, prefix: str = "ce_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
