"""The keyboard-wedge rule: a reader types a card's digits far faster than a person."""

from __future__ import annotations

from kiosk_ui.rfid import MAX_GAP, MIN_DIGITS, WedgeDecoder


def typed(decoder: WedgeDecoder, text: str, *, gap: float, start: float = 100.0) -> str | None:
    now = start
    for char in text:
        decoder.key(char, now)
        now += gap
    return decoder.enter(now - gap + min(gap, MAX_GAP))


def test_a_fast_run_of_digits_ended_by_enter_is_a_card() -> None:
    assert typed(WedgeDecoder(), "0004567891", gap=0.004) == "0004567891"


def test_a_person_typing_a_student_number_is_not_a_card() -> None:
    assert typed(WedgeDecoder(), "20210042", gap=0.25) is None


def test_too_few_digits_or_a_letter_in_the_run_is_not_a_card() -> None:
    assert typed(WedgeDecoder(), "1" * (MIN_DIGITS - 1), gap=0.004) is None
    assert typed(WedgeDecoder(), "12345a7890", gap=0.004) is None


def test_slow_digits_before_a_card_do_not_join_it() -> None:
    decoder = WedgeDecoder()
    decoder.key("7", 1.0)
    decoder.key("7", 1.5)
    assert typed(decoder, "12345678", gap=0.004, start=3.0) == "12345678"


def test_enter_long_after_the_last_digit_is_not_a_card() -> None:
    decoder = WedgeDecoder()
    for position, char in enumerate("12345678"):
        decoder.key(char, 1.0 + position * 0.004)
    assert decoder.enter(5.0) is None
