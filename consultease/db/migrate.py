"""``consultease db upgrade``: numbered SQL files applied once each, in order.

Every file runs in its own transaction and is recorded in ``schema_migration``
with a checksum. A session-level advisory lock makes concurrent upgrades
queue up instead of racing. A database whose recorded migrations are not a
prefix of the files (a file renamed, edited after it ran, or a database
from a newer release) is refused rather than "repaired".
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

from consultease.db.connection import connect
from consultease.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "consultease.db.sql"
"""Where the files of ``sql/`` live once installed (``pyproject.toml`` maps the folder in)."""
_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant works; this one spells "consult" on a phone keypad.
_ADVISORY_LOCK_KEY = 2667858

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Traversable:
    """The shipped migration files (``sql/`` of the source tree, inside the package)."""
    try:
        return resources.files(MIGRATIONS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise MigrationError(
            f"the migrations are missing from this installation ({MIGRATIONS_PACKAGE})"
        ) from exc


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """The migration files, in order. Numbers must run 1, 2, 3… without gaps."""
    directory = migrations_dir() if directory is None else directory
    if not directory.is_dir():
        raise MigrationError(f"migration directory not found: {directory}")
    found: list[Migration] = []
    for path in sorted(
        (entry for entry in directory.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    ):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(
            Migration(version=int(match.group(1)), name=path.name, sql=path.read_text("utf-8"))
        )
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration numbers must be consecutive: expected {expected:03d}, "
                f"found {migration.name}"
            )
    return found


def _check_prefix(applied: Sequence[tuple[int, str, str]], files: Sequence[Migration]) -> None:
    if len(applied) > len(files):
        newest = applied[-1][1]
        raise MigrationError(
            f"database has {len(applied)} migrations applied (newest {newest}) but only "
            f"{len(files)} files exist: it belongs to a newer release"
        )
    for (version, name, checksum), migration in zip(applied, files, strict=False):
        if (version, name) != (migration.version, migration.name):
            raise MigrationError(
                f"applied migration {version:03d} is {name!r} but the file is "
                f"{migration.name!r}: recorded migrations are not a prefix of the files"
            )
        if checksum != migration.checksum:
            raise MigrationError(
                f"migration {name} was changed after it was applied (checksum differs)"
            )


def upgrade(url: str, *, directory: Traversable | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    files = load_migrations(directory)
    applied_now: list[str] = []
    with connect(url, autocommit=True, application_name="consultease-migrate") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_CREATE_LEDGER)
            rows = conn.execute(
                "SELECT version, name, checksum FROM schema_migration ORDER BY version"
            ).fetchall()
            _check_prefix(rows, files)
            for migration in files[len(rows) :]:
                log.info("applying migration %s", migration.name)
                try:
                    with conn.transaction():
                        # A file is trusted project code, run as one multi-statement script.
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO schema_migration (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
                applied_now.append(migration.name)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied_now
