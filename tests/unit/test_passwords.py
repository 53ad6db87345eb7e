"""The admin password policy and the lockout rule: pure, no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from consultease.admin.accounts import (
    LockoutPolicy,
    LoginState,
    SourceState,
    _dummy_hash,
    after_failure,
    clean_username,
    source_after_failure,
)
from consultease.admin.passwords import (
    COMMON_PASSWORDS,
    MIN_LENGTH,
    PasswordRejected,
    check_password,
)
from consultease.errors import ValidationError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = LockoutPolicy()


# -- the password policy --------------------------------------------------------


@pytest.mark.parametrize("password", ["", "short", "elevenchars", "a" * (MIN_LENGTH - 1)])
def test_short_passwords_are_refused_with_the_minimum_in_the_message(password: str) -> None:
    with pytest.raises(PasswordRejected, match=f"at least {MIN_LENGTH} characters") as caught:
        check_password(password)
    assert caught.value.field == "password"


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "qwertyuiop12",
        "QWERTYUIOP12",
        "Password1234",
        "PaSsWoRd1234",
        "1q2w3e4r5t6y",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    with pytest.raises(PasswordRejected, match="common passwords"):
        check_password(password)


@pytest.mark.parametrize(
    "password",
    ["P@ssw0rd2024!", "Summer2024!!", "!!Welcome123", "consultease#2026", "0123456789012"],
)
def test_a_common_word_dressed_up_with_digits_or_symbols_is_refused(password: str) -> None:
    with pytest.raises(PasswordRejected, match="common word"):
        check_password(password)


@pytest.mark.parametrize("password", ["abcabcabcabc", "zzzzzzzzzzzzzzzz", "xy12xy12xy12"])
def test_a_repeated_short_pattern_is_refused(password: str) -> None:
    with pytest.raises(PasswordRejected, match="repeats"):
        check_password(password)


def test_a_password_containing_the_username_is_refused() -> None:
    with pytest.raises(PasswordRejected, match="username"):
        check_password("my-name-is-Registrar-ok", username="registrar")


def test_overlong_passwords_are_refused_before_hashing() -> None:
    with pytest.raises(PasswordRejected, match="too long"):
        check_password("x7-" * 400)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "2024-kiosk-blue-heron",
        "Tr0ub4dor&3-lantern",
        "mañana-siempre-llueve",
        "q" + "w" * 5 + "-river-stone",
    ],
)
def test_good_passwords_are_accepted(password: str) -> None:
    check_password(password, username="registrar")


def test_the_common_list_holds_a_few_hundred_entries_all_long_enough_to_matter() -> None:
    assert 200 <= len(COMMON_PASSWORDS) <= 1000
    assert all(len(p) >= MIN_LENGTH for p in COMMON_PASSWORDS)
    assert all(p == p.lower() for p in COMMON_PASSWORDS)


def test_password_rejections_are_validation_errors_for_the_cli_and_forms() -> None:
    with pytest.raises(ValidationError):
        check_password("short")


# -- usernames --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "Dr.Who", "ops@uni.example", "a_b-c", "x" * 64])
def test_plain_usernames_are_accepted(name: str) -> None:
    assert clean_username(f"  {name} ") == name


@pytest.mark.parametrize(
    "name", ["", "two words", "x" * 65, "admin'; DROP TABLE admin_user;--", "ünï", "a/b"]
)
def test_other_usernames_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        clean_username(name)
    assert caught.value.field == "username"


# -- the lockout rule -------------------------------------------------------------


def fail_times(count: int, *, start: LoginState | None = None, step: timedelta) -> LoginState:
    state = start or LoginState()
    for i in range(count):
        state = after_failure(state, NOW + i * step, POLICY)
    return state


def test_four_failures_do_not_lock() -> None:
    state = fail_times(4, step=timedelta(seconds=10))
    assert state.failed_attempts == 4
    assert state.locked_until is None
    assert state.first_failed_at == NOW


def test_the_fifth_failure_within_the_window_locks_for_one_minute_only() -> None:
    state = fail_times(5, step=timedelta(minutes=3))
    last = NOW + timedelta(minutes=12)
    assert state.locked_until == last + timedelta(minutes=1)
    assert state.locked(last + timedelta(seconds=59))
    assert not state.locked(last + timedelta(minutes=1))


def source_fail_times(count: int, *, step: timedelta) -> list[SourceState]:
    states, state = [], SourceState()
    for i in range(count):
        state = source_after_failure(state, NOW + i * step, POLICY)
        states.append(state)
    return states


def test_a_source_waits_after_three_failures_twice_as_long_each_time_up_to_a_cap() -> None:
    states = source_fail_times(16, step=timedelta(seconds=0))
    waits = [None if s.blocked_until is None else s.blocked_until - NOW for s in states]
    assert waits[:2] == [None, None]
    assert waits[2:7] == [timedelta(seconds=n) for n in (1, 2, 4, 8, 16)]
    assert waits[-1] == POLICY.max_delay == timedelta(minutes=15)
    assert all(s.blocked(NOW) for s in states[2:])


def test_a_source_quiet_for_an_hour_starts_again() -> None:
    state = source_fail_times(10, step=timedelta(seconds=0))[-1]
    later = source_after_failure(state, NOW + timedelta(hours=1), POLICY)
    assert (later.failures, later.blocked_until) == (1, None)


def test_failures_spread_beyond_the_window_never_lock() -> None:
    state = fail_times(20, step=timedelta(minutes=4))
    assert state.locked_until is None
    assert state.failed_attempts < POLICY.max_failures


def test_a_failure_after_the_lock_expired_starts_a_new_count() -> None:
    locked = fail_times(5, step=timedelta(seconds=1))
    assert locked.locked_until is not None
    later = after_failure(locked, locked.locked_until, POLICY)
    assert later.failed_attempts == 1
    assert later.first_failed_at == locked.locked_until
    assert later.locked_until is None


def test_dummy_hash_has_the_hashers_parameters_and_matches_nothing() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    dummy = _dummy_hash(hasher)
    assert dummy.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert not hasher.check_needs_rehash(dummy)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(dummy, "")
