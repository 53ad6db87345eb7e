"""``python -m desk_firmware_sim``."""

from __future__ import annotations

import sys

from desk_firmware_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
