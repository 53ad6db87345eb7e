"""The README's broker commands, run as written, as root, on a machine with a
``mosquitto`` user, give a broker that starts and accepts its logins (issue 13, item 5).

Only what cannot be shared with the machine's own broker changes: ``/etc/mosquitto``
becomes a private directory, ``sudo`` is dropped when it is not installed (we are
root already), ``pidof mosquitto`` becomes this broker's pid, and after the
``tee`` step the listeners and the persistence and log paths of the written
config are moved off the machine's (``adapted_config``, as every broker test
does). The broker is started as root without ``user root``, so it drops to the
``mosquitto`` user before reading the credential files: the very step that failed
when they were written ``root:root 0640``.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from consultease.broker.config import adapted_config, shipped_config
from consultease.tools.servers import free_port, wait_for_port
from tests.integration.test_security_mqtt import Client
from tests.support.ingest import REPO_ROOT

ETC = "/etc/mosquitto"


def _readme_block(heading: str) -> list[str]:
    """The commands of the first ``sh`` block under ``heading``, continuations joined."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index(heading + "\n") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, f"no sh block under {heading}"
    joined = block.group(1).replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


@pytest.fixture
def private_etc() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the README's broker steps are run as root")
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user on this machine (the broker's package creates it)")
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    # Under /tmp, not pytest's 0700 tmp_path: the broker must reach it as mosquitto.
    root = Path(tempfile.mkdtemp(prefix="consultease-readme-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(command: str, etc: Path, *, pid: int | None = None) -> str:
    command = command.replace(ETC, str(etc))
    if shutil.which("sudo") is None:
        command = re.sub(r"(^|\| )sudo ", r"\1", command)
    if pid is not None:
        command = command.replace('"$(pidof mosquitto)"', str(pid))
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    result = subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONSULTEASE_")}
        | {"PATH": path},
        check=False,
    )
    assert result.returncode == 0, f"{command!r} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def _broker_pid(config: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(config).encode() in cmdline and Path(cmdline[0].decode()).name == "mosquitto":
                return int(entry.name)
    raise AssertionError("the broker is not running")


def test_the_readme_broker_commands_give_a_broker_that_starts_and_accepts_desk_3(
    private_etc: Path,
) -> None:
    etc = private_etc / "etc"
    etc.mkdir(mode=0o755)
    data = private_etc / "var"
    data.mkdir()
    broker_user = pwd.getpwnam("mosquitto")
    os.chown(data, broker_user.pw_uid, broker_user.pw_gid)
    setup = _readme_block("### The broker")
    desk = _readme_block("### Desk credentials")
    assert setup[0].startswith("consultease desk broker-config | sudo tee ")
    assert setup[1].startswith("sudo consultease desk credentials --service ingest")
    assert setup[2].startswith("sudo mosquitto ")
    conf = etc / "consultease.conf"

    _run(setup[0], etc)
    assert conf.read_text() == shipped_config()
    port = free_port()
    conf.write_text(
        adapted_config(
            listeners={1883: f"{port} 127.0.0.1", 8883: None},
            settings={
                "password_file": str(etc / "consultease.passwd"),
                "acl_file": str(etc / "consultease.acl"),
                "persistence_location": f"{data}/",
                "log_dest": f"file {data}/mosquitto.log",
            },
        )
    )
    ingest_password = _run(setup[1], etc).strip().splitlines()[-1]
    passwd, acl = etc / "consultease.passwd", etc / "consultease.acl"
    for path in (passwd, acl):
        st = path.stat()
        assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name) == (0, "mosquitto"), path
        assert stat.S_IMODE(st.st_mode) == 0o640, path

    _run(setup[2], etc)
    pid = _broker_pid(conf)
    try:
        wait_for_port("127.0.0.1", port, timeout=10)
        assert pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name == "mosquitto"
        ingest = Client(port, "consultease-ingest", ingest_password, protocol=mqtt.MQTTv5)
        try:
            assert ingest.accepted, ingest.reason
        finally:
            ingest.close()

        desk_password = _run(desk[0], etc).strip().splitlines()[-1]
        _run(desk[1], etc, pid=pid)
        deadline = time.monotonic() + 10
        while True:
            desk3 = Client(port, "desk-3", desk_password, protocol=mqtt.MQTTv311)
            desk3.close()
            if desk3.accepted or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the reload is asynchronous
        assert desk3.accepted, desk3.reason
        wrong = Client(port, "desk-3", desk_password + "x", protocol=mqtt.MQTTv311)
        wrong.close()
        assert not wrong.accepted
        assert _broker_pid(conf) == pid  # still the same broker, still running
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
