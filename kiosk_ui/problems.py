"""What is wrong with the live updates, in one line a member of staff can act on.

Pure (no Qt). The listener reports the first line of the driver's error; this
turns the usual ones into plain words and, for anything else, keeps the line but
strips what could be a secret (passwords, credentials in a URL, key=value
connection settings), so nothing sensitive ever reaches a public screen.
"""

from __future__ import annotations

import re

MAX_LENGTH = 120

_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), text)
    for pattern, text in (
        (
            r'relation "?faculty"? does not exist',
            "the database has no ConsultEase tables yet (run consultease db upgrade)",
        ),
        (
            r"password authentication failed|authentication failed|no password supplied"
            r"|no pg_hba\.conf entry",
            "the database refused the kiosk's login",
        ),
        (r"permission denied", "the kiosk's database login may not read the faculty list"),
        (r'database "[^"]*" does not exist', "the kiosk's database does not exist"),
        (
            r"not currently accepting connections|is not accepting connections"
            r"|starting up|shutting down|in recovery mode",
            "the database is not accepting connections right now",
        ),
        (
            r"could not translate host name|name or service not known|nodename nor servname",
            "the database server's name cannot be found",
        ),
        (r"connection refused", "the database server is not reachable (connection refused)"),
        (r"timeout expired|timed out", "the database server does not answer (timed out)"),
        (
            r"no route to host|network is unreachable",
            "the database server is not reachable (no network route)",
        ),
        (
            r"terminating connection|server closed the connection|connection is lost"
            r"|consuming input failed|connection reset",
            "the connection to the database was lost",
        ),
    )
)

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\w+://)[^/@\s]*@"), r"\1…@"),  # user:password@ in a URL
    (re.compile(r"\b(password|passwd|pwd|sslpassword|user)\s*=\s*\S+", re.IGNORECASE), r"\1=…"),
)


def scrub(text: str) -> str:
    """``text`` without credentials, on one line, cut to ``MAX_LENGTH``."""
    line = " ".join(text.split())
    for pattern, replacement in _SECRETS:
        line = pattern.sub(replacement, line)
    if len(line) > MAX_LENGTH:
        line = line[: MAX_LENGTH - 1].rstrip() + "…"
    return line


def describe_problem(reason: str) -> str:
    """A listener's failure reason as one plain line with no secrets."""
    for pattern, text in _KNOWN:
        if pattern.search(reason):
            return text
    cleaned = scrub(reason)
    cleaned = re.sub(r"^cannot connect to the database:\s*", "", cleaned)
    return (
        f"the database is not reachable ({cleaned})" if cleaned else "the database is not reachable"
    )
