"""People's names on the board: sorted by surname, shortened without losing it.

Pure (no Qt). ``nameparser`` splits a name into title, given names, surname and
suffix ("Dr. Jocelyn Bell Burnell" -> "Dr." / "Jocelyn Bell" / "Burnell"), with
the particles of a surname kept ("John von Neumann", "Juan dela Cruz") and the
"Surname, Given" form understood. A name it cannot split (one word) is its own
surname.

Sorting: by surname, then given names, case- and accent-insensitively, so "Dr."
and first names no longer decide the order.

Shortening, for a card too narrow for the whole name, keeps the surname whole as
long as anything fits at all (``shortened_forms``):

    Dr. Subrahmanyan Chandrasekhar -> Dr. S. Chandrasekhar -> S. Chandrasekhar
                                   -> Chandrasekhar -> (the surname, elided by the caller)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from nameparser import HumanName


@dataclass(frozen=True, kw_only=True, slots=True)
class NameParts:
    title: str
    given: str
    """First and middle names, as written."""
    surname: str
    suffix: str


@lru_cache(maxsize=16384)
def split_name(name: str) -> NameParts:
    """Title, given names, surname and suffix of a display name."""
    text = " ".join(name.split())
    parsed = HumanName(text)
    title, first, middle = parsed.title, parsed.first, parsed.middle
    surname, suffix = parsed.last, parsed.suffix
    if not surname:
        # One word ("Madonna", or "Dr. Rizal"): that word is the surname.
        surname, first, middle = (first or middle or text), "", ""
    given = " ".join(part for part in (first, middle) if part)
    return NameParts(title=title, given=given, surname=surname, suffix=suffix)


def fold(text: str) -> str:
    """Lower case without accents: ``"Gödel"`` -> ``"godel"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=16384)
def surname_key(name: str) -> tuple[str, str]:
    """Sort key: (surname, given names), folded."""
    parts = split_name(name)
    return (fold(parts.surname), fold(parts.given))


def _initials(given: str) -> str:
    """``"Jocelyn Bell"`` -> ``"J. B."``; hyphenated names keep the hyphen (``"C.-S."``)."""
    words = []
    for word in given.split():
        pieces = [piece for piece in word.split("-") if piece]
        words.append("-".join(piece[0] + "." for piece in pieces))
    return " ".join(words)


@lru_cache(maxsize=16384)
def shortened_forms(name: str) -> tuple[str, ...]:
    """The name, then ever shorter forms that all keep the whole surname, longest first.

    The last form is the surname alone (with its suffix dropped); a caller that
    cannot fit even that elides it at the end.
    """
    full = " ".join(name.split())
    parts = split_name(full)
    forms = [full]
    initials = _initials(parts.given)
    surname = parts.surname + (f", {parts.suffix}" if parts.suffix else "")
    with_initials = " ".join(p for p in (parts.title, initials, surname) if p)
    forms.append(with_initials)
    forms.append(" ".join(p for p in (initials, surname) if p))
    forms.append(parts.surname)
    unique: list[str] = []
    for form in forms:
        if form and form not in unique:
            unique.append(form)
    return tuple(unique)
