"""The unit's flash: a small JSON file per unit holding its boot counter.

One write per boot, done atomically (temporary file + rename), so a crash never leaves a
half-written counter and the counter never goes back: versions stay strictly increasing
across processes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from desk_firmware_sim.errors import SimError

APP_NAME = "consultease-sim"


def default_state_dir() -> Path:
    """The per-user state directory (``~/.local/state/consultease-sim`` on Linux)."""
    try:
        import platformdirs  # noqa: PLC0415 - only needed when no directory is given
    except ImportError:
        raise SimError(
            "no --state-dir given, and the default needs platformdirs: "
            "pip install 'consultease[sim]', or pass --state-dir DIR"
        ) from None
    return Path(platformdirs.user_state_dir(APP_NAME))


class FlashStore:
    """Boot counters of simulated units, one file per faculty id, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, faculty_id: int) -> Path:
        return self.directory / f"desk-{faculty_id}.json"

    def load(self, faculty_id: int) -> int:
        """The stored boot counter, 0 for a unit that never booted."""
        path = self.path_for(faculty_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise SimError(f"cannot read desk state file {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            count = data["boot_count"]
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise SimError(
                f"desk state file {path} is corrupt; delete it and reset the desk "
                f"(`consultease faculty reset-desk {faculty_id}`) so versions start over"
            ) from exc
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise SimError(f"desk state file {path} holds a bad boot_count: {count!r}")
        return count

    def store(self, faculty_id: int, boot_count: int) -> None:
        path = self.path_for(faculty_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({"faculty_id": faculty_id, "boot_count": boot_count}, fh)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise SimError(f"cannot write desk state file {path}: {exc.strerror or exc}") from exc

    def boot(self, faculty_id: int) -> int:
        """Power on: read the counter, add one, write it back; returns this boot's count."""
        count = self.load(faculty_id) + 1
        self.store(faculty_id, count)
        return count
