"""The audit trail: writing one row in the caller's transaction, and reading it back.

Every admin action writes exactly one ``audit_log`` row in the same
transaction as the change it records, so a change without its row (or a row
without its change) cannot happen. ``before`` and ``after`` hold what changed
as JSON; passwords and hashes never appear in them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, insert, literal, or_, select

from consultease.db.connection import sqlalchemy_engine
from consultease.db.roles import ADMIN_ROLE, transaction
from consultease.db.tables import audit_log
from consultease.errors import ValidationError

MAX_LIMIT: Final = 10_000
_DURATION_PART: Final = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append one audit row inside the caller's transaction."""
    conn.execute(
        insert(audit_log).values(
            actor=actor, action=action, target=target, before=before, after=after
        )
    )


def parse_since(text: str) -> datetime | timedelta:
    """``--since``: a duration back from now (``90s``, ``15m``, ``2h``, ``3d``, ``1w``,
    or a sum such as ``1h30m``), or an ISO date or date-time. A date or time
    without a UTC offset is taken in this machine's local time zone."""
    cleaned = text.strip().lower()
    if cleaned and _DURATION_PART.sub("", cleaned).strip() == "":
        seconds = sum(
            int(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(cleaned)
        )
        return timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"--since wants a duration like 2h or 3d, or an ISO date like 2026-01-31: {text!r}",
            field="since",
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """One line a person can read: what differs between ``before`` and ``after``."""
    if before is None and after is None:
        return ""
    if before is None or after is None:
        return ", ".join(f"{k}={_short(v)}" for k, v in (after or before or {}).items())
    parts = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key not in after:
            parts.append(f"{key} was {_short(before[key])}")
        elif key not in before:
            parts.append(f"{key}={_short(after[key])}")
        elif before[key] != after[key]:
            parts.append(f"{key}: {_short(before[key])} → {_short(after[key])}")
    return ", ".join(parts) or "(no change)"


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditLog:
    """Reads the audit trail. Each call uses its own connection."""

    def __init__(self, database_url: str) -> None:
        self._engine = sqlalchemy_engine(database_url, application_name="consultease-audit")

    def close(self) -> None:
        self._engine.dispose()

    def entries(
        self,
        *,
        since: datetime | timedelta | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """The newest ``limit`` matching rows, oldest first.

        ``since`` as a duration counts back from the database clock. ``actor``
        matches case-insensitively; ``action`` matches itself and its dotted
        sub-actions (``admin.login`` also finds ``admin.login.failed``).
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"--limit must be between 1 and {MAX_LIMIT}", field="limit")
        query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        if isinstance(since, timedelta):
            query = query.where(audit_log.c.at >= func.now() - literal(since))
        elif since is not None:
            query = query.where(audit_log.c.at >= since)
        if actor:
            query = query.where(func.lower(audit_log.c.actor) == func.lower(actor))
        if action:
            query = query.where(
                or_(
                    audit_log.c.action == action,
                    audit_log.c.action.startswith(action + ".", autoescape=True),
                )
            )
        with transaction(self._engine, role=ADMIN_ROLE) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                target=r.target,
                before=r.before,
                after=r.after,
            )
            for r in reversed(rows)
        ]
