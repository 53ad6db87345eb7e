"""``emit``: emit a Qt signal from Python without corrupting ``True``'s reference count.

PySide6 6.12.0 returns ``True`` from ``SignalInstance.emit()`` without taking
a reference to it. Python drops that reference when the result is discarded,
so every ``signal.emit(...)`` written in Python takes one reference from
``True``. On Python 3.11, where ``True`` is not immortal, the count reaches
zero after a few thousand emits and the interpreter aborts with "Fatal
Python error: bool_dealloc" (during a busy day, or at exit). Signals that
Qt emits from C++ are not affected.

Every Python-side emit in ``kiosk_ui`` goes through ``emit``, which gives the
missing reference back, but only when a one-time probe shows this PySide
build has the bug (``EMIT_RETURNS_BORROWED_BOOL``), so a fixed PySide (or a
Python with immortal ``True``) is left alone.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_PROBES = 64


class _Probe(QObject):
    ping = Signal()


def _emit_returns_borrowed_bool() -> bool:
    """Whether ``emit()`` takes a reference from ``True`` on this PySide build."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:
        _give_back(lost)
    # Other threads may touch True meanwhile; half the probes is unambiguous.
    return lost >= _PROBES // 2


def _give_back(count: int = 1) -> None:
    for _ in range(count):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


EMIT_RETURNS_BORROWED_BOOL = _emit_returns_borrowed_bool()


def emit(signal: SignalInstance, *args: Any) -> None:
    """``signal.emit(*args)``, safe from the PySide 6.12.0 reference-count bug."""
    send: Callable[..., object] = signal.emit  # typed "-> None"; 6.12.0 returns True
    result = send(*args)
    if EMIT_RETURNS_BORROWED_BOOL and result is True:
        _give_back()
