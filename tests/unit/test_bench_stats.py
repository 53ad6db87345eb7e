from __future__ import annotations

import math

from consultease.tools.bench.stats import percentile


def test_percentile_is_nearest_rank_and_sorts_its_input() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.99) == 7
    assert math.isnan(percentile([], 0.5))
