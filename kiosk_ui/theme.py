"""Colours, sizes and wording shared by every kiosk view.

Status is always shown as text *and* colour (never colour alone), so every
shown status has a label, a chip colour and a text colour picked for contrast.
Sizes are given for the 1024x600 kiosk screen; views multiply them by a scale
factor (see ``scale_for``) on bigger screens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consultease.domain import OFFLINE, Status

TOUCH = 48
"""Smallest width and height of anything a finger may press, in pixels."""

BASE_SIZE = (1024, 600)
"""The kiosk screen every size below is designed for."""

MAX_SCALE = 2.0


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusStyle:
    label: str
    chip: str
    """Background of the status chip and of the card's left stripe."""
    text: str
    """Text colour on the chip."""


STATUS_STYLES: dict[str, StatusStyle] = {
    Status.AVAILABLE.value: StatusStyle(label="Available", chip="#1e8e3e", text="#ffffff"),
    Status.BUSY.value: StatusStyle(label="Busy", chip="#f4b400", text="#2b1d00"),
    Status.AWAY.value: StatusStyle(label="Away", chip="#9aa0a6", text="#1f1f1f"),
    OFFLINE: StatusStyle(label="Offline", chip="#2f3a45", text="#ffffff"),
}
"""Keyed by ``FacultyView.shown_status``."""

UNKNOWN_STATUS = StatusStyle(label="Unknown", chip="#5f6368", text="#ffffff")


def status_style(shown_status: str) -> StatusStyle:
    return STATUS_STYLES.get(shown_status, UNKNOWN_STATUS)


# Board colours.
BACKGROUND = "#e8edf3"
HEADER = "#12263a"
HEADER_TEXT = "#ffffff"
HEADER_MUTED = "#b8c7d9"
CARD = "#ffffff"
CARD_OFFLINE = "#f1f3f5"
CARD_BORDER = "#cfd8e3"
INK = "#13202e"
MUTED = "#4f5d6d"
FAINT = "#6b7785"
ACCENT = "#1a5fb4"
BANNER = "#b3261e"
BANNER_TEXT = "#ffffff"
ERROR = "#b3261e"
CONFLICT_BG = "#fff4e5"
CONFLICT_BORDER = "#f4b400"

# Card geometry at scale 1 (pixels).
CARD_MIN_WIDTH = 300
CARD_HEIGHT = 148
CARD_MARGIN = 6
SCROLLBAR = TOUCH


def scale_for(width: int, height: int) -> float:
    """How much bigger than the 1024x600 design to draw, for a window of this size."""
    base_w, base_h = BASE_SIZE
    return max(1.0, min(MAX_SCALE, width / base_w, height / base_h))


def updated_text(updated_at: datetime, now: datetime) -> str:
    """``updated just now``, ``updated 2 min ago``, ``updated 3 h ago``, ``updated 4 days ago``."""
    seconds = max(0.0, (now - updated_at).total_seconds())
    minutes = int(seconds // 60)
    if minutes < 1:
        return "updated just now"
    if minutes < 60:
        return f"updated {minutes} min ago"
    hours = minutes // 60
    if hours < 24:
        return f"updated {hours} h ago"
    days = hours // 24
    return f"updated {days} day ago" if days == 1 else f"updated {days} days ago"


def sentence(message: str) -> str:
    """``"name must not be empty"`` -> ``"Name must not be empty."``"""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."
