"""Demo data: 30 faculty across 4 departments, added only to an empty table."""

from __future__ import annotations

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
