"""The kiosk's pure text rules: names, contrast, "since" wording, problem lines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consultease.tools.seed import LONG_NAMES
from kiosk_ui import theme
from kiosk_ui.names import shortened_forms, split_name, surname_key
from kiosk_ui.problems import describe_problem, scrub


@pytest.mark.parametrize(
    ("name", "surname"),
    [
        ("Dr. Ada Lovelace", "Lovelace"),
        ("Dr. Jocelyn Bell Burnell", "Burnell"),
        ("Dr. John von Neumann", "von Neumann"),
        ("Prof. Juan dela Cruz", "dela Cruz"),
        ("Lovelace, Ada", "Lovelace"),
        ("Atty. Jose Rizal Jr.", "Rizal"),
        ("Madonna", "Madonna"),
        ("Dr. Chien-Shiung Wu", "Wu"),
    ],
)
def test_the_surname_is_found_behind_titles_particles_and_suffixes(name: str, surname: str) -> None:
    assert split_name(name).surname == surname


def test_sorting_by_surname_ignores_title_case_and_accents() -> None:
    people = ["Prof. Alan Zuniga", "dr. zoe abbott", "Dr. Kurt Gödel", "Dr. Ben Godwin"]
    assert sorted(people, key=surname_key) == [
        "dr. zoe abbott",
        "Dr. Kurt Gödel",
        "Dr. Ben Godwin",
        "Prof. Alan Zuniga",
    ]


@pytest.mark.parametrize("name", LONG_NAMES)
def test_every_shortened_form_keeps_the_whole_surname_and_gets_shorter(name: str) -> None:
    surname = split_name(name).surname
    forms = shortened_forms(name)
    assert forms[0] == name
    assert forms[-1] == surname
    assert all(surname in form for form in forms)
    assert [len(f) for f in forms] == sorted((len(f) for f in forms), reverse=True)


def test_initials_replace_given_names_first() -> None:
    assert shortened_forms("Dr. Subrahmanyan Chandrasekhar") == (
        "Dr. Subrahmanyan Chandrasekhar",
        "Dr. S. Chandrasekhar",
        "S. Chandrasekhar",
        "Chandrasekhar",
    )
    assert shortened_forms("Dr. Chien-Shiung Wu")[1] == "Dr. C.-S. Wu"


def test_every_text_colour_of_the_theme_has_at_least_4_5_to_1_contrast() -> None:
    assert len(theme.TEXT_PAIRS) >= 30
    poor = [
        (what, round(theme.contrast_ratio(fg, bg), 2))
        for what, fg, bg in theme.TEXT_PAIRS
        if theme.contrast_ratio(fg, bg) < theme.MIN_CONTRAST
    ]
    assert poor == []
    for style in theme.STATUS_STYLES.values():
        assert theme.contrast_ratio(style.text, style.chip) >= theme.MIN_CONTRAST, style.label


def test_the_contrast_formula_matches_wcag() -> None:
    assert theme.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert theme.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    # The two failures the issue measured.
    assert theme.contrast_ratio("#ffffff", "#1e8e3e") == pytest.approx(4.21, abs=0.01)
    assert theme.contrast_ratio("#6b7785", "#f1f3f5") == pytest.approx(4.10, abs=0.01)


def test_style_sheets_use_only_theme_colours(repo_root: Path) -> None:
    """A colour written straight into a style sheet would escape the contrast test."""
    allowed = {
        value.lower()
        for name, value in vars(theme).items()
        if name.isupper() and isinstance(value, str) and value.startswith("#")
    }
    allowed |= {c.lower() for s in theme.STATUS_STYLES.values() for c in (s.chip, s.text)}
    for path in sorted((repo_root / "kiosk_ui").glob("*.py")):
        if path.name == "theme.py":
            continue
        literals = set(re.findall(r"#[0-9a-fA-F]{6}\b", path.read_text()))
        assert {c.lower() for c in literals} <= allowed, path.name


def test_since_text_says_what_the_status_means() -> None:
    now = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)

    def local(moment: datetime) -> str:
        shown = moment.astimezone()
        return f"{shown.hour:02d}:{shown.minute:02d}"

    today = now - timedelta(hours=1)
    assert theme.since_text("available", today, now) == f"available since {local(today)}"
    assert theme.since_text("offline", today, now).startswith("offline since ")
    assert theme.since_text("busy", now - timedelta(days=30), now).endswith(" Feb")
    assert theme.since_text("away", today, now, always_available=True) == "no desk unit"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "cannot connect to the database: connection failed: connection to server at "
            '"10.0.0.5", port 5432 failed: Connection refused',
            "the database server is not reachable (connection refused)",
        ),
        (
            'connection failed: FATAL:  password authentication failed for user "kiosk"',
            "the database refused the kiosk's login",
        ),
        (
            'relation "faculty" does not exist',
            "the database has no ConsultEase tables yet (run consultease db upgrade)",
        ),
        (
            'FATAL:  database "consultease" is not currently accepting connections',
            "the database is not accepting connections right now",
        ),
        ("server closed the connection unexpectedly", "the connection to the database was lost"),
    ],
)
def test_known_failures_become_plain_words(reason: str, expected: str) -> None:
    assert describe_problem(reason) == expected


def test_unknown_failures_keep_their_line_but_never_a_secret() -> None:
    line = describe_problem(
        "weird: postgresql://kiosk:hunter2-secret@db.example/ce password=hunter2 " + "x" * 300
    )
    assert "hunter2" not in line
    assert "\n" not in line and len(line) <= len("the database is not reachable ()") + 120
    assert scrub("user=kiosk password=p4ss host=db") == "user=… password=… host=db"
