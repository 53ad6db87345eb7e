"""Broker logins: password-file lines in Mosquitto's own hash format, and the
per-login ACL blocks (from the templates in ``consultease.broker.config``).

Who may do what (SPEC 3):

- ``desk-N`` publishes only the desk -> system topics of faculty N
  (``status``, ``heartbeat``, ``availability``, ``mac_status``, ``responses``)
  and reads only what is sent to its own desk (``state``, ``messages``,
  ``cancellations``). It cannot speak for another lecturer, nor write what
  desks are shown.
- ``consultease-ingest`` (or ``consultease-ingest-NAME``, one login per ingest
  service) reads every desk topic and writes what desks are shown.
- ``consultease-kiosk`` (kiosks with ``--live-updates broker``) only reads what
  desks are shown (``…/state``).
- Anonymous clients are refused.

The shipped broker config sets ``use_username_as_clientid`` on every listener, so
a login is also its client id: no login can take over another's connection,
session or last will. Mosquitto 2.0's ACL file cannot refuse a subscription (it
checks ``read`` only when it delivers), so a desk may join a shared-subscription
group and receive nothing, while the broker still hands it its round-robin
share of the group's messages, which are then lost. The ingest services'
group name is therefore a secret, generated with the first ingest login and
kept in the ACL file (which only root and the broker can read).
"""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consultease.broker.config import (
    desk_acl_block,
    kiosk_acl_block,
    service_acl_block,
    state_acl_block,
)
from consultease.errors import ConsultEaseError, ValidationError

DESK_USER_PREFIX: Final = "desk-"
INGEST_USERNAME: Final = "consultease-ingest"
KIOSK_USERNAME: Final = "consultease-kiosk"
SERVICE_USERNAMES: Final = {"ingest": INGEST_USERNAME, "kiosk": KIOSK_USERNAME}
"""``consultease desk credentials --service NAME`` -> broker username."""
STATE_LOGIN_SUFFIX: Final = "-state"
"""An ingest login L comes with L-state (same password) for its state publisher:
with client ids tied to logins, two connections cannot share one login."""

# Mosquitto 2.x password hashes: "$7$" = PBKDF2-HMAC-SHA512 (src/password_mosq.c).
PBKDF2_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
HASH_BYTES: Final = 64
_HASH_LINE: Final = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")

PASSWORD_BYTES: Final = 24
"""Random bytes in a generated broker password (32 URL-safe characters)."""

SHARED_GROUP_MARKER: Final = "# shared subscription group of the ingest services: "
"""The ACL-file comment that keeps the secret group name (``ingest --shared``)."""
SHARED_GROUP_BYTES: Final = 12
BROKER_GROUP: Final = "mosquitto"
"""The group the Debian/Ubuntu mosquitto package runs the broker as."""

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


def service_username(base: str, name: str | None = None) -> str:
    """``base``, or ``base-NAME`` for one of several services (or kiosks)."""
    if name is None:
        return base
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name) or name.endswith("state"):
        raise ValidationError(
            f"--name must be 1-40 letters, digits, '-' or '_' (not ending in 'state'), "
            f"got {name!r}",
            field="name",
        )
    return f"{base}-{name}"


def state_username(ingest_login: str) -> str:
    """The login an ingest service's state publisher uses beside ``ingest_login``."""
    return ingest_login + STATE_LOGIN_SUFFIX


def generate_shared_group() -> str:
    """A shared-subscription group name nobody can guess (no ``/ + # $``)."""
    return "consultease-" + secrets.token_hex(SHARED_GROUP_BYTES)


def shared_group_in(acl_text: str) -> str | None:
    """The ingest services' secret group recorded in an ACL file, if any."""
    for line in acl_text.splitlines():
        if line.startswith(SHARED_GROUP_MARKER):
            return line[len(SHARED_GROUP_MARKER) :].strip() or None
    return None


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
    shared_group: str | None = None
    """For an ingest login: the secret shared-subscription group (``ingest --shared``)."""
    companion: Credentials | None = None
    """For an ingest login: its state publisher's login (same password)."""


