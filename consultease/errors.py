"""One root exception, and the few kinds the CLI tells apart by exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consultease.domain import FacultyView


class ConsultEaseError(Exception):
    """Root of every error this project raises on purpose.

    ``exit_code`` is what the CLI returns when the error reaches it; the
    message is printed as a single line.
    """

    exit_code: int = 1


class ConfigError(ConsultEaseError):
    """A setting is missing or malformed."""

    exit_code = 2


class DatabaseUnavailable(ConsultEaseError):
    """The database could not be reached (after retries, where they apply)."""


class MessageRefused(ConsultEaseError):
    """The database refused what a message would write (bad data, a broken constraint).

    Retrying cannot help: the ingest service isolates such a message and records it
    as rejected instead of retrying it forever (a poison message).
    """


class MigrationError(ConsultEaseError):
    """The database schema and the migration files disagree."""


class NotFound(ConsultEaseError):
    """The named row does not exist (or is not active)."""


class ValidationError(ConsultEaseError):
    """Input was rejected before anything was written.

    ``field`` names the offending field where there is one, so a form can
    show the message beside it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class VersionConflict(ConsultEaseError):
    """An optimistic-locking write found the row at another version.

    ``latest`` is the row as it stood when the write was refused (read under the
    same lock), so a caller can show it without asking the database again.
    """

    exit_code = 3

    def __init__(
        self, *, faculty_id: int, expected: int, current: int, latest: FacultyView | None = None
    ) -> None:
        super().__init__(
            f"faculty {faculty_id} was changed by someone else: "
            f"expected version {expected}, current version is {current}"
        )
        self.faculty_id = faculty_id
        self.expected = expected
        self.current = current
        self.latest = latest


class FieldConflict(VersionConflict):
    """A field-level edit found one of its fields changed by someone else meanwhile.

    ``fields`` names them, in the order they were given; ``latest`` is the row as it
    stood (read under the same lock). Fields the edit did not name never conflict.
    """

    def __init__(
        self,
        *,
        faculty_id: int,
        fields: tuple[str, ...],
        latest: FacultyView,
        based_on_version: int | None = None,
    ) -> None:
        super().__init__(
            faculty_id=faculty_id,
            expected=latest.version if based_on_version is None else based_on_version,
            current=latest.version,
            latest=latest,
        )
        self.fields = fields
        self.args = (
            f"faculty {faculty_id} was changed by someone else: "
            f"{', '.join(fields)} changed since the edit began (now version {latest.version})",
        )


class AuthenticationError(ConsultEaseError):
    """A login failed: wrong credentials, or the account is locked."""

    exit_code = 4


class TransitionRefused(ConsultEaseError):
    """A consultation request cannot take this step from where it stands (SPEC 9.1):
    it is already there (``reason`` ``duplicate``) or the rule does not allow it
    (``invalid_transition``). Nothing was written."""

    exit_code = 3

    def __init__(self, message: str, *, consultation_id: int, status: str, reason: str) -> None:
        super().__init__(message)
        self.consultation_id = consultation_id
        self.status = status
        self.reason = reason
