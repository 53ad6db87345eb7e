"""Settings of the simulator: URL, id lists, flags, and the package's boundaries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from desk_firmware_sim.cli import build_parser, config_from_args, main
from desk_firmware_sim.config import BrokerUrl, MqttVersion, SimConfig, parse_id_list
from desk_firmware_sim.errors import ConfigError
from desk_firmware_sim.faults import FaultConfig
from desk_firmware_sim.unit import Mode

REPO_ROOT = Path(__file__).resolve().parents[2]


def config(*argv: str, env: dict[str, str] | None = None) -> SimConfig:
    return config_from_args(build_parser().parse_args(list(argv)), env or {})


def test_parse_id_list() -> None:
    assert parse_id_list("1,2,5-9") == (1, 2, 5, 6, 7, 8, 9)
    assert parse_id_list(" 3, 3,1-2 ") == (3, 1, 2)
    for bad in ("", "a", "0", "5-3", "1-", "-2"):
        with pytest.raises(ConfigError):
            parse_id_list(bad)


def test_broker_url() -> None:
    url = BrokerUrl.parse("mqtt://user:p%40ss@broker.local:1884")
    assert url == BrokerUrl(host="broker.local", port=1884, username="user", password="p@ss")
    assert url.display() == "mqtt://user:***@broker.local:1884"
    assert BrokerUrl.parse("mqtts://h") == BrokerUrl(host="h", port=8883, tls=True)
    assert BrokerUrl.parse("mqtt://h").port == 1883
    for bad in ("http://h", "mqtt://", "mqtt://h:notaport"):
        with pytest.raises(ConfigError):
            BrokerUrl.parse(bad)


def test_defaults_and_environment() -> None:
    default = config()
    assert default.faculty_ids == (1,)
    assert default.mqtt_url == "mqtt://127.0.0.1:1883"
    assert (default.mode, default.rate, default.legacy) == (Mode.REALISTIC, 1.0, False)
    assert default.faults == FaultConfig(reconnect_delay_min=1.0, reconnect_delay_max=3.0)
    env = {"CONSULTEASE_MQTT_URL": "mqtt://from-env:1999"}
    assert config(env=env).mqtt_url == "mqtt://from-env:1999"
    assert config("--mqtt-url", "mqtt://flag:1", env=env).mqtt_url == "mqtt://flag:1"


def test_units_and_faculty_ids() -> None:
    assert config("--units", "3").faculty_ids == (1, 2, 3)
    assert config("--faculty-ids", "4,8-9").faculty_ids == (4, 8, 9)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--units", "2", "--faculty-ids", "1"])
    with pytest.raises(ConfigError):
        config("--units", "0")


def test_rate_zero_or_flood_means_as_fast_as_possible() -> None:
    for argv in (("--rate", "0"), ("--flood",)):
        flood = config(*argv)
        assert (flood.mode, flood.rate, flood.flood) == (Mode.LOAD, 0.0, True)
    paced = config("--load", "--rate", "600")
    assert (paced.mode, paced.rate, paced.flood) == (Mode.LOAD, 600.0, False)
    with pytest.raises(ConfigError):
        config("--rate", "-1")


def test_fault_flags_reach_the_config() -> None:
    cfg = config(
        "--duplicate-rate",
        "0.1",
        "--reorder-window",
        "3",
        "--reorder-rate",
        "0.5",
        "--reboot-rate",
        "0.01",
        "--drop-rate",
        "0.02",
        "--clock-skew",
        "600",
        "--reconnect-delay",
        "0.5-2",
        "--legacy",
        "--seed",
        "9",
        "--mqtt-version",
        "5",
    )
    assert cfg.faults == FaultConfig(
        duplicate_rate=0.1,
        reorder_window=3,
        reorder_rate=0.5,
        reboot_rate=0.01,
        drop_rate=0.02,
        clock_skew=600.0,
        reconnect_delay_min=0.5,
        reconnect_delay_max=2.0,
    )
    assert (cfg.legacy, cfg.seed, cfg.mqtt_version) == (True, 9, MqttVersion.V5)
    assert cfg.unit_spec(1).clock_skew == 600.0


@pytest.mark.parametrize(
    "argv",
    [
        ("--duplicate-rate", "1.5"),
        ("--drop-rate", "-0.1"),
        ("--reorder-window", "-1"),
        ("--reconnect-delay", "3-1"),
        ("--reconnect-delay", "soon"),
        ("--duration", "0"),
        ("--mqtt-url", "http://nope"),
    ],
)
def test_bad_settings_are_config_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        config(*argv)


def test_grace_period_follows_the_rate_unless_given() -> None:
    assert SimConfig(rate=1.0).effective_grace_period == 15.0
    assert SimConfig(rate=0.1).effective_grace_period == 30.0
    assert SimConfig(rate=600.0).effective_grace_period == pytest.approx(0.05)
    assert SimConfig(rate=1.0, grace_period=3.0).effective_grace_period == 3.0


def test_per_desk_passwords(tmp_path: Path) -> None:
    path = tmp_path / "desks.json"
    path.write_text(json.dumps({"3": "three", "desk-4": "four"}))
    cfg = config("--mqtt-url", "mqtt://shared:pw@h:1", "--desk-passwords", str(path))
    assert cfg.credentials(3) == ("desk-3", "three")
    assert cfg.credentials(4) == ("desk-4", "four")
    assert cfg.credentials(5) == ("shared", "pw")
    path.write_text("[]")
    with pytest.raises(ConfigError):
        config("--desk-passwords", str(path))


def test_bad_settings_reach_the_user_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--duplicate-rate", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("desk_firmware_sim: error: duplicate_rate must be between 0 and 1")


def test_the_simulator_never_imports_the_system() -> None:
    probe = (
        "import sys, desk_firmware_sim, desk_firmware_sim.cli, desk_firmware_sim.view;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('consultease', 'kiosk_ui'));"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout
    assert out.strip() == "[]"
    for source in (REPO_ROOT / "desk_firmware_sim").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"consultease", "kiosk_ui"}, source.name
