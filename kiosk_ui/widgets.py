"""Touch helpers shared by the board and the admin panel.

The department filter used to be a touch combo box here; the board's department
strip (``strip``) replaced it."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QScroller,
    QScrollerProperties,
)


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
