"""``DepartmentStrip``: one button per department with how many are available.

    [ All · 14 of 241 ] [ Biology · 1 of 20 ] [ Chemistry · 2 of 20 ] …  (flick sideways)

It is the board's department filter and, at a glance, a summary per department.
The buttons are exclusive; "All" shows everyone. Each button is as wide as its
text would be with every member available, so a changing count never makes a
button (or the ones after it) move under a finger. Long department names are
elided and kept whole in the tooltip and the accessible name.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QWidget,
)

from kiosk_ui import theme
from kiosk_ui.filtering import Summary
from kiosk_ui.qtcompat import emit
from kiosk_ui.widgets import flick_scrolling

MAX_NAME_WIDTH = 220
"""Department names wider than this (pixels, at the strip's font) are elided."""


def chip_text(label: str, summary: Summary) -> str:
    return f"{label} · {summary.available} of {summary.total}"


class DepartmentStrip(QScrollArea):
    """Exclusive department buttons; ``chosen(department or None)`` when one is tapped."""

    chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("strip")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(theme.TOUCH + 14)  # a button (48 + its border) and the margins
        self._inner = QWidget()
        self._inner.setObjectName("stripInner")
        self._row = QHBoxLayout(self._inner)
        self._row.setContentsMargins(12, 6, 12, 4)
        self._row.setSizeConstraint(QHBoxLayout.SizeConstraint.SetMinimumSize)
        self._row.setSpacing(8)
        self._row.addStretch(1)
        self.setWidget(self._inner)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._buttons: dict[str | None, QPushButton] = {}
        self._departments: list[str] = []
        self._selected: str | None = None
        self.all_button = self._add_button(None)
        self.all_button.setChecked(True)
        flick_scrolling(self)

    @property
    def selected(self) -> str | None:
        return self._selected

    def buttons(self) -> dict[str | None, QPushButton]:
        return dict(self._buttons)

    def button(self, department: str | None) -> QPushButton:
        return self._buttons[department]

    def select(self, department: str | None) -> None:
        """Check ``department``'s button (``None``: All) without emitting ``chosen``."""
        if department not in self._buttons:
            department = None
        self._selected = department
        self._buttons[department].setChecked(True)

    def update_counts(self, everyone: Summary, departments: Sequence[tuple[str, Summary]]) -> None:
        """Set the buttons to these departments and counts (rebuilt only when the set of
        departments changed)."""
        names = [name for name, _ in departments]
        if names != self._departments:
            for name in self._departments:
                button = self._buttons.pop(name)
                self._group.removeButton(button)
                button.deleteLater()
            self._departments = names
            for name in names:
                self._add_button(name)
            if self._selected not in self._buttons:
                self._selected = None
            self._buttons[self._selected].setChecked(True)
        self._set_text(self.all_button, "All", everyone)
        for name, summary in departments:
            self._set_text(self._buttons[name], name, summary)

    def _add_button(self, department: str | None) -> QPushButton:
        button = QPushButton()
        button.setObjectName("stripAll" if department is None else "stripDepartment")
        button.setCheckable(True)
        button.setMinimumHeight(theme.TOUCH)
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        button.clicked.connect(lambda _=False, d=department: self._clicked(d))
        self._group.addButton(button)
        self._row.insertWidget(self._row.count() - 1, button)
        self._buttons[department] = button
        return button

    def _set_text(self, button: QPushButton, label: str, summary: Summary) -> None:
        button.ensurePolished()  # the style sheet's font, not the default one
        metrics = button.fontMetrics()
        shown = metrics.elidedText(label, Qt.TextElideMode.ElideRight, MAX_NAME_WIDTH)
        text = chip_text(shown, summary)
        widest = chip_text(shown, Summary(available=summary.total, total=summary.total))
        button.setText(text)
        free = summary.available > 0
        if button.property("free") != free:
            button.setProperty("free", free)  # drawn with a green edge: someone is available
            button.style().unpolish(button)
            button.style().polish(button)
        button.setToolTip(chip_text(label, summary))
        button.setAccessibleName(chip_text(label, summary) + " available")
        # Padding (style sheet) and a little slack on top of the widest count.
        width = max(theme.TOUCH, metrics.horizontalAdvance(widest) + 36)
        if button.width() != width:
            button.setFixedWidth(width)

    def _clicked(self, department: str | None) -> None:
        self._selected = department
        self._buttons[department].setChecked(True)
        emit(self.chosen, department)