def desk_credentials(faculty_id: int, *, password: str | None = None) -> Credentials:
    username = desk_username(faculty_id)
    password = password or generate_password()
    return Credentials(
        username=username,
        password=password,
        password_line=password_file_line(username, password),
        acl_block=desk_acl(faculty_id),
    )


def service_credentials(
    service: str,
    *,
    password: str | None = None,
    name: str | None = None,
    shared_group: str | None = None,
) -> Credentials:
    """A service login. ``name`` makes one of several ingest logins
    (``consultease-ingest-NAME``); ``shared_group`` is the group they share
    (a new secret one when not given; ``install`` keeps the one an ACL file has)."""
    if service not in SERVICE_USERNAMES:
        known = ", ".join(SERVICE_USERNAMES)
        raise ValidationError(f"unknown service {service!r} (known: {known})")
    password = password or generate_password()
    if service == "kiosk":
        username = service_username(KIOSK_USERNAME, name)
        return Credentials(
            username=username,
            password=password,
            password_line=password_file_line(username, password),
            acl_block=kiosk_acl(username),
        )
    username = service_username(INGEST_USERNAME, name)
    state = state_username(username)
    return Credentials(
        username=username,
        password=password,
        password_line=password_file_line(username, password),
        acl_block=ingest_acl(username),
        shared_group=shared_group or generate_shared_group(),
        companion=Credentials(
            username=state,
            password=password,
            password_line=password_file_line(state, password),
            acl_block=state_acl_block(state),
        ),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Installed:
    """What ``install`` did."""

    new_user: bool
    shared_group: str | None
    """The ingest services' group now in the ACL file (an ingest login only)."""
    owner_note: str | None
    """One line for the operator when the files may not be readable by the broker."""


def install(credentials: Credentials, *, password_file: Path, acl_file: Path) -> Installed:
    """Add (or, for a user already there, replace) the password line and make
    sure the ACL block is present (and, for an ingest login, the secret group).

    Files are replaced atomically and keep their owner and mode. New files are
    mode 0640; run as root where a ``mosquitto`` group exists, they are owned
    ``root:mosquitto`` so the broker, which drops root for that user before it
    reads them, can read them and desks on the same host cannot.
    """
    prefix = credentials.username + ":"
    lines = _read_lines(password_file)
    kept = [line for line in lines if not line.startswith(prefix)]
    new_user = len(kept) == len(lines)
    _write_atomically(
        password_file, "".join(f"{line}\n" for line in kept) + credentials.password_line + "\n"
    )

    acl_lines = _read_lines(acl_file)
    text = "".join(f"{line}\n" for line in acl_lines)
    group = None
    if credentials.shared_group is not None:
        group = shared_group_in(text)
        if group is None:
            group = credentials.shared_group
            text = f"{SHARED_GROUP_MARKER}{group}\n" + text
    header = f"user {credentials.username}"
    if not any(line.strip() == header for line in acl_lines):
        separator = "\n" if text.strip() else ""
        text = text + separator + credentials.acl_block
    if text != "".join(f"{line}\n" for line in acl_lines):
        _write_atomically(acl_file, text)
    if credentials.companion is not None:
        install(credentials.companion, password_file=password_file, acl_file=acl_file)
    return Installed(
        new_user=new_user,
        shared_group=group,
        owner_note=_owner_note(password_file, acl_file),
    )


def _broker_gid() -> int | None:
    try:
        return grp.getgrnam(BROKER_GROUP).gr_gid
    except KeyError:
        return None


def _owner_note(*paths: Path) -> str | None:
    """A line saying what to chown, when a file is root's alone and the broker
    (which runs as another user) could not read it."""
    unreadable = [
        str(path)
        for path in paths
        if (st := path.stat()).st_uid == 0 and st.st_gid == 0 and not st.st_mode & 0o004
    ]
    if not unreadable or os.geteuid() != 0:
        return None
    files = " ".join(unreadable)
    if _broker_gid() is not None:
        return f"the broker cannot read {files}: chown root:{BROKER_GROUP} {files}"
    return (
        f"no {BROKER_GROUP!r} group here: chown root:GROUP {files}, "
        "GROUP being the one the broker runs as"
    )


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
            elif old is None and os.geteuid() == 0 and (gid := _broker_gid()) is not None:
                os.chown(temp, 0, gid)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CredentialFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
