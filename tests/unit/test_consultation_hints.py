"""Reading ``consultation_changed`` hints: only the id matters, and junk names nothing."""

from __future__ import annotations

import pytest

from consultease.live.consultations import parse_hint


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"op":"UPDATE","id":41,"faculty_id":3,"version":2,"status":"accepted"}', 41),
        ('{"op":"INSERT","id":"42"}', 42),
        ('{"id": true}', None),
        ('{"id": null}', None),
        ('{"id": "forty-two"}', None),
        ('{"op": "UPDATE"}', None),
        ("not json", None),
        ("[1, 2]", None),
    ],
)
def test_a_hint_names_a_consultation_id_or_nothing(payload: str, expected: int | None) -> None:
    assert parse_hint(payload) == expected
