"""The broker side of MQTT security: the Mosquitto configuration we ship,
password-file lines in Mosquitto's own hash format, and per-user ACL blocks.

Who may do what (SPEC 3):

- ``desk-N`` publishes only the desk -> system topics of faculty N
  (``status``, ``heartbeat``, ``availability``, ``mac_status``) and reads
  only its own ``consultease/faculty/N/state``. It cannot speak for another
  lecturer, nor write the ``state`` that desks display.
- ``consultease-ingest`` reads every desk topic and writes ``state``.
- Anonymous clients are refused.

The configuration and the example ACL are built here, as Python, so an
installed wheel (whose package data holds only ``py.typed``) can still print
them (``consultease desk broker-config``). The copies under
``consultease/broker/`` are what an operator reads and copies into
``/etc/mosquitto``; a unit test keeps them byte-for-byte equal to what these
functions produce, so the two can never drift apart.
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

from consultease.errors import ConsultEaseError, ValidationError
from consultease.payloads import FACULTY_TOPIC_PREFIX, INBOUND_SUFFIXES, STATE_SUFFIX

DESK_USER_PREFIX: Final = "desk-"
INGEST_USERNAME: Final = "consultease-ingest"
SERVICE_USERNAMES: Final = {"ingest": INGEST_USERNAME}
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
DEFAULT_CERTFILE: Final = "/etc/mosquitto/certs/consultease.crt"
DEFAULT_KEYFILE: Final = "/etc/mosquitto/certs/consultease.key"
MAX_QUEUED_MESSAGES: Final = 100_000


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
    """The ACL block of one desk unit: its own inbound topics, its own ``state``."""
    lines = [f"user {desk_username(faculty_id)}"]
    lines += [
        f"topic write {FACULTY_TOPIC_PREFIX}{faculty_id}/{suffix}" for suffix in INBOUND_SUFFIXES
    ]
    lines.append(f"topic read {FACULTY_TOPIC_PREFIX}{faculty_id}/{STATE_SUFFIX}")
    return "\n".join(lines) + "\n"


def ingest_acl(username: str = INGEST_USERNAME) -> str:
    """The ingest service's block: read every desk topic, write every ``state``."""
    lines = [f"user {username}"]
    lines += [f"topic read {FACULTY_TOPIC_PREFIX}+/{suffix}" for suffix in INBOUND_SUFFIXES]
    lines.append(f"topic readwrite {FACULTY_TOPIC_PREFIX}+/{STATE_SUFFIX}")
    return "\n".join(lines) + "\n"


def example_acl() -> str:
    """The shipped ``consultease/broker/acl.example``."""
    return (
        "# ConsultEase broker ACL (Mosquitto 2.x acl_file).\n"
        "#\n"
        "# Users not named here may do nothing at all. Add a desk with\n"
        "#   consultease desk credentials N --password-file PASSWD --acl-file ACL\n"
        "# and create the ingest service's user with\n"
        "#   consultease desk credentials --service ingest --password-file PASSWD --acl-file ACL\n"
        "# then reload the broker (kill -HUP <pid of mosquitto>).\n"
        "\n" + ingest_acl() + "\n" + desk_acl(1)
    )


# -- the broker configuration ------------------------------------------------


def broker_config(
    *,
    port: int = 1883,
    bind_address: str | None = "127.0.0.1",
    tls_port: int | None = 8883,
    certfile: str = DEFAULT_CERTFILE,
    keyfile: str = DEFAULT_KEYFILE,
    password_file: str = DEFAULT_PASSWORD_FILE,
    acl_file: str = DEFAULT_ACL_FILE,
    persistence_location: str = "/var/lib/mosquitto/",
    log_dest: str = "syslog",
    extra: str = "",
) -> str:
    """The production Mosquitto configuration; the defaults are what we ship.

    Tests pass their own port and paths; every other directive stays as shipped.
    """
    plain = f"listener {port}" + (f" {bind_address}" if bind_address else "")
    tls = (
        (
            "# MQTT over TLS for desk units on the network (mqtts://host:8883).\n"
            f"listener {tls_port}\n"
            f"certfile {certfile}\n"
            f"keyfile {keyfile}\n"
            "tls_version tlsv1.2\n"
            "\n"
        )
        if tls_port is not None
        else ""
    )
    return (
        "# ConsultEase production broker configuration (Mosquitto 2.x).\n"
        "# Run it as: mosquitto -c /etc/mosquitto/consultease.conf\n"
        "# Generated by consultease.mqtt_auth.broker_config; keep the two in step.\n"
        "\n"
        "# Every client logs in; what each may touch is in the ACL file.\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {password_file}\n"
        f"acl_file {acl_file}\n"
        "\n"
        "# Keep sessions and queued QoS 1 messages across a broker restart.\n"
        "persistence true\n"
        f"persistence_location {persistence_location}\n"
        "autosave_interval 30\n"
        "# The default of 1000 silently drops messages for a busy ingest service.\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        "max_inflight_messages 0\n"
        "# Desk payloads are at most 4 KiB; anything far larger is refused here.\n"
        "max_packet_size 65536\n"
        "# Forget MQTT 3.1.1 sessions of clients gone for two weeks.\n"
        "persistent_client_expiration 14d\n"
        "\n"
        f"log_dest {log_dest}\n"
        "log_type error\n"
        "log_type warning\n"
        "log_type notice\n"
        "connection_messages true\n"
        "\n"
        "# Plain MQTT on loopback only: the ingest service on this host.\n"
        f"{plain}\n"
        "\n"
        f"{tls}"
        "# Desk units that cannot do TLS (the legacy ESP32 firmware) may use a plain\n"
        "# listener on the LAN; their passwords then cross the network in clear.\n"
        "#listener 1884\n" + extra
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
        acl_block=ingest_acl(username),
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
