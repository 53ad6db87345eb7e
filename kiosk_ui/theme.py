"""Colours, sizes and wording shared by every kiosk view.

Status is always shown as text *and* colour (never colour alone), so every
shown status has a label, a chip colour and a text colour. Every pair of text
and background colour the kiosk draws is listed in ``TEXT_PAIRS``, and a test
holds each to a WCAG contrast of at least 4.5:1 (``contrast_ratio``); the style
sheets use these names only.

Sizes are pixels at ``scale`` 1. A bigger screen gets more columns of cards,
not bigger cards; ``LARGE_TYPE`` (a wall screen read from a few metres) scales
type and cards up instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consultease.domain import OFFLINE, Status

TOUCH = 48
"""Smallest width and height of anything a finger may press, in pixels."""

MIN_CONTRAST = 4.5
"""WCAG 2.x AA for body text: the least contrast of any text the kiosk draws."""

LARGE_TYPE = 1.5
"""The scale of ``--large-type``: names about 33 px tall on the card."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusStyle:
    label: str
    chip: str
    """Background of the status chip and of the card's left stripe."""
    text: str
    """Text colour on the chip."""


STATUS_STYLES: dict[str, StatusStyle] = {
    Status.AVAILABLE.value: StatusStyle(label="Available", chip="#137333", text="#ffffff"),
    Status.BUSY.value: StatusStyle(label="Busy", chip="#f4b400", text="#2b1d00"),
    Status.AWAY.value: StatusStyle(label="Away", chip="#9aa0a6", text="#1f1f1f"),
    OFFLINE: StatusStyle(label="Offline", chip="#2f3a45", text="#ffffff"),
}
"""Keyed by ``FacultyView.shown_status``."""

UNKNOWN_STATUS = StatusStyle(label="Unknown", chip="#5f6368", text="#ffffff")

STATUS_RANK: dict[str, int] = {
    Status.AVAILABLE.value: 0,
    Status.BUSY.value: 1,
    Status.AWAY.value: 2,
    OFFLINE: 3,
}
"""Board order: who can be seen now first, then busy, away, and offline last."""


def status_style(shown_status: str) -> StatusStyle:
    return STATUS_STYLES.get(shown_status, UNKNOWN_STATUS)


REQUEST_STYLES: dict[str, StatusStyle] = {
    "pending": StatusStyle(label="Waiting", chip="#f4b400", text="#2b1d00"),
    "accepted": StatusStyle(label="Accepted", chip="#137333", text="#ffffff"),
    "declined": StatusStyle(label="Declined", chip="#b3261e", text="#ffffff"),
    "expired": StatusStyle(label="No answer", chip="#5f6368", text="#ffffff"),
    "cancelled": StatusStyle(label="Cancelled", chip="#5f6368", text="#ffffff"),
    "completed": StatusStyle(label="Completed", chip="#2f3a45", text="#ffffff"),
}
"""A consultation request's status as a word on a chip (SPEC 9.1), never colour alone."""


def request_style(status: str) -> StatusStyle:
    return REQUEST_STYLES.get(status, UNKNOWN_STATUS)


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
ACCENT = "#1a5fb4"
ACCENT_TEXT = "#ffffff"
SELECTED = "#dbe7f6"
"""Background of the selected row in the admin list."""
BANNER = "#b3261e"
BANNER_TEXT = "#ffffff"
ERROR = "#b3261e"
CONFLICT_BG = "#fff4e5"
CONFLICT_BORDER = "#f4b400"
DISABLED_BG = "#f3f5f7"
DISABLED_TEXT = "#5a6571"
KEYBOARD_BG = "#c9d2dc"
KEY = "#ffffff"
KEY_SPECIAL = "#dde3ea"
SCROLL_HANDLE = "#8d9aab"
WARNING_BG = "#12263a"
WARNING_TEXT = "#ffe08a"

