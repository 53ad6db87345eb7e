"""Admin accounts: argon2 password hashes, lockout kept in the database, audit rows.

There is no default account: ``consultease admin create`` makes the first one.

Two limits, both kept in the database and judged by its clock (``now()`` read
inside the login transaction), so restarting a kiosk lifts neither:

- **per source** (``admin_login_source``): a source is where a login comes
  from (the kiosk or host and the OS user running the panel or the CLI, see
  ``local_source``). Every failed login from it counts, whatever the username;
  after ``free_failures`` (3) the source waits ``base_delay`` (1 s), then twice
  as long after each further failure, up to ``max_delay`` (15 min); a success
  from it, or ``forget_after`` (1 h) without failures, starts again. While it
  waits, its logins are refused unchecked ("too many failed logins from
  here…", which says nothing about any account) and count nowhere.
- **per account** (``admin_user``): ``max_failures`` (5) failures within
  ``window`` (15 min), from any sources, lock the account for only
  ``lock_for`` (1 min). It slows guessing spread over many sources; it is
  short so that nobody can keep a real admin out for long (each source
  needs ever longer waits to go on relocking it).

Unknown username, wrong password and locked account get the same answer
("wrong username or password") after the same work: the password is always
checked with argon2 (against a dummy hash for an unknown user), and each path
writes the same rows, so neither the message nor the timing tells which usernames
exist or which accounts are locked (``consultease.tools.bench.logins`` measures it).
A login holds the account's row lock while it checks the password, so parallel
guesses are counted one by one and never slip past the limit.

Every call writes exactly one ``audit_log`` row in the same transaction as
its change (failed logins included); passwords and hashes never go there.
"""

from __future__ import annotations

import base64
import getpass
import logging
import re
import secrets
import socket
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from consultease.admin.audit import record
from consultease.admin.passwords import PasswordRejected, check_password, make_hasher, normalise
from consultease.db.connection import first_line, sqlalchemy_engine
from consultease.db.roles import ADMIN_ROLE, transaction
from consultease.db.tables import admin_login_source, admin_user
from consultease.errors import (
    AuthenticationError,
    NotFound,
    ValidationError,
)

log = logging.getLogger(__name__)

WRONG_CREDENTIALS: Final = "wrong username or password"
USERNAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
"""The same rule as the CHECK constraint on ``admin_user.username``."""
_AUDIT_NAME_LIMIT: Final = 100
"""A typed (possibly hostile) username is cut to this length in the audit trail."""


_SOURCE_LIMIT: Final = 200
"""A source name is cut to this length (the CHECK on ``admin_login_source``)."""


class TooManyAttempts(AuthenticationError):
    """Logins from this source must wait (its back-off); says nothing about any account."""

    def __init__(self, blocked_until: datetime, now: datetime) -> None:
        wait = max(1, int((blocked_until - now).total_seconds() + 0.999))
        super().__init__(f"too many failed logins from here; try again in {wait} s")
        self.blocked_until = blocked_until


