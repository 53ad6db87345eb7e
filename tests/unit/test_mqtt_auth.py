"""Broker-side credentials: Mosquitto's $7$ hash format, ACL blocks, the shipped files,
and the audit ``--since`` parser. No services."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consultease.admin.audit import describe_change, parse_since
from consultease.broker.config import adapted_config, shipped_config
from consultease.broker.credentials import (
    desk_acl,
    desk_credentials,
    example_acl,
    hash_password,
    ingest_acl,
    install,
    kiosk_acl,
    service_credentials,
    verify_password,
)
from consultease.cli import main
from consultease.config import MqttEndpoint
from consultease.errors import ValidationError
from consultease.ingest.state_publisher import endpoint_url, state_endpoint
from consultease.payloads import INBOUND_SUFFIXES
from consultease.tools.servers import mosquitto_config

BROKER_DIR = Path(__file__).resolve().parents[2] / "consultease" / "broker"


def test_hash_matches_a_line_written_by_mosquitto_passwd() -> None:
    # `mosquitto_passwd -c -b file desk-3 secretpass` (Mosquitto 2.0.11) wrote this line.
    line = (
        "$7$101$vv9Jn0CIpi9wuD/v$3SqplG+SoznszkxSwU5ivhWV8eAY7JGazaDgI9geBXk+EJbsM1Cc"
        "AS8OOUYY2W1rKLmTiB8WPTS9/b8uiYuNEw=="
    )
    salt = base64.b64decode("vv9Jn0CIpi9wuD/v")
    assert hash_password("secretpass", salt=salt) == line
    assert verify_password(line, "secretpass")
    assert not verify_password(line, "secretpasS")


def test_hash_format_is_iterations_101_salt_12_bytes_key_64_bytes() -> None:
    _, seven, iterations, salt, digest = hash_password("x").split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64


def test_every_credential_gets_a_fresh_salt_and_password() -> None:
    first, second = desk_credentials(3), desk_credentials(3)
    assert first.password != second.password
    assert first.password_line != second.password_line
    assert len(first.password) >= 32
    username, encoded = first.password_line.split(":", 1)
    assert username == "desk-3"
    assert verify_password(encoded, first.password)


def _rules(block: str) -> list[str]:
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_desk_acl_allows_only_its_own_topics() -> None:
    assert _rules(desk_acl(3)) == [
        "user desk-3",
        "topic write consultease/faculty/3/status",
        "topic write consultease/faculty/3/heartbeat",
        "topic write consultease/faculty/3/availability",
        "topic write consultease/faculty/3/mac_status",
        "topic write consultease/faculty/3/responses",
        "topic read consultease/faculty/3/state",
        "topic read consultease/faculty/3/messages",
        "topic read consultease/faculty/3/cancellations",
    ]


def test_desk_acl_covers_every_topic_the_ingest_service_reads() -> None:
    written = {line.rsplit("/", 1)[1] for line in _rules(desk_acl(3)) if "write" in line}
    assert written == set(INBOUND_SUFFIXES) | {"responses"}


def test_ingest_acl_reads_every_desk_topic_and_writes_only_what_desks_are_shown() -> None:
    lines = _rules(ingest_acl())
    assert lines[0] == "user consultease-ingest"
    for suffix in INBOUND_SUFFIXES:
        assert f"topic read consultease/faculty/+/{suffix}" in lines
    assert "topic readwrite consultease/faculty/+/state" in lines
    assert sorted(line for line in lines if line.startswith("topic write")) == [
        "topic write consultease/faculty/+/cancellations",
        "topic write consultease/faculty/+/messages",
    ]


@pytest.mark.parametrize("bad", [0, -1])
def test_desk_ids_must_be_positive(bad: int) -> None:
    with pytest.raises(ValidationError):
        desk_credentials(bad)


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown service"):
        service_credentials("printer")


def test_the_shipped_config_is_read_from_the_package_data() -> None:
    assert shipped_config() == (BROKER_DIR / "mosquitto.conf").read_text()
    assert adapted_config() == shipped_config()


def test_example_acl_has_the_ingest_service_desk_one_and_the_kiosks() -> None:
    assert _rules(example_acl()) == _rules(ingest_acl()) + _rules(desk_acl(1)) + _rules(kiosk_acl())


def test_the_kiosk_login_only_reads_what_desks_are_shown() -> None:
    credentials = service_credentials("kiosk")
    assert credentials.username == "consultease-kiosk"
    assert _rules(credentials.acl_block) == [
        "user consultease-kiosk",
        "topic read consultease/faculty/+/state",
    ]


def test_adapted_config_changes_only_ports_and_paths() -> None:
    adapted = adapted_config(
        listeners={1883: "31883 127.0.0.1", 8883: None},
        settings={"password_file": "/tmp/p", "log_dest": "file /tmp/log"},
    )
    kept = [line for line in shipped_config().splitlines() if line not in adapted.splitlines()]
    assert kept == [
        "password_file /etc/mosquitto/consultease.passwd",
        "log_dest syslog",
        "listener 1883",
        "listener 8883",
        "certfile /etc/mosquitto/certs/consultease.crt",
        "keyfile /etc/mosquitto/certs/consultease.key",
        "tls_version tlsv1.2",
    ]
    assert "listener 31883 127.0.0.1" in adapted.splitlines()


@pytest.mark.parametrize(
    "changes",
    [{"listeners": {1884: "1"}}, {"settings": {"no_such_directive": "x"}}],
)
def test_adapted_config_refuses_what_the_shipped_file_lacks(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="has no"):
        adapted_config(**changes)


def test_shipped_config_refuses_anonymous_and_keeps_deep_persistent_queues() -> None:
    directives = {
        line.split()[0]: line.split(None, 1)[1]
        for line in shipped_config().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert directives["allow_anonymous"] == "false"
    assert directives["persistence"] == "true"
    assert int(directives["max_queued_messages"]) >= 100_000
    assert directives["password_file"] and directives["acl_file"]


def test_shipped_and_private_brokers_queue_qos0_for_offline_sessions(tmp_path: Path) -> None:
    """The existing desk firmware publishes only at QoS 0 (SPEC 3.4a): without this a
    status sent while the ingest service restarts is dropped by the broker."""
    for text in (shipped_config(), mosquitto_config(port=1, data_dir=tmp_path)):
        assert "queue_qos0_messages true" in text.splitlines()


def test_shipped_config_has_a_plain_listener_for_legacy_desks_and_tls() -> None:
    """The existing firmware has no TLS and speaks plain MQTT on port 1883; the plain
    listener is the only one without TLS, and anonymous clients stay refused."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in shipped_config().splitlines():
        if line.startswith("listener "):
            current = blocks.setdefault(line, [])
        elif current is not None and line.strip() and not line.startswith("#"):
            current.append(line.split()[0])
        elif not line.strip():
            current = None
    assert set(blocks) == {"listener 1883", "listener 8883"}
    assert "certfile" not in blocks["listener 1883"]
    assert {"certfile", "keyfile"} <= set(blocks["listener 8883"])
    assert "allow_anonymous false" in shipped_config().splitlines()


