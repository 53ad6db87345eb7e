"""The kiosk load test runs end to end, with small numbers (the real run: kiosk_ui.bench)."""

from __future__ import annotations

import pytest

from kiosk_ui.bench import measure_kiosk, percentile
from tests.ui.support import listener_threads


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


@pytest.mark.slow
def test_measure_kiosk_reports_every_change_within_a_second(database_url: str) -> None:
    figures = measure_kiosk(database_url, faculty=120, rate=60, duration=2)
    assert figures["commits"] == 120
    assert figures["changes_shown_in_model"] == figures["commits"]
    assert figures["commit_to_model_p99_ms"] < 1000
    assert figures["gui_stall_max_ms"] < 1000
    assert figures["gui_ticks"] > 50
    assert listener_threads() == []
