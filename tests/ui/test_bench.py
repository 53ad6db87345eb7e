"""The kiosk load test runs end to end, with small numbers
(the real run: ``python -m consultease.tools.bench.kiosk``)."""

from __future__ import annotations

import pytest

from consultease.tools.bench.kiosk import measure_kiosk
from tests.ui.support import listener_threads


@pytest.mark.slow
def test_measure_kiosk_reports_every_change_within_a_second(database_url: str) -> None:
    figures = measure_kiosk(database_url, faculty=120, rate=60, duration=2)
    assert figures["commits"] == 120
    assert figures["changes_shown_in_model"] == figures["commits"]
    assert figures["commit_to_model_p99_ms"] < 1000
    assert figures["gui_stall_max_ms"] < 1000
    assert figures["gui_ticks"] > 50
    assert listener_threads() == []