def test_install_adds_then_replaces_without_duplicating_the_acl(tmp_path: Path) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    assert install(desk_credentials(3), password_file=passwd, acl_file=acl).new_user
    assert install(service_credentials("ingest"), password_file=passwd, acl_file=acl).new_user
    rotated = desk_credentials(3)
    assert not install(rotated, password_file=passwd, acl_file=acl).new_user

    lines = passwd.read_text().splitlines()
    names = [line.split(":")[0] for line in lines]
    assert names == ["consultease-ingest", "consultease-ingest-state", "desk-3"]
    assert rotated.password_line in lines
    assert acl.read_text().count("user desk-3\n") == 1
    assert acl.read_text().count("user consultease-ingest\n") == 1
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o640


def test_install_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text("other:$7$101$AAAA$BBBB\n")
    passwd.chmod(0o600)
    install(desk_credentials(9), password_file=passwd, acl_file=acl)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert passwd.read_text().startswith("other:$7$101$AAAA$BBBB\ndesk-9:$7$")


# -- audit --since ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("15m", timedelta(minutes=15)),
        ("90s", timedelta(seconds=90)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_since_accepts_durations(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


def test_since_accepts_iso_dates_and_times() -> None:
    assert parse_since("2026-01-31T10:00:00+00:00") == datetime(2026, 1, 31, 10, tzinfo=UTC)
    local = parse_since("2026-01-31")
    assert isinstance(local, datetime)
    assert local.tzinfo is not None
    assert (local.year, local.month, local.day, local.hour) == (2026, 1, 31, 0)


@pytest.mark.parametrize("text", ["", "yesterday", "2x", "h2", "2026-13-01", "1; DROP TABLE x"])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValidationError, match="--since"):
        parse_since(text)


def test_describe_change_lists_only_what_differs() -> None:
    assert describe_change({"a": 1, "b": "x"}, {"a": 2, "b": "x"}) == "a: 1 → 2"
    assert describe_change(None, {"username": "alice"}) == "username=alice"
    assert describe_change({"a": 1}, {"a": 1}) == "(no change)"
    assert describe_change({"n": 0}, {"n": 1, "reason": "locked"}) == "n: 0 → 1, reason=locked"


# -- hardening: client ids, packet size, the ingest services' secret group --------


def _listener_blocks(text: str) -> dict[str, list[str]]:
    """Each listener line (commented-out ones too, as an operator will uncomment
    them) with the directives of its block (up to the next blank line)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.lstrip("#").strip() if raw.startswith("#listener") or current else raw
        if not raw.strip():
            current = None
            continue
        words = line.split()
        if words[:1] == ["listener"]:
            current = blocks.setdefault(line, [])
        elif current is not None:
            current.append(raw.lstrip("#").strip())
    return blocks


def test_every_listener_ties_the_client_id_to_the_login() -> None:
    blocks = _listener_blocks(shipped_config())
    assert len(blocks) >= 2, blocks  # plain (loopback and the desk LAN) and TLS
    for listener, directives in blocks.items():
        assert "use_username_as_clientid true" in directives, listener


def test_a_listener_without_the_client_id_rule_is_caught() -> None:
    text = shipped_config() + "\nlistener 1885\nsocket_domain ipv4\n"
    blocks = _listener_blocks(text)
    assert "use_username_as_clientid true" not in blocks["listener 1885"]


def test_max_packet_size_fits_a_full_desk_payload_and_little_more() -> None:
    sizes = [
        int(line.split()[1])
        for line in shipped_config().splitlines()
        if line.startswith("max_packet_size ")
    ]
    # 4096 bytes of payload (SPEC 3.1) plus a topic of up to ~1 KiB and the headers.
    assert sizes == [8192]


def test_ingest_logins_share_one_secret_group_kept_in_the_acl(tmp_path: Path) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    first = install(service_credentials("ingest", name="a"), password_file=passwd, acl_file=acl)
    second = install(service_credentials("ingest", name="b"), password_file=passwd, acl_file=acl)
    install(desk_credentials(3), password_file=passwd, acl_file=acl)
    assert first.shared_group is not None
    assert second.shared_group == first.shared_group
    assert first.shared_group.startswith("consultease-") and len(first.shared_group) >= 30
    assert not set("/+#$") & set(first.shared_group)
    text = acl.read_text()
    assert text.count(first.shared_group) == 1
    assert "user consultease-ingest-a\n" in text and "user consultease-ingest-b\n" in text
    assert service_credentials("ingest").shared_group != service_credentials("ingest").shared_group


@pytest.mark.parametrize("name", ["", "a/b", "x y", "a" * 41, "+"])
def test_an_ingest_name_that_is_no_plain_word_is_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        service_credentials("ingest", name=name)


def test_each_kiosk_gets_a_login_of_its_own() -> None:
    kiosk = service_credentials("kiosk", name="lobby-1")
    assert kiosk.username == "consultease-kiosk-lobby-1"
    assert _rules(kiosk.acl_block) == [
        "user consultease-kiosk-lobby-1",
        "topic read consultease/faculty/+/state",
    ]
    assert kiosk.shared_group is None and kiosk.companion is None


def test_an_ingest_login_comes_with_its_state_publishers_login(tmp_path: Path) -> None:
    ingest = service_credentials("ingest", name="a")
    assert ingest.companion is not None
    state = ingest.companion
    assert state.username == "consultease-ingest-a-state"
    assert state.password == ingest.password
    assert _rules(state.acl_block) == [
        "user consultease-ingest-a-state",
        "topic readwrite consultease/faculty/+/state",
    ]
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    install(ingest, password_file=passwd, acl_file=acl)
    rotated = service_credentials("ingest", name="a")
    install(rotated, password_file=passwd, acl_file=acl)
    lines = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    assert set(lines) == {"consultease-ingest-a", "consultease-ingest-a-state"}
    assert verify_password(lines["consultease-ingest-a-state"], rotated.password)
    assert acl.read_text().count("user consultease-ingest-a-state\n") == 1


def test_the_state_publisher_connects_as_the_companion_login() -> None:
    endpoint = MqttEndpoint.parse("mqtts://consultease-ingest-a:p%40ss%2Fw@broker:8883")
    state = state_endpoint(endpoint)
    assert (state.username, state.password) == ("consultease-ingest-a-state", "p@ss/w")
    assert MqttEndpoint.parse(endpoint_url(state)) == state
    anonymous = MqttEndpoint.parse("mqtt://127.0.0.1:1883")
    assert state_endpoint(anonymous) == anonymous


def test_the_cli_prints_one_secret_group_for_every_ingest_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = ["--password-file", str(tmp_path / "p"), "--acl-file", str(tmp_path / "a")]
    groups = []
    for name in ("a", "b"):
        assert main(["desk", "credentials", "--service", "ingest", "--name", name, *files]) == 0
        out = capsys.readouterr().out
        groups += [line.split()[-1] for line in out.splitlines() if "ingest --shared" in line]
    assert len(groups) == 2 and groups[0] == groups[1]
    assert groups[0] in (tmp_path / "a").read_text()
    assert main(["desk", "credentials", "3", "--name", "x"]) != 0