TEXT_PAIRS: tuple[tuple[str, str, str], ...] = (
    *((f"{name} chip", s.text, s.chip) for name, s in STATUS_STYLES.items()),
    *((f"{name} request chip", s.text, s.chip) for name, s in REQUEST_STYLES.items()),
    ("unknown chip", UNKNOWN_STATUS.text, UNKNOWN_STATUS.chip),
    ("card name", INK, CARD),
    ("card detail", MUTED, CARD),
    ("offline card name", INK, CARD_OFFLINE),
    ("offline card detail", MUTED, CARD_OFFLINE),
    ("header title", HEADER_TEXT, HEADER),
    ("header clock", HEADER_MUTED, HEADER),
    ("banner", BANNER_TEXT, BANNER),
    ("department heading", INK, BACKGROUND),
    ("heading count", MUTED, BACKGROUND),
    ("empty message", MUTED, BACKGROUND),
    ("control", INK, CARD),
    ("placeholder", MUTED, CARD),
    ("admin button", ACCENT, CARD),
    (
        "checked toggle",
        STATUS_STYLES[Status.AVAILABLE.value].text,
        STATUS_STYLES[Status.AVAILABLE.value].chip,
    ),
    ("selected strip chip", ACCENT_TEXT, ACCENT),
    ("disabled control", DISABLED_TEXT, DISABLED_BG),
    ("primary button", ACCENT_TEXT, ACCENT),
    ("danger button", ERROR, CARD),
    ("error on panel", ERROR, BACKGROUND),
    ("error on white", ERROR, CARD),
    ("admin list row", INK, CARD),
    ("admin list detail", MUTED, CARD),
    ("admin list selected", INK, SELECTED),
    ("admin list selected detail", MUTED, SELECTED),
    ("panel text", INK, BACKGROUND),
    ("panel caption", MUTED, BACKGROUND),
    ("conflict text", INK, CONFLICT_BG),
    ("key", INK, KEY),
    ("special key", INK, KEY_SPECIAL),
    ("sign-out warning", WARNING_TEXT, WARNING_BG),
)
"""Every text colour the kiosk draws, with the background it is drawn on."""


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``."""
    value = colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio, 1 to 21."""
    lighter, darker = sorted(
        (relative_luminance(foreground), relative_luminance(background)), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


# -- card geometry ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CardMetrics:
    """Sizes of one card (pixels), for a density and a scale."""

    min_width: int
    height: int
    margin: int
    pad: int
    name_px: int
    detail_px: int
    chip_px: int
    chip_height: int
    since_px: int
    heading_height: int
    heading_px: int
    compact: bool
    scale: float

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))


ACTION_ROW = TOUCH + 8
"""Extra card height when cards carry an action button (a touch target and a gap)."""


def card_metrics(*, compact: bool = False, scale: float = 1.0) -> CardMetrics:
    """Normal cards: name / department · room / chip and since. Compact cards: the name
    and the chip on one line, department · room · since below."""

    def px(value: float) -> int:
        return max(1, round(value * scale))

    if compact:
        return CardMetrics(
            min_width=px(250),
            height=px(74),
            margin=px(4),
            pad=px(12),
            name_px=px(19),
            detail_px=px(15),
            chip_px=px(15),
            chip_height=px(28),
            since_px=px(15),
            heading_height=px(40),
            heading_px=px(19),
            compact=True,
            scale=scale,
        )
    return CardMetrics(
        min_width=px(300),
        height=px(116),
        margin=px(5),
        pad=px(14),
        name_px=px(22),
        detail_px=px(16),
        chip_px=px(16),
        chip_height=px(32),
        since_px=px(15),
        heading_height=px(44),
        heading_px=px(21),
        compact=False,
        scale=scale,
    )


def columns_for(width: int, metrics: CardMetrics) -> int:
    return max(1, width // metrics.min_width)


# -- wording -------------------------------------------------------------------------------


def since_text(
    shown_status: str, since: datetime, now: datetime, *, always_available: bool = False
) -> str:
    """``available since 11:02``: what the status means, in the kiosk's local time.

    Today: the time; yesterday: ``since yesterday 16:40``; within a week: the
    weekday; earlier: the date. An always-available lecturer has no desk to date it.
    """
    if always_available:
        return "no desk unit"
    label = status_style(shown_status).label.lower()
    local_since, local_now = since.astimezone(), now.astimezone()
    days = (local_now.date() - local_since.date()).days
    clock = f"{local_since.hour:02d}:{local_since.minute:02d}"
    if days <= 0:
        when = clock
    elif days == 1:
        when = f"yesterday {clock}"
    elif days < 7:
        when = f"{local_since.strftime('%a')} {clock}"
    else:
        when = f"{local_since.day} {local_since.strftime('%b')}"
        if local_since.year != local_now.year:
            when += f" {local_since.year}"
    return f"{label} since {when}"


def sentence(message: str) -> str:
    """``"name must not be empty"`` -> ``"Name must not be empty."``"""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def ceil_div(a: int, b: int) -> int:
    return -(-a // b) if b > 0 else 0
