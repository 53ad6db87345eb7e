"""Simulated ConsultEase desk units: an outside MQTT client, like the ESP32 firmware.

It never imports ``consultease`` or ``kiosk_ui``. Programmatic use (bench, demo)::

    from desk_firmware_sim import Fleet, Mode, SimConfig

    fleet = Fleet(SimConfig(faculty_ids=(1, 2, 3), mqtt_url="mqtt://127.0.0.1:1883"))
    fleet.start()
    ...
    fleet.truth()      # {faculty_id: last status published}
    fleet.stop()       # retained "offline", clean DISCONNECT, threads joined

The pure parts (``unit``, ``faults``, ``desk``, ``display``) do no I/O and read no clock.
"""

from __future__ import annotations

from desk_firmware_sim.config import BrokerUrl, MqttVersion, SimConfig, parse_id_list
from desk_firmware_sim.desk import Disconnect, PersistBootCount, Send, SimulatedDesk
from desk_firmware_sim.errors import ConfigError, SimError
from desk_firmware_sim.faults import Copy, Disruption, FaultConfig
from desk_firmware_sim.flash import FlashStore
from desk_firmware_sim.records import EventKind, EventRecord, JsonlRecorder, Record, SentRecord
from desk_firmware_sim.runner import Fleet, FleetSnapshot, FleetStats, UnitSnapshot, unit_rng
from desk_firmware_sim.unit import (
    DeskFirmware,
    Message,
    MessageKind,
    Mode,
    Status,
    UnitSpec,
    make_version,
    split_version,
)

__all__ = [
    "BrokerUrl",
    "ConfigError",
    "Copy",
    "DeskFirmware",
    "Disconnect",
    "Disruption",
    "EventKind",
    "EventRecord",
    "FaultConfig",
    "FlashStore",
    "Fleet",
    "FleetSnapshot",
    "FleetStats",
    "JsonlRecorder",
    "Message",
    "MessageKind",
    "Mode",
    "MqttVersion",
    "PersistBootCount",
    "Record",
    "Send",
    "SentRecord",
    "SimConfig",
    "SimError",
    "SimulatedDesk",
    "Status",
    "UnitSnapshot",
    "UnitSpec",
    "make_version",
    "parse_id_list",
    "split_version",
    "unit_rng",
]
