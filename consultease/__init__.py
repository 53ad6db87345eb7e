"""ConsultEase: live faculty availability from desk units to a kiosk.

The core package. It holds no Qt code: the kiosk lives in ``kiosk_ui`` and
imports from here, never the other way round.
"""

from __future__ import annotations

__version__ = "0.1.0"
