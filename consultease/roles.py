"""The database roles of ``sql/003_roles.sql``, and the error for a login that lacks one.

Each process connects with a login of its own inside one group role:

- ``consultease_ingest``: the ingest service (desk-driven faculty columns only);
- ``consultease_kiosk``: a kiosk without the admin panel (reads faculty);
- ``consultease_admin``: the admin CLI, and a kiosk that offers the admin panel.
"""

from __future__ import annotations

from typing import Final

import psycopg

from consultease.db import first_line
from consultease.errors import ConsultEaseError

INGEST_ROLE: Final = "consultease_ingest"
KIOSK_ROLE: Final = "consultease_kiosk"
ADMIN_ROLE: Final = "consultease_admin"


class PermissionDenied(ConsultEaseError):
    """The database login lacks the privileges an operation needs."""

    exit_code = 5


def permission_denied(error: BaseException | None, *, role: str) -> PermissionDenied | None:
    """A ``PermissionDenied`` naming ``role`` when ``error`` is the server's refusal."""
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return PermissionDenied(
            f"{first_line(error)}: this needs a database login in the {role} role"
        )
    return None
