"""What the status view says for each state, and how it counts the wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consultease.live.consultations import ConsultationView
from kiosk_ui import theme
from kiosk_ui.consultation_status import describe, elapsed_text

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def request(status: str, closed_by: str | None = None, *, waited: float = 0) -> ConsultationView:
    return ConsultationView(
        id=7,
        faculty_id=3,
        faculty_name="Dr. Ada Lovelace",
        room="CS-101",
        student_name="Sam Student",
        student_id=None,
        course_code=None,
        message="Problem 3",
        status=status,
        version=1,
        created_at=T0,
        updated_at=T0,
        responded_at=None,
        closed_by=closed_by,
        read_at=T0 + timedelta(seconds=waited),
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (7.9, "0:07"), (750, "12:30"), (3723, "1:02:03"), (-5, "0:00")],
)
def test_elapsed_time_reads_like_a_clock(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text


def test_the_wait_comes_from_the_database_clock_and_is_never_negative() -> None:
    assert request("pending", waited=95).waited == timedelta(seconds=95)
    assert request("pending", waited=-3).waited == timedelta(0)


@pytest.mark.parametrize(
    ("closed_by", "detail"),
    [
        ("student", "You cancelled this request."),
        ("admin", "The request was cancelled by staff."),
        ("desk", "The request was cancelled at the lecturer's desk."),
        ("system", "The request was cancelled."),
    ],
)
def test_a_cancellation_says_who_cancelled(closed_by: str, detail: str) -> None:
    assert describe(request("cancelled", closed_by), 0) == ("Request cancelled", detail)


def test_every_state_has_a_headline_and_a_chip_word_with_readable_contrast() -> None:
    for status in ("pending", "accepted", "declined", "expired", "cancelled", "completed"):
        headline, _ = describe(request(status), 61)
        assert headline
        style = theme.request_style(status)
        assert style is not theme.UNKNOWN_STATUS
        assert theme.contrast_ratio(style.text, style.chip) >= theme.MIN_CONTRAST
    assert (
        describe(request("pending"), 61)[1] == "Your request was sent to their desk. Waiting 1:01."
    )
