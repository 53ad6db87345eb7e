"""The screenshot tool renders the real kiosk at each size from a seeded database."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtGui import QImage

from consultease.db.connection import connect
from consultease.db.readmodel import load_views
from consultease.tools.screenshots import SHOTS, Shot, render, seed_campus


def test_screenshots_show_the_seeded_campus_at_each_size(database_url: str, tmp_path: Path) -> None:
    assert seed_campus(database_url, 241) == 241
    with connect(database_url) as conn:
        views = load_views(conn)
    assert len(views) == 241 and len({v.department for v in views}) == 12
    assert len({v.status_since for v in views}) > 100, "'since' times spread over the morning"
    shots = [s for s in SHOTS if not s.large_type] + [Shot(file="x.png", width=640, height=400)]
    written = render(database_url, tmp_path, shots)
    assert [p.name for p in written] == [s.file for s in shots]
    for shot, path in zip(shots, written, strict=True):
        image = QImage(str(path))
        assert (image.width(), image.height()) == (shot.width, shot.height)
    assert {s.file for s in SHOTS} >= {
        "kiosk-800x480.png",
        "kiosk-1024x600.png",
        "kiosk-1920x1080.png",
    }
    assert [t for t in threading.enumerate() if t.name == "consultease-shots"] == []
