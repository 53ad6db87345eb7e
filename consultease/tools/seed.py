"""Demo data: 30 faculty across 4 departments, added only to an empty table; and a
campus-sized roster (241 faculty, 12 departments) for screenshots and layout tests."""

from __future__ import annotations

import random
from dataclasses import dataclass

from consultease.admin.faculty import FacultyAdmin

DEPARTMENTS: dict[str, list[tuple[str, str]]] = {
    "Computer Science": [
        ("Dr. Ada Lovelace", "CS-101"),
        ("Dr. Alan Turing", "CS-102"),
        ("Dr. Grace Hopper", "CS-103"),
        ("Dr. Edsger Dijkstra", "CS-104"),
        ("Dr. Barbara Liskov", "CS-201"),
        ("Dr. Donald Knuth", "CS-202"),
        ("Dr. Frances Allen", "CS-203"),
        ("Dr. Leslie Lamport", "CS-204"),
    ],
    "Mathematics": [
        ("Dr. Emmy Noether", "M-110"),
        ("Dr. Srinivasa Ramanujan", "M-111"),
        ("Dr. Sofia Kovalevskaya", "M-112"),
        ("Dr. Kurt Gödel", "M-113"),
        ("Dr. Maryam Mirzakhani", "M-210"),
        ("Dr. John von Neumann", "M-211"),
        ("Dr. Katherine Johnson", "M-212"),
    ],
    "Physics": [
        ("Dr. Marie Curie", "P-001"),
        ("Dr. Richard Feynman", "P-002"),
        ("Dr. Lise Meitner", "P-003"),
        ("Dr. Chien-Shiung Wu", "P-004"),
        ("Dr. Paul Dirac", "P-101"),
        ("Dr. Vera Rubin", "P-102"),
        ("Dr. Subrahmanyan Chandrasekhar", "P-103"),
        ("Dr. Jocelyn Bell Burnell", "P-104"),
    ],
    "Electrical Engineering": [
        ("Dr. Nikola Tesla", "EE-310"),
        ("Dr. Hedy Lamarr", "EE-311"),
        ("Dr. Claude Shannon", "EE-312"),
        ("Dr. Edith Clarke", "EE-313"),
        ("Dr. Harry Nyquist", "EE-314"),
        ("Dr. Mildred Dresselhaus", "EE-315"),
        ("Dr. Oliver Heaviside", "EE-316"),
    ],
}


def _email(name: str) -> str:
    local = name.removeprefix("Dr. ").lower().replace(" ", ".").replace("ö", "o")
    return f"{local.replace('-', '')}@uni.example"


def seed_demo_faculty(database_url: str) -> list[int]:
    """Add the demo faculty if the table is empty; return the active faculty ids."""
    admin = FacultyAdmin(database_url)
    try:
        existing = admin.list_all(include_inactive=True)
        if not existing:
            for department, people in DEPARTMENTS.items():
                for name, room in people:
                    admin.add(
                        actor="demo-seed",
                        name=name,
                        department=department,
                        email=_email(name),
                        room=room,
                    )
        return sorted(v.id for v in admin.list_all())
    finally:
        admin.close()


# -- a campus-sized roster (screenshots, layout tests) ----------------------------------------

CAMPUS_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("Biology", "BIO"),
    ("Chemistry", "CHM"),
    ("Civil Engineering", "CE"),
    ("Computer Science", "CS"),
    ("Economics", "ECO"),
    ("Electronics and Communications Engineering", "ECE"),
    ("History", "HIS"),
    ("Linguistics", "LIN"),
    ("Mathematics", "MTH"),
    ("Mechanical Engineering", "ME"),
    ("Philosophy", "PHI"),
    ("Physics", "PHY"),
)
_GIVEN = [
    "Ada",
    "Alan",
    "Grace",
    "Barbara",
    "Donald",
    "Frances",
    "Leslie",
    "Radia",
    "Emmy",
    "Kurt",
    "Maryam",
    "Terence",
    "Marie",
    "Richard",
    "Lise",
    "Paul",
    "Vera",
    "Jocelyn",
    "Nikola",
    "Hedy",
    "Claude",
    "Edith",
    "Oliver",
    "Amina",
    "Kwame",
    "Priya",
    "Wei",
    "Sofia",
    "Mateo",
    "Ingrid",
    "Tomasz",
    "Aiko",
    "Olu",
    "Farah",
    "Diego",
    "Hana",
    "Jonas",
    "Lucia",
    "Omar",
    "Zara",
    "Josefina",
    "Rizalino",
    "Marites",
]
_SURNAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Liskov",
    "Knuth",
    "Allen",
    "Lamport",
    "Perlman",
    "Noether",
    "Gödel",
    "Mirzakhani",
    "Tao",
    "Curie",
    "Feynman",
    "Meitner",
    "Dirac",
    "Rubin",
    "Tesla",
    "Lamarr",
    "Shannon",
    "Clarke",
    "Heaviside",
    "Mensah",
    "Raman",
    "Chen",
    "Kowalski",
    "Tanaka",
    "Adeyemi",
    "Haddad",
    "Moreno",
    "Novak",
    "Berg",
    "Rossi",
    "Farouk",
    "Osei",
    "Lindqvist",
    "Santos",
    "Reyes",
    "Bautista",
    "Villanueva",
    "Aquino",
    "Mendoza",
    "Castillo",
    "Ramos",
    "Garcia",
]
LONG_NAMES: tuple[str, ...] = (
    "Dr. Subrahmanyan Chandrasekhar",
    "Prof. Maria Concepcion Villanueva-Santiago",
    "Dr. Aleksandra Wojciechowska-Kowalczyk",
    "Engr. Ma. Cristina Santos-Dela Cruz",
    "Dr. Jocelyn Bell Burnell",
    "Dr. Bartholomew Montgomery-Fitzgerald III",
    "Prof. Juan Miguel dela Cruz Jr.",
    "Dr. Chimamanda Ngozi Adichie-Okonkwo",
)
"""The longest names a kiosk must show: each keeps its surname on a narrow card."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RosterEntry:
    name: str
    department: str
    email: str
    room: str
    status: str
    desk_online: bool
    always_available: bool = False


def campus_roster(count: int = 241, *, seed: int = 16) -> list[RosterEntry]:
    """``count`` faculty over 12 departments in a realistic mix for mid-morning:
    about 6 % available, a fifth busy, a third away, the rest offline (desks not in),
    a few always-available lecturers without a desk, and the ``LONG_NAMES``."""
    rng = random.Random(seed)
    names: list[str] = list(LONG_NAMES)
    pairs = [(g, s) for s in _SURNAMES for g in _GIVEN]
    rng.shuffle(pairs)
    for given, surname in pairs:
        if len(names) >= count:
            break
        title = rng.choice(("Dr.", "Dr.", "Dr.", "Prof.", "Engr."))
        names.append(f"{title} {given} {surname}")
    entries = []
    for position, name in enumerate(names[:count]):
        department, code = CAMPUS_DEPARTMENTS[position % len(CAMPUS_DEPARTMENTS)]
        draw = rng.random()
        if draw < 0.06:
            status, online = "available", True
        elif draw < 0.26:
            status, online = "busy", True
        elif draw < 0.60:
            status, online = "away", True
        else:
            status, online = rng.choice(("available", "away")), False
        local = "".join(ch for ch in name.lower() if ch.isalnum())
        entries.append(
            RosterEntry(
                name=name,
                department=department,
                email=f"{local}.{position}@uni.example",
                room=f"{code}-{100 + (position * 7) % 300}",
                status=status,
                desk_online=online,
                always_available=position % 97 == 5,
            )
        )
    return entries
