"""``CardDelegate``: paints one faculty card per row; no widget per card.

A card reads everything it shows from the model's roles, so the delegate only
lays out and draws. Normal cards, top to bottom:

    | Dr. Subrahmanyan Chandrasekhar        |   name: shortened, never losing the surname
    | Room P-103 · Physics                  |   the department is elided, never the room
    | [ Available ]  since 11:02            |   the chip and the time read as one
    | [      Request consultation      ]    |   only with an action provider

Compact cards put the chip beside the name and the rest on one line below.
A stripe on the left repeats the status colour; the chip always carries the
status in words as well, so colour is never the only signal.

``layout_card`` computes every piece of text with the rectangle it goes in and
the text it stands for, and ``paint`` only draws that, so a test can check that
nothing is cut without an ellipsis. A card may carry one action button
(``set_action_provider``): pressing it emits ``actionTriggered(id, key)``; a
disabled action shows its reason instead of its label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from consultease.domain import FacultyView
from kiosk_ui import theme
from kiosk_ui.model import FacultyRole
from kiosk_ui.names import shortened_forms
from kiosk_ui.qtcompat import emit

AnyIndex = QModelIndex | QPersistentModelIndex

ELLIPSIS = "…"
LAYOUT_CACHE = 4096
"""Card layouts kept (a few screens' worth at every size)."""
NAME_STEPS = (1.0, 0.92, 0.85)
"""Font sizes a name may shrink to (of the full size) before a shorter form is used."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CardAction:
    """A button on a card, e.g. "Request consultation" on an available lecturer."""

    key: str
    """What ``actionTriggered`` reports."""
    label: str
    enabled: bool = True
    reason: str = ""
    """Shown in place of the label when the action is disabled ("Away right now")."""


ActionProvider = Callable[[FacultyView], CardAction | None]


@dataclass(frozen=True, kw_only=True, slots=True)
class TextRun:
    """One piece of text on a card: what is drawn, where, and what it stands for."""

    part: str
    """``name``, ``detail``, ``chip``, ``since`` or ``action``."""
    text: str
    full: str
    rect: QRect
    font: QFont
    colour: str
    align: Qt.AlignmentFlag


@dataclass(frozen=True, kw_only=True, slots=True)
class CardLayout:
    card: QRect
    stripe: QRect
    chip: QRect
    action: QRect | None
    runs: tuple[TextRun, ...]


def _font(pixels: float, *, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    return font


@lru_cache(maxsize=64)
def _metrics(pixels: int, bold: bool) -> QFontMetrics:
    return QFontMetrics(_font(pixels, bold=bold))


def _metrics_of(font: QFont) -> QFontMetrics:
    return _metrics(font.pixelSize(), font.bold())


def _width(font: QFont, text: str) -> int:
    return _metrics_of(font).horizontalAdvance(text)


@lru_cache(maxsize=16384)
def _fit_name(name: str, pixels: int, bold: bool, width: int) -> tuple[str, int]:
    sizes = [max(1, round(pixels * step)) for step in NAME_STEPS]
    for form in shortened_forms(name):
        for size in sizes:
            if _metrics(size, bold).horizontalAdvance(form) <= width:
                return form, size
    surname = shortened_forms(name)[-1]
    elided = _metrics(sizes[-1], bold).elidedText(surname, Qt.TextElideMode.ElideRight, width)
    return elided, sizes[-1]


def fit_name(name: str, base: QFont, width: int) -> tuple[str, QFont]:
    """The longest form of ``name`` that fits ``width``: the whole name (shrunk a
    little if needed), then shorter forms that keep the surname, then the surname
    elided at the end. Cached: a card is painted many times, its name fitted once."""
    text, pixels = _fit_name(name, base.pixelSize(), base.bold(), width)
    return text, _font(pixels, bold=base.bold())


def _beside_chip(since: str, label: str) -> str:
    """``available since 11:02`` beside an "Available" chip reads ``since 11:02``."""
    word = label.lower() + " "
    return since[len(word) :] if since.startswith(word + "since ") else since


class CardDelegate(QStyledItemDelegate):
    """Lays out and draws faculty cards with the board's ``CardMetrics``."""

    actionTriggered = Signal("qlonglong", str)  # type: ignore[arg-type]  # a C++ type name
    """A card's action button was pressed: (faculty id, ``CardAction.key``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._metrics = theme.card_metrics()
        self._cell = QSize(self._metrics.min_width, self._metrics.height)
        self._actions: ActionProvider | None = None
        self._show_department = True
        self._layouts: dict[tuple[object, ...], CardLayout] = {}
        self._set_fonts()

    # -- configuration --------------------------------------------------------------

    @property
    def metrics(self) -> theme.CardMetrics:
        return self._metrics

    @property
    def scale(self) -> float:
        return self._metrics.scale

    def set_metrics(self, metrics: theme.CardMetrics) -> None:
        if metrics != self._metrics:
            self._metrics = metrics
            self._set_fonts()

    def set_show_department(self, show: bool) -> None:
        """Whether cards name the department (not needed under a department heading)."""
        self._show_department = show
        self._layouts = {}

    def set_cell(self, cell: QSize) -> None:
        """The size of one grid cell (the grid sets it from its width)."""
        self._cell = QSize(cell)

    def set_action_provider(self, provider: ActionProvider | None) -> None:
        """Give each card the button ``provider`` returns for it (``None``: no button)."""
        self._actions = provider
        self._layouts = {}

    @property
    def has_actions(self) -> bool:
        return self._actions is not None

    def card_height(self) -> int:
        """The height of a cell: taller when cards carry an action button."""
        extra = round(theme.ACTION_ROW * self._metrics.scale) if self._actions else 0
        return self._metrics.height + extra

    def action_for(self, index: AnyIndex) -> CardAction | None:
        if self._actions is None:
            return None
        view = index.data(FacultyRole.VIEW)
        return self._actions(view) if isinstance(view, FacultyView) else None

    def _set_fonts(self) -> None:
        self._layouts = {}
        m = self._metrics
        self._name_font = _font(m.name_px, bold=True)
        self._detail_font = _font(m.detail_px)
        self._chip_font = _font(m.chip_px, bold=True)
        self._since_font = _font(m.since_px)
        self._action_font = _font(m.px(17), bold=True)

    # -- layout ------------------------------------------------------------------------

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return QSize(self._cell)

    def layout_card(self, cell: QRect, index: AnyIndex) -> CardLayout:  # noqa: PLR0915
        """Where everything on the card at ``cell`` goes, and what text it shows."""
        m = self._metrics
        card = QRect(cell).adjusted(m.margin, m.margin, -m.margin, -m.margin)
        stripe = QRect(card.left(), card.top(), m.px(8), card.height())
        shown = str(index.data(FacultyRole.STATUS))
        style = theme.status_style(shown)
        left = card.left() + m.pad + m.px(4)
        right = card.right() - m.pad
        width = max(0, right - left + 1)
        name = str(index.data(FacultyRole.NAME))
        department = str(index.data(FacultyRole.DEPARTMENT))
        room = str(index.data(FacultyRole.ROOM) or "")
        since = _beside_chip(str(index.data(FacultyRole.SINCE_TEXT) or ""), style.label)
        runs: list[TextRun] = []
        chip_label = style.label
        chip_width = _width(self._chip_font, chip_label) + m.px(26)
        action = self.action_for(index)
        action_rect: QRect | None = None
        if action is not None:
            action_rect = QRect(
                left, card.bottom() - m.px(10) - m.px(theme.TOUCH) + 1, width, m.px(theme.TOUCH)
            )
            body_bottom = action_rect.top() - m.px(6)
        else:
            body_bottom = card.bottom() - m.px(10)

        if m.compact:
            top = card.top() + m.px(8)
            chip = QRect(right - chip_width + 1, top, chip_width, m.chip_height)
            name_width = max(0, chip.left() - m.px(10) - left)
            text, font = fit_name(name, self._name_font, name_width)
            name_rect = QRect(left, top, name_width, m.chip_height)
            runs.append(self._run("name", text, name, name_rect, font, colour=theme.INK))
            line = QRect(
                left, chip.bottom() + m.px(4), width, _metrics_of(self._detail_font).height()
            )
            # Two pixels of slack: elidedText rounds wider than horizontalAdvance.
            since_width = min(_width(self._since_font, since) + 2, width // 2) if since else 0
            detail_rect = QRect(left, line.top(), width - since_width - m.px(10), line.height())
            runs.append(self._detail(department, room, detail_rect))
            if since_width:
                since_rect = QRect(right - since_width + 1, line.top(), since_width, line.height())
                runs.append(self._since(since, since_rect))
        else:
            top = card.top() + m.px(10)
            name_height = _metrics_of(self._name_font).height()
            text, font = fit_name(name, self._name_font, width)
            runs.append(
                self._run(
                    "name", text, name, QRect(left, top, width, name_height), font, colour=theme.INK
                )
            )
            detail_height = _metrics_of(self._detail_font).height()
            detail_rect = QRect(left, top + name_height + m.px(2), width, detail_height)
            runs.append(self._detail(department, room, detail_rect))
            chip = QRect(left, body_bottom - m.chip_height + 1, chip_width, m.chip_height)
            since_rect = QRect(chip.right() + m.px(10), chip.top(), 0, chip.height())
            since_rect.setRight(right)
            runs.append(self._since(since, since_rect))
        runs.append(
            TextRun(
                part="chip",
                text=chip_label,
                full=chip_label,
                rect=QRect(chip),
                font=self._chip_font,
                colour=style.text,
                align=Qt.AlignmentFlag.AlignCenter,
            )
        )
        if action is not None and action_rect is not None:
            label = action.label if action.enabled or not action.reason else action.reason
            inner = action_rect.adjusted(m.px(10), 0, -m.px(10), 0)
            runs.append(
                self._run(
                    "action",
                    self._elide(label, self._action_font, inner.width()),
                    label,
                    inner,
                    self._action_font,
                    colour=theme.ACCENT_TEXT if action.enabled else theme.DISABLED_TEXT,
                    align=Qt.AlignmentFlag.AlignCenter,
                )
            )
        return CardLayout(card=card, stripe=stripe, chip=chip, action=action_rect, runs=tuple(runs))

    def _detail(self, department: str, room: str, rect: QRect) -> TextRun:
        """``Room P-103 · Physics``: the room comes first, since it is where a student
        goes next; when the line is short the department gives way, never the room."""
        room_part = f"Room {room}" if room else "No room set"
        font = self._detail_font
        if not self._show_department:
            text = self._elide(room_part, font, rect.width())
            return self._run("detail", text, room_part, rect, font, colour=theme.MUTED)
        full = f"{room_part} · {department}"
        if _width(font, full) <= rect.width():
            text = full
        else:
            rest = rect.width() - _width(font, room_part + " · ")
            if rest >= _width(font, department[:3] + "…"):
                text = f"{room_part} · " + self._elide(department, font, rest)
            else:
                text = self._elide(room_part, font, rect.width())
        return self._run("detail", text, full, rect, font, colour=theme.MUTED)

    def _since(self, since: str, rect: QRect) -> TextRun:
        text = self._elide(since, self._since_font, rect.width())
        return self._run(
            "since",
            text,
            since,
            rect,
            self._since_font,
            colour=theme.MUTED,
            align=Qt.AlignmentFlag.AlignRight
            if self._metrics.compact
            else Qt.AlignmentFlag.AlignLeft,
        )

    @staticmethod
    def _elide(text: str, font: QFont, width: int) -> str:
        return _metrics_of(font).elidedText(text, Qt.TextElideMode.ElideRight, max(0, width))

    @staticmethod
    def _run(
        part: str,
        text: str,
        full: str,
        rect: QRect,
        font: QFont,
        *,
        colour: str,
        align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
    ) -> TextRun:
        return TextRun(
            part=part, text=text, full=full, rect=QRect(rect), font=font, colour=colour, align=align
        )

    # -- painting --------------------------------------------------------------------

    def _layout_at_origin(self, size: QSize, index: AnyIndex) -> CardLayout:
        """``layout_card`` at (0, 0), cached per row version, "since" text, size and action:
        a card is painted far more often than it changes."""
        action = self.action_for(index)
        key = (
            index.data(FacultyRole.ID),
            index.data(FacultyRole.VERSION),
            index.data(FacultyRole.SINCE_TEXT),
            size.width(),
            size.height(),
            action,
        )
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) > LAYOUT_CACHE:
                self._layouts.clear()
            layout = self.layout_card(QRect(0, 0, size.width(), size.height()), index)
            self._layouts[key] = layout
        return layout

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        layout = self._layout_at_origin(option.rect.size(), index)
        shown = str(index.data(FacultyRole.STATUS))
        style = theme.status_style(shown)
        painter.save()
        painter.translate(option.rect.topLeft())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        try:
            self._paint_card(painter, layout, style, offline=shown == "offline")
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(style.chip))
            radius = layout.chip.height() / 2
            painter.drawRoundedRect(QRectF(layout.chip), radius, radius)
            if layout.action is not None:
                self._paint_action(painter, layout.action, self.action_for(index))
            for run in layout.runs:
                painter.setFont(run.font)
                painter.setPen(QColor(run.colour))
                painter.drawText(run.rect, int(run.align | Qt.AlignmentFlag.AlignVCenter), run.text)
        finally:
            painter.restore()

    def _paint_card(
        self, painter: QPainter, layout: CardLayout, style: theme.StatusStyle, *, offline: bool
    ) -> None:
        """The rounded card, with a stripe of the status colour on its left edge."""
        radius = 10 * self._metrics.scale
        card = QPainterPath()
        card.addRoundedRect(QRectF(layout.card), radius, radius)
        painter.setPen(QPen(QColor(theme.CARD_BORDER), 1))
        painter.setBrush(QColor(theme.CARD_OFFLINE if offline else theme.CARD))
        painter.drawPath(card)
        painter.save()
        painter.setClipPath(card)
        painter.fillRect(layout.stripe, QColor(style.chip))
        painter.restore()

    def _paint_action(self, painter: QPainter, rect: QRect, action: CardAction | None) -> None:
        enabled = action is not None and action.enabled
        radius = 8 * self._metrics.scale
        if enabled:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(theme.ACCENT))
        else:
            pen = QPen(QColor(theme.DISABLED_TEXT), 1, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QColor(theme.DISABLED_BG))
        painter.drawRoundedRect(QRectF(rect), radius, radius)

    # -- the action button -------------------------------------------------------------

    def editorEvent(
        self,
        event: QEvent,
        model: Any,
        option: QStyleOptionViewItem,
        index: AnyIndex,
    ) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and self._actions is not None
        ):
            action = self.action_for(index)
            layout = self.layout_card(option.rect, index)
            if (
                action is not None
                and layout.action is not None
                and layout.action.contains(event.position().toPoint())
            ):
                if action.enabled:
                    emit(self.actionTriggered, int(index.data(FacultyRole.ID)), action.key)
                return True
        return super().editorEvent(event, model, option, index)
