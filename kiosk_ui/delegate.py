"""``CardDelegate``: paints one faculty card per row; no widget per card.

A card reads everything it shows from the model's roles, so the delegate
only draws. Layout, top to bottom:

    | name (bold)                       |
    | department                        |
    | Room B-204                        |
    | [ Available ]    updated 2 min ago |

A stripe on the left repeats the status colour; the chip always carries the
status in words as well, so colour is never the only signal.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from kiosk_ui import theme
from kiosk_ui.model import FacultyRole

AnyIndex = QModelIndex | QPersistentModelIndex


def _font(pixels: float, *, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    return font


class CardDelegate(QStyledItemDelegate):
    """Draws a faculty card at ``card_size``, which the board sets from the window size."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._scale = 1.0
        self._card_size = QSize(theme.CARD_MIN_WIDTH, theme.CARD_HEIGHT)
        self._set_fonts()

    @property
    def scale(self) -> float:
        return self._scale

    def set_geometry(self, card_size: QSize, scale: float) -> None:
        """The size of one grid cell and the text scale (1.0 at 1024x600)."""
        self._card_size = QSize(card_size)
        if scale != self._scale:
            self._scale = scale
            self._set_fonts()

    def _set_fonts(self) -> None:
        s = self._scale
        self._name_font = _font(22 * s, bold=True)
        self._dept_font = _font(16 * s)
        self._room_font = _font(17 * s)
        self._chip_font = _font(17 * s, bold=True)
        self._updated_font = _font(14 * s)

    def _name_font_for(self, name: str, width: int) -> QFont:
        """The name font, down to 80 % of its size when that makes the whole name fit."""
        font = self._name_font
        if QFontMetrics(font).horizontalAdvance(name) <= width:
            return font
        full = font.pixelSize()
        for pixels in range(full - 1, round(full * 0.8) - 1, -1):
            smaller = _font(pixels, bold=True)
            if QFontMetrics(smaller).horizontalAdvance(name) <= width:
                return smaller
        return _font(round(full * 0.8), bold=True)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return QSize(self._card_size)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        m = theme.CARD_MARGIN
        rect = QRect(option.rect).adjusted(m, m, -m, -m)
        shown = str(index.data(FacultyRole.STATUS))
        style = theme.status_style(shown)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        try:
            self._paint_card(painter, rect, style, offline=shown == "offline")
            s = self._scale
            pad = round(16 * s)
            left = rect.left() + pad + round(4 * s)
            width = rect.right() - pad - left
            y = rect.top() + round(12 * s)
            name = str(index.data(FacultyRole.NAME))
            font = self._name_font_for(name, width)
            y = _line(painter, font, theme.INK, name, QRect(left, y, width, 0))
            department = str(index.data(FacultyRole.DEPARTMENT))
            y = _line(painter, self._dept_font, theme.MUTED, department, QRect(left, y, width, 0))
            room = str(index.data(FacultyRole.ROOM) or "")
            room_text = f"Room {room}" if room else "No room set"
            _line(
                painter,
                self._room_font,
                theme.INK,
                room_text,
                QRect(left, y + round(2 * s), width, 0),
            )
            chip = self._paint_chip(
                painter, str(index.data(FacultyRole.STATUS_TEXT)), style, left, rect.bottom()
            )
            updated = QRect(chip.right() + pad // 2, chip.top(), 0, chip.height())
            updated.setRight(rect.right() - pad)
            self._paint_updated(painter, str(index.data(FacultyRole.UPDATED_TEXT)), updated)
        finally:
            painter.restore()

    def _paint_card(
        self, painter: QPainter, rect: QRect, style: theme.StatusStyle, *, offline: bool
    ) -> None:
        """The rounded card, with a stripe of the status colour on its left edge."""
        radius = 10 * self._scale
        card = QPainterPath()
        card.addRoundedRect(QRectF(rect), radius, radius)
        painter.setPen(QPen(QColor(theme.CARD_BORDER), 1))
        painter.setBrush(QColor(theme.CARD_OFFLINE if offline else theme.CARD))
        painter.drawPath(card)
        painter.save()
        painter.setClipPath(card)
        stripe = QRect(rect.left(), rect.top(), round(8 * self._scale), rect.height())
        painter.fillRect(stripe, QColor(style.chip))
        painter.restore()

    def _paint_chip(
        self, painter: QPainter, label: str, style: theme.StatusStyle, left: int, bottom: int
    ) -> QRect:
        """The status in words on its colour, bottom left; returns where it went."""
        s = self._scale
        height = round(34 * s)
        width = QFontMetrics(self._chip_font).horizontalAdvance(label) + round(28 * s)
        chip = QRect(left, bottom - round(12 * s) - height, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(style.chip))
        painter.drawRoundedRect(QRectF(chip), height / 2, height / 2)
        painter.setFont(self._chip_font)
        painter.setPen(QColor(style.text))
        painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, label)
        return chip

    def _paint_updated(self, painter: QPainter, text: str, rect: QRect) -> None:
        """``updated 2 min ago``, right-aligned beside the chip."""
        painter.setFont(self._updated_font)
        painter.setPen(QColor(theme.FAINT))
        elided = QFontMetrics(self._updated_font).elidedText(
            text, Qt.TextElideMode.ElideRight, max(0, rect.width())
        )
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), elided
        )


def _line(painter: QPainter, font: QFont, colour: str, text: str, where: QRect) -> int:
    """Draw one elided line at ``where`` (its height is the font's); return the y below it."""
    metrics = QFontMetrics(font)
    painter.setFont(font)
    painter.setPen(QColor(colour))
    line = QRect(where.left(), where.top(), where.width(), metrics.height())
    elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, line.width())
    painter.drawText(line, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), elided)
    return line.bottom() + 1
