"""Small touch-friendly widgets shared by the board and the admin panel."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QComboBox,
    QListView,
    QScroller,
    QScrollerProperties,
    QWidget,
)

from kiosk_ui import theme


class TouchComboBox(QComboBox):
    """A combo box whose popup rows are finger-sized and whose arrow is drawn, not an image.

    A style sheet that styles a combo box hides the platform's arrow, and an
    image would need a resource file; two painted strokes are simpler.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setView(QListView())  # a plain list view obeys the ::item style rules
        self.setMinimumHeight(theme.TOUCH)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(theme.MUTED), 2.5)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        size = max(5.0, self.height() / 9)
        centre = QPointF(self.width() - 24, self.height() / 2 + size / 3)
        painter.drawPolyline(
            [
                QPointF(centre.x() - size, centre.y() - size * 0.6),
                centre,
                QPointF(centre.x() + size, centre.y() - size * 0.6),
            ]
        )
        painter.end()


def flick_scrolling(area: QAbstractScrollArea) -> None:
    """Drag-to-scroll with momentum (``QScroller``) on a scroll area's viewport.

    The press reaches the widget under the finger at once (no press delay), so a
    tap on a button inside the area is an ordinary click; a drag that turns into
    a flick cancels it.
    """
    viewport = area.viewport()
    QScroller.grabGesture(viewport, QScroller.ScrollerGestureType.LeftMouseButtonGesture)
    scroller = QScroller.scroller(viewport)
    properties = scroller.scrollerProperties()
    properties.setScrollMetric(QScrollerProperties.ScrollMetric.MousePressEventDelay, 0)
    properties.setScrollMetric(QScrollerProperties.ScrollMetric.OvershootDragResistanceFactor, 0.3)
    scroller.setScrollerProperties(properties)
