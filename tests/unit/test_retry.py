from __future__ import annotations

import pytest

from consultease.retry import RetryPolicy


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=None, base_delay=0.1, max_delay=10)
    low = [policy.delay(n, rnd=lambda: 0.0) for n in range(1, 12)]
    high = [policy.delay(n, rnd=lambda: 1.0) for n in range(1, 12)]
    assert high[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert low[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert max(high) == 10
    assert min(low[-3:]) == 5
    assert policy.delay(10_000) <= 10


def test_a_limited_policy_gives_up_after_its_attempts_and_an_unlimited_one_never() -> None:
    limited = RetryPolicy(max_attempts=3)
    assert [limited.gives_up_after(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not RetryPolicy(max_attempts=None).gives_up_after(10**9)


@pytest.mark.parametrize("bad", [{"base_delay": 0}, {"max_delay": -1}, {"max_attempts": 0}])
def test_a_policy_that_could_never_wait_or_try_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**bad)  # type: ignore[arg-type]