def local_source() -> str:
    """The source of a login typed on this machine: ``user@host`` of the process
    (a kiosk's panel, or the CLI), so a kiosk and a CLI user back off apart."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:_SOURCE_LIMIT]


# -- the lockout rule, pure ---------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=1)
    free_failures: int = 3
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceState:
    """The back-off columns of one ``admin_login_source`` row."""

    failures: int = 0
    last_failed_at: datetime | None = None
    blocked_until: datetime | None = None

    def blocked(self, now: datetime) -> bool:
        return self.blocked_until is not None and self.blocked_until > now


def source_after_failure(state: SourceState, now: datetime, policy: LockoutPolicy) -> SourceState:
    """A source's state after one more failed login at ``now``: past
    ``free_failures`` it waits ``base_delay`` doubled per further failure (at
    most ``max_delay``); ``forget_after`` without failures starts it again."""
    if state.last_failed_at is None or now - state.last_failed_at >= policy.forget_after:
        state = SourceState()
    failures = state.failures + 1
    blocked_until = None
    if failures >= policy.free_failures:
        doublings = min(failures - policy.free_failures, 30)
        blocked_until = now + min(policy.base_delay * 2**doublings, policy.max_delay)
    return SourceState(failures=failures, last_failed_at=now, blocked_until=blocked_until)


@dataclass(frozen=True, kw_only=True, slots=True)
class LoginState:
    """The lockout columns of one ``admin_user`` row."""

    failed_attempts: int = 0
    first_failed_at: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def audit(self) -> dict[str, Any]:
        return {
            "failed_attempts": self.failed_attempts,
            "first_failed_at": _iso(self.first_failed_at),
            "locked_until": _iso(self.locked_until),
        }


def after_failure(state: LoginState, now: datetime, policy: LockoutPolicy) -> LoginState:
    """The state after one more wrong password at ``now``.

    Failures count within a window that starts at the first of them; an
    expired window or an expired lock starts the count again. Reaching
    ``max_failures`` locks the account for ``lock_for`` from now.
    """
    window_over = state.first_failed_at is None or now - state.first_failed_at >= policy.window
    lock_over = state.locked_until is not None and state.locked_until <= now
    if window_over or lock_over:
        state = LoginState(failed_attempts=0, first_failed_at=now)
    failures = state.failed_attempts + 1
    return replace(
        state,
        failed_attempts=failures,
        locked_until=now + policy.lock_for if failures >= policy.max_failures else None,
    )


def clean_username(text: str) -> str:
    username = text.strip()
    if not USERNAME_PATTERN.match(username):
        raise ValidationError(
            "username must be 1 to 64 letters, digits or . _ @ - (no spaces)",
            field="username",
        )
    return username


# -- the accounts -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refusal:
    error: AuthenticationError


class AdminAccounts:
    """Admin accounts in ``admin_user``. Thread-safe: each call uses its own connection."""

    def __init__(
        self,
        database_url: str,
        *,
        hasher: PasswordHasher | None = None,
        policy: LockoutPolicy | None = None,
        pooled: bool = False,
    ) -> None:
        self._hasher = hasher or make_hasher()
        self._policy = policy or LockoutPolicy()
        self._dummy_hash = _dummy_hash(self._hasher)
        self._engine: Engine = sqlalchemy_engine(
            database_url, application_name="consultease-accounts", pooled=pooled
        )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> AdminAccounts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[Connection]:
        return transaction(self._engine, role=ADMIN_ROLE)

    # -- reading --------------------------------------------------------------

    def count(self) -> int:
        """How many admin accounts exist (a kiosk can say how to create the first)."""
        with self._transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(admin_user)).scalar_one())

    # -- writing --------------------------------------------------------------

    def create(self, username: str, password: str, *, actor: str) -> None:
        """Add an admin. Refuses weak passwords and taken usernames (case-insensitive)."""
        username = clean_username(username)
        actor = _clean_actor(actor)
        check_password(password, username=username)
        password_hash = self._hasher.hash(normalise(password))
        try:
            with self._transaction() as conn:
                row = conn.execute(
                    insert(admin_user)
                    .values(username=username, password_hash=password_hash)
                    .returning(admin_user.c.username, admin_user.c.created_at)
                ).one()
                record(
                    conn,
                    actor=actor,
                    action="admin.create",
                    target=f"admin:{row.username}",
                    before=None,
                    after={"username": row.username, "created_at": _iso(row.created_at)},
                )
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
            if constraint == "admin_user_username_key":
                raise ValidationError(
                    f"an admin named {username!r} already exists", field="username"
                ) from exc
            raise ValidationError(
                f"rejected by the database: {first_line(exc.orig or exc)}"
            ) from exc
        log.info("admin %s created by %s", username, actor)

    def change_password(self, username: str, password: str, *, actor: str) -> None:
        """Set a new password. This also clears failed attempts and any lock."""
        actor = _clean_actor(actor)
        with self._transaction() as conn:
            row = self._lock_row(conn, username)
            if row is None:
                raise NotFound(f"no admin named {username!r}")
            check_password(password, username=row.username)
            if self._matches(row.password_hash, password):
                raise PasswordRejected("the new password must differ from the current one")
            changed = conn.execute(
                update(admin_user)
                .where(admin_user.c.id == row.id)
                .values(
                    password_hash=self._hasher.hash(normalise(password)),
                    password_changed_at=func.now(),
                    failed_attempts=0,
                    first_failed_at=None,
                    locked_until=None,
                )
                .returning(admin_user.c.password_changed_at)
            ).one()
            record(
                conn,
                actor=actor,
                action="admin.passwd",
                target=f"admin:{row.username}",
                before={
                    "password_changed_at": _iso(row.password_changed_at),
                    **_state(row).audit(),
                },
                after={
                    "password_changed_at": _iso(changed.password_changed_at),
                    **LoginState().audit(),
                },
            )
        log.info("password of admin %s changed by %s", row.username, actor)

    def login(self, username: str, password: str, *, source: str | None = None) -> str:
        """Check a login from ``source`` (default: ``local_source()``); return the
        canonical username.

        Raises ``AuthenticationError`` ("wrong username or password", the same
        for unknown users, wrong passwords and locked accounts) or its subclass
        ``TooManyAttempts`` while the source backs off. The attempt and its
        bookkeeping are committed before the error is raised.
        """
        source = (source or local_source()).strip()[:_SOURCE_LIMIT] or "unknown"
        with self._transaction() as conn:
            result = self._login(conn, username, password, source)
        if isinstance(result, _Refusal):
            raise result.error
        return result

    def _login(self, conn: Connection, username: str, password: str, source: str) -> str | _Refusal:
        now: datetime = conn.execute(select(func.now())).scalar_one()
        typed = username.strip()[:_AUDIT_NAME_LIMIT]
        origin = self._lock_source(conn, source)
        if origin.blocked(now):
            assert origin.blocked_until is not None
            return _Refusal(TooManyAttempts(origin.blocked_until, now))
        row = self._lock_row(conn, username) if USERNAME_PATTERN.match(typed) else None
        if row is None:
            self._matches(self._dummy_hash, password)  # spend the same time as a real check
            self._source_failed(conn, source, origin, now)
            record(
                conn,
                actor=typed,
                action="admin.login.failed",
                target=f"admin:{typed}",
                before=None,
                after={"reason": "unknown_user", "source": source},
            )
            return _Refusal(AuthenticationError(WRONG_CREDENTIALS))

        state = _state(row)
        target = f"admin:{row.username}"
        matches = self._matches(row.password_hash, password)  # locked or not: the same work
        if state.locked(now):
            # The same writes as a wrong password: a row update, the source, the audit.
            conn.execute(
                update(admin_user)
                .where(admin_user.c.id == row.id)
                .values(failed_attempts=state.failed_attempts)
            )
            self._source_failed(conn, source, origin, now)
            record(
                conn,
                actor=row.username,
                action="admin.login.failed",
                target=target,
                before=state.audit(),
                after={**state.audit(), "reason": "locked", "source": source},
            )
            return _Refusal(AuthenticationError(WRONG_CREDENTIALS))

        if not matches:
            failed = after_failure(state, now, self._policy)
            self._source_failed(conn, source, origin, now)
            conn.execute(
                update(admin_user)
                .where(admin_user.c.id == row.id)
                .values(
                    failed_attempts=failed.failed_attempts,
                    first_failed_at=failed.first_failed_at,
                    locked_until=failed.locked_until,
                )
            )
            record(
                conn,
                actor=row.username,
                action="admin.login.failed",
                target=target,
                before=state.audit(),
                after={**failed.audit(), "reason": "wrong_password", "source": source},
            )
            if failed.locked_until is not None:
                log.warning(
                    "admin %s locked until %s after %d failed logins",
                    row.username,
                    failed.locked_until.isoformat(),
                    failed.failed_attempts,
                )
            return _Refusal(AuthenticationError(WRONG_CREDENTIALS))

        values: dict[str, Any] = {
            "failed_attempts": 0,
            "first_failed_at": None,
            "locked_until": None,
        }
        rehashed = self._hasher.check_needs_rehash(row.password_hash)
        if rehashed:
            values["password_hash"] = self._hasher.hash(normalise(password))
        conn.execute(update(admin_user).where(admin_user.c.id == row.id).values(**values))
        if origin.failures:
            conn.execute(
                update(admin_login_source)
                .where(admin_login_source.c.source == source)
                .values(failures=0, last_failed_at=None, blocked_until=None)
            )
        record(
            conn,
            actor=row.username,
            action="admin.login",
            target=target,
            before=state.audit(),
            after={**LoginState().audit(), "rehashed": rehashed},
        )
        return str(row.username)

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _lock_source(conn: Connection, source: str) -> SourceState:
        """The source's back-off row, locked (created when missing)."""
        conn.execute(
            pg_insert(admin_login_source)
            .values(source=source, failures=0)
            .on_conflict_do_nothing(index_elements=["source"])
        )
        row = conn.execute(
            select(admin_login_source)
            .where(admin_login_source.c.source == source)
            .with_for_update()
        ).one()
        return SourceState(
            failures=int(row.failures),
            last_failed_at=row.last_failed_at,
            blocked_until=row.blocked_until,
        )

    def _source_failed(
        self, conn: Connection, source: str, state: SourceState, now: datetime
    ) -> None:
        failed = source_after_failure(state, now, self._policy)
        conn.execute(
            update(admin_login_source)
            .where(admin_login_source.c.source == source)
            .values(
                failures=failed.failures,
                last_failed_at=failed.last_failed_at,
                blocked_until=failed.blocked_until,
            )
        )
        if failed.blocked_until is not None:
            log.warning(
                "logins from %s wait until %s after %d failures",
                source,
                failed.blocked_until.isoformat(),
                failed.failures,
            )

    @staticmethod
    def _lock_row(conn: Connection, username: str) -> Any:
        return conn.execute(
            select(admin_user)
            .where(func.lower(admin_user.c.username) == func.lower(username.strip()))
            .with_for_update()
        ).one_or_none()

    def _matches(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, normalise(password)))
        except VerificationError:
            return False
        except InvalidHashError:
            log.error("an admin_user row holds a password hash argon2 cannot read")
            return False


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A well-formed hash with ``hasher``'s parameters that no password matches.

    Verifying against it costs exactly what verifying a real hash costs, and
    building it costs nothing (random bytes in the PHC string format).
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return (
        f"$argon2{hasher.type.name.lower()}$v=19$m={hasher.memory_cost},"
        f"t={hasher.time_cost},p={hasher.parallelism}"
        f"${b64(secrets.token_bytes(hasher.salt_len))}${b64(secrets.token_bytes(hasher.hash_len))}"
    )


def _state(row: Any) -> LoginState:
    return LoginState(
        failed_attempts=int(row.failed_attempts),
        first_failed_at=row.first_failed_at,
        locked_until=row.locked_until,
    )


def _clean_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise ValidationError("actor must not be empty", field="actor")
    return actor


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clock_time(moment: datetime) -> str:
    """HH:MM in this machine's time zone, rounded up so "until 12:15" is never early."""
    local = moment.astimezone()
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local.strftime("%H:%M")
