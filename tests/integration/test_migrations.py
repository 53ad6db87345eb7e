"""``consultease db upgrade``: in order, once, under a lock, refusing a foreign history."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from consultease.db.migrate import load_migrations, migrations_dir, upgrade
from consultease.errors import MigrationError


def applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [
            (int(v), str(n))
            for v, n in conn.execute(
                "SELECT version, name FROM schema_migration ORDER BY version"
            ).fetchall()
        ]


def schema_fingerprint(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()


def test_upgrade_on_empty_database_applies_every_file_in_order(empty_database_url: str) -> None:
    names = upgrade(empty_database_url)
    files = [m.name for m in load_migrations()]
    assert names == files
    assert applied(empty_database_url) == [(m.version, m.name) for m in load_migrations()]


def test_second_upgrade_changes_nothing(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    before = (applied(empty_database_url), schema_fingerprint(empty_database_url))
    assert upgrade(empty_database_url) == []
    assert (applied(empty_database_url), schema_fingerprint(empty_database_url)) == before


def test_concurrent_upgrades_apply_each_migration_once(empty_database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(upgrade(empty_database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations())]
    assert len(applied(empty_database_url)) == len(load_migrations())


def test_refuses_database_whose_history_is_not_a_prefix(
    empty_database_url: str, tmp_path: Path
) -> None:
    upgrade(empty_database_url)
    renamed = tmp_path / "sql"
    renamed.mkdir()
    for i, migration in enumerate(load_migrations(), start=1):
        (renamed / f"{i:03d}_something_else.sql").write_text(migration.sql)
    with pytest.raises(MigrationError, match="not a prefix"):
        upgrade(empty_database_url, directory=renamed)


def test_refuses_migration_edited_after_it_ran(empty_database_url: str, tmp_path: Path) -> None:
    upgrade(empty_database_url)
    edited = tmp_path / "sql"
    edited.mkdir()
    for migration in load_migrations():
        (edited / migration.name).write_text(migration.sql + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        upgrade(empty_database_url, directory=edited)


def test_refuses_database_from_a_newer_release(empty_database_url: str, tmp_path: Path) -> None:
    upgrade(empty_database_url)
    older = tmp_path / "sql"
    older.mkdir()
    first = load_migrations()[0]
    (older / first.name).write_text(first.sql)
    with pytest.raises(MigrationError, match="newer release"):
        upgrade(empty_database_url, directory=older)


def test_failed_migration_is_not_recorded(empty_database_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "sql"
    broken.mkdir()
    for migration in load_migrations():
        (broken / migration.name).write_text(migration.sql)
    bad = f"{len(load_migrations()) + 1:03d}_broken.sql"
    (broken / bad).write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match=bad):
        upgrade(empty_database_url, directory=broken)
    assert [n for _, n in applied(empty_database_url)] == [m.name for m in load_migrations()]
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_migration_files_are_numbered_consecutively() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_the_package_reads_its_migrations_from_the_source_trees_sql_folder(
    repo_root: Path,
) -> None:
    shipped = {m.name: m.sql for m in load_migrations(migrations_dir())}
    source = {p.name: p.read_text("utf-8") for p in sorted((repo_root / "sql").glob("*.sql"))}
    assert shipped == source
    assert len(shipped) >= 3
