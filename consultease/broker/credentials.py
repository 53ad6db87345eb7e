"""Broker logins: password-file lines in Mosquitto's own hash format, and the
per-login ACL blocks (from the templates in ``consultease.broker.config``).

Who may do what (SPEC 3):

- ``desk-N`` publishes only the desk -> system topics of faculty N
  (``status``, ``heartbeat``, ``availability``, ``mac_status``, ``responses``)
  and reads only what is sent to its own desk (``state``, ``messages``,
  ``cancellations``). It cannot speak for another lecturer, nor write what
  desks are shown.
- ``consultease-ingest`` reads every desk topic and writes what desks are shown.
- ``consultease-kiosk`` (kiosks with ``--live-updates broker``) only reads what
  desks are shown (``…/state``).
- Anonymous clients are refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consultease.broker.config import desk_acl_block, kiosk_acl_block, service_acl_block
from consultease.errors import ConsultEaseError, ValidationError

DESK_USER_PREFIX: Final = "desk-"
INGEST_USERNAME: Final = "consultease-ingest"
KIOSK_USERNAME: Final = "consultease-kiosk"
SERVICE_USERNAMES: Final = {"ingest": INGEST_USERNAME, "kiosk": KIOSK_USERNAME}
"""``consultease desk credentials --service NAME`` -> broker username."""

# Mosquitto 2.x password hashes: "$7$" = PBKDF2-HMAC-SHA512 (src/password_mosq.c).
PBKDF2_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
HASH_BYTES: Final = 64
_HASH_LINE: Final = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")

PASSWORD_BYTES: Final = 24
"""Random bytes in a generated broker password (32 URL-safe characters)."""

DEFAULT_PASSWORD_FILE: Final = "/etc/mosquitto/consultease.passwd"  # noqa: S105 (a path)
DEFAULT_ACL_FILE: Final = "/etc/mosquitto/consultease.acl"


class CredentialFileError(ConsultEaseError):
    """A password or ACL file could not be read or written."""


# -- passwords ----------------------------------------------------------------


def generate_password() -> str:
    """A fresh random broker password, safe in an ``mqtt://user:pass@`` URL as is."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """``$7$<iterations>$<base64 salt>$<base64 hash>``, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (what the broker will decide)."""
    match = _HASH_LINE.match(encoded)
    if match is None:
        return False
    iterations, salt, expected = match.groups()
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations), HASH_BYTES
    )
    return hmac.compare_digest(digest, base64.b64decode(expected))


def password_file_line(username: str, password: str) -> str:
    """One line of a Mosquitto password file (without the newline)."""
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValidationError(f"not a usable broker username: {username!r}", field="username")
    return f"{username}:{hash_password(password)}"


# -- ACLs ---------------------------------------------------------------------


def desk_username(faculty_id: int) -> str:
    if faculty_id < 1:
        raise ValidationError(f"faculty id must be at least 1, got {faculty_id}", field="id")
    return f"{DESK_USER_PREFIX}{faculty_id}"


def desk_acl(faculty_id: int) -> str:
    """The ACL block of one desk unit: its own inbound topics, what is sent to it."""
    desk_username(faculty_id)  # validates the id
    return desk_acl_block(faculty_id)


def ingest_acl(username: str = INGEST_USERNAME) -> str:
    """The ingest service's block: read every desk topic, write what desks are shown."""
    return service_acl_block(username)


def kiosk_acl(username: str = KIOSK_USERNAME) -> str:
    """The kiosks' block: read what every desk is shown, nothing else."""
    return kiosk_acl_block(username)


def example_acl() -> str:
    """An ACL file with the ingest service and desk 1, for ``desk broker-config --acl``."""
    return (
        "# ConsultEase broker ACL (Mosquitto 2.x acl_file).\n"
        "#\n"
        "# Users not named here may do nothing at all. Add a desk with\n"
        "#   consultease desk credentials N --password-file PASSWD --acl-file ACL\n"
        "# and create the ingest service's user with\n"
        "#   consultease desk credentials --service ingest --password-file PASSWD --acl-file ACL\n"
        "# and the kiosks' (for --live-updates broker) with --service kiosk,\n"
        "# then reload the broker (kill -HUP <pid of mosquitto>).\n"
        "\n" + ingest_acl() + "\n" + desk_acl(1) + "\n" + kiosk_acl()
    )


# -- credentials --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    """A new broker user: the password (shown once), its password-file line and ACL."""

    username: str
    password: str
    password_line: str
    acl_block: str


def desk_credentials(faculty_id: int, *, password: str | None = None) -> Credentials:
    username = desk_username(faculty_id)
    password = password or generate_password()
    return Credentials(
        username=username,
        password=password,
        password_line=password_file_line(username, password),
        acl_block=desk_acl(faculty_id),
    )


def service_credentials(service: str, *, password: str | None = None) -> Credentials:
    try:
        username = SERVICE_USERNAMES[service]
    except KeyError:
        known = ", ".join(SERVICE_USERNAMES)
        raise ValidationError(f"unknown service {service!r} (known: {known})") from None
    password = password or generate_password()
    return Credentials(
        username=username,
        password=password,
        password_line=password_file_line(username, password),
        acl_block=kiosk_acl(username) if username == KIOSK_USERNAME else ingest_acl(username),
    )


def install(credentials: Credentials, *, password_file: Path, acl_file: Path) -> bool:
    """Add (or, for a user already there, replace) the password line and make
    sure the ACL block is present. Returns whether the user was new.

    Files are replaced atomically and keep their permissions; new files are
    created readable by owner and group only (``chown root:mosquitto`` them).
    """
    prefix = credentials.username + ":"
    lines = _read_lines(password_file)
    kept = [line for line in lines if not line.startswith(prefix)]
    new_user = len(kept) == len(lines)
    _write_atomically(
        password_file, "".join(f"{line}\n" for line in kept) + credentials.password_line + "\n"
    )

    acl_lines = _read_lines(acl_file)
    header = f"user {credentials.username}"
    if not any(line.strip() == header for line in acl_lines):
        text = "".join(f"{line}\n" for line in acl_lines)
        separator = "\n" if text.strip() else ""
        _write_atomically(acl_file, text + separator + credentials.acl_block)
    return new_user


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CredentialFileError(f"cannot read {path}: {exc.strerror}") from exc


def _write_atomically(path: Path, text: str) -> None:
    try:
        old: os.stat_result | None = path.stat()
    except FileNotFoundError:
        old = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temp, old.st_mode & 0o7777 if old else 0o640)
            if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.chown(temp, old.st_uid, old.st_gid)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CredentialFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
