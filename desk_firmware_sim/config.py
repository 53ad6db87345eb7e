"""Configuration of a simulated fleet: one frozen object, built at the entry point.

Nothing here reads the environment or the clock; the CLI passes what it found.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from desk_firmware_sim.answers import AnswerPolicy
from desk_firmware_sim.errors import ConfigError
from desk_firmware_sim.faults import FaultConfig
from desk_firmware_sim.unit import Mode, UnitSpec

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
MAX_FACULTY_ID = 2**63 - 1


class MqttVersion(enum.StrEnum):
    V311 = "3.1.1"
    V5 = "5"


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerUrl:
    """A parsed ``mqtt://[user:pass@]host:port`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ConfigError(f"MQTT URL has no host: {url!r}")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"MQTT URL has a bad port: {url!r}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def display(self) -> str:
        """The URL with any password masked, for messages."""
        auth = ""
        if self.username:
            auth = self.username + (":***" if self.password else "") + "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


def parse_id_list(text: str) -> tuple[int, ...]:
    """``"1,2,5-9"`` -> ``(1, 2, 5, 6, 7, 8, 9)``, in the order given, without repeats."""
    ids: list[int] = []
    seen: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        low_text, dash, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError as exc:
            raise ConfigError(f"bad faculty id or range {part!r} in {text!r}") from exc
        if low < 1 or high < low:
            raise ConfigError(f"bad faculty id range {part!r}: ids are positive, low-high")
        if high - low > 100_000:
            raise ConfigError(f"faculty id range {part!r} is too large")
        for fid in range(low, high + 1):
            if fid not in seen:
                seen.add(fid)
                ids.append(fid)
    if not ids:
        raise ConfigError(f"no faculty ids in {text!r}")
    return tuple(ids)


def _check_probability(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")


def _check_non_negative(name: str, value: float) -> None:
    if not (value >= 0.0) or math.isinf(value):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value}")


def _validate_faults(faults: FaultConfig) -> None:
    for name in ("duplicate_rate", "reorder_rate", "reboot_rate", "drop_rate"):
        _check_probability(name, getattr(faults, name))
    if faults.reorder_window < 0:
        raise ConfigError(f"reorder_window must be >= 0, got {faults.reorder_window}")
    if not math.isfinite(faults.clock_skew):
        raise ConfigError("clock_skew must be finite")
    _check_non_negative("reorder_max_hold", faults.reorder_max_hold)
    _check_non_negative("reconnect_delay_min", faults.reconnect_delay_min)
    if faults.reconnect_delay_max < faults.reconnect_delay_min:
        raise ConfigError("reconnect_delay_max must be >= reconnect_delay_min")


@dataclass(frozen=True, kw_only=True, slots=True)
class SimConfig:
    """Everything a fleet of simulated desk units needs.

    ``rate`` is status changes per unit per minute. In ``Mode.REALISTIC`` it scales the
    dwell times of the simulated faculty (mean dwell = 60 / rate seconds). In
    ``Mode.LOAD`` every step is a status change: ``rate > 0`` paces them evenly,
    ``rate == 0`` floods (as fast as the broker acknowledges).
    """

    faculty_ids: tuple[int, ...] = (1,)
    mqtt_url: str = DEFAULT_MQTT_URL
    mode: Mode = Mode.REALISTIC
    rate: float = 1.0
    duration: float | None = None
    seed: int | None = None
    legacy: bool = False
    """The existing ESP32 firmware: the command line then runs ``Esp32Fleet``
    (``esp32_runner``), which behaves as that firmware does on MQTT. ``Fleet`` given
    this flag only swaps the payload (still QoS 1 with a will): a payload check, not
    the firmware."""
    heartbeat_interval: float = 30.0
    grace_period: float | None = None
    mismatch_after: float = 5.0
    state_dir: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    answers: AnswerPolicy | None = field(default_factory=AnswerPolicy)
    """How the simulated lecturers answer consultation requests; ``None``: never."""
    faculty_names: Mapping[int, str] = field(default_factory=dict)
    # Per-unit broker accounts: faculty id -> password, username ``desk-{id}``.
    # Without an entry a unit uses the user and password of ``mqtt_url``.
    desk_passwords: Mapping[int, str] = field(default_factory=dict)
    mqtt_version: MqttVersion = MqttVersion.V311
    tls_ca_file: Path | None = None
    client_id_prefix: str = "desk-sim-"
    keepalive: int = 30
    connect_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    max_inflight: int = 1000
    max_queued: int = 10_000

    def __post_init__(self) -> None:
        if not self.faculty_ids:
            raise ConfigError("at least one faculty id is needed")
        if len(set(self.faculty_ids)) != len(self.faculty_ids):
            raise ConfigError("faculty ids must be unique")
        for fid in self.faculty_ids:
            if not (1 <= fid <= MAX_FACULTY_ID):
                raise ConfigError(f"faculty id must be a positive integer, got {fid}")
        BrokerUrl.parse(self.mqtt_url)
        _check_non_negative("rate", self.rate)
        if self.mode is Mode.REALISTIC and self.rate <= 0:
            raise ConfigError("rate must be > 0 in realistic mode (0 means flood: load mode)")
        if self.duration is not None and not (self.duration > 0):
            raise ConfigError(f"duration must be > 0 seconds, got {self.duration}")
        _check_non_negative("heartbeat_interval", self.heartbeat_interval)
        if self.grace_period is not None:
            _check_non_negative("grace_period", self.grace_period)
        _check_non_negative("mismatch_after", self.mismatch_after)
        if self.keepalive < 5:
            raise ConfigError(f"keepalive must be at least 5 seconds, got {self.keepalive}")
        if not (self.connect_timeout > 0) or not (self.shutdown_timeout > 0):
            raise ConfigError("connect_timeout and shutdown_timeout must be > 0")
        if self.max_inflight < 1:
            raise ConfigError(f"max_inflight must be >= 1, got {self.max_inflight}")
        if self.max_queued < 0:
            raise ConfigError(f"max_queued must be >= 0 (0 = unlimited), got {self.max_queued}")
        _validate_faults(self.faults)

    @property
    def flood(self) -> bool:
        """Load mode without pacing: publish as fast as the broker acknowledges."""
        return self.mode is Mode.LOAD and self.rate == 0

    @property
    def effective_grace_period(self) -> float:
        """The grace period, or by default a quarter of the mean dwell, within 0.05..30 s."""
        if self.grace_period is not None:
            return self.grace_period
        if self.rate <= 0:
            return 0.05
        return min(30.0, max(0.05, 0.25 * 60.0 / self.rate))

    def unit_spec(self, faculty_id: int) -> UnitSpec:
        return UnitSpec(
            faculty_id=faculty_id,
            faculty_name=self.faculty_names.get(faculty_id, f"Faculty {faculty_id}"),
            desk_id=f"{self.client_id_prefix}{faculty_id}",
            legacy=self.legacy,
            mode=self.mode,
            rate=self.rate,
            grace_period=self.effective_grace_period,
            heartbeat_interval=self.heartbeat_interval,
            clock_skew=self.faults.clock_skew,
        )

    def credentials(self, faculty_id: int) -> tuple[str | None, str | None]:
        """Username and password unit ``faculty_id`` logs in with."""
        password = self.desk_passwords.get(faculty_id)
        if password is not None:
            return f"desk-{faculty_id}", password
        broker = BrokerUrl.parse(self.mqtt_url)
        return broker.username, broker.password
