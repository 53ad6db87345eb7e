"""FacultyCache: version-aware, never rolls back, sorted and counted as the kiosk shows it."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultease.domain import FacultyView, Source, Status
from consultease.live.cache import SHOWN_STATUSES, FacultyCache

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def view(
    faculty_id: int = 1,
    version: int = 1,
    *,
    name: str | None = None,
    department: str = "Computer Science",
    status: Status = Status.AVAILABLE,
    desk_online: bool = True,
    active: bool = True,
) -> FacultyView:
    return FacultyView(
        id=faculty_id,
        name=name if name is not None else f"Lecturer {faculty_id}",
        department=department,
        email=f"f{faculty_id}@uni.example",
        room=None,
        status=status,
        status_source=Source.DESK,
        desk_online=desk_online,
        active=active,
        version=version,
        last_seen=None,
        updated_at=T0,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_put_newer_version_replaces_entry() -> None:
    cache = FacultyCache()
    assert cache.put(view(1, 1, status=Status.AWAY))
    assert cache.put(view(1, 2, status=Status.BUSY))
    cached = cache.get(1)
    assert cached is not None
    assert (cached.version, cached.status) == (2, Status.BUSY)
    assert cache.version_of(1) == 2


def test_stale_put_never_rolls_back_and_reports_no_change() -> None:
    cache = FacultyCache()
    newer = view(1, 5, status=Status.BUSY)
    cache.put(newer)
    assert cache.put(view(1, 4, status=Status.AWAY)) is False
    assert cache.put(view(1, 1, status=Status.AVAILABLE)) is False
    assert cache.get(1) is newer


def test_same_version_is_not_a_change() -> None:
    cache = FacultyCache()
    first = view(1, 3)
    cache.put(first)
    assert cache.put(view(1, 3, name="Someone Else")) is False
    assert cache.get(1) is first


def test_inactive_view_removes_entry() -> None:
    cache = FacultyCache()
    cache.put(view(1, 1))
    assert cache.put(view(1, 2, active=False)) is True
    assert cache.get(1) is None
    assert cache.version_of(1) is None
    assert len(cache) == 0
    assert cache.all() == []


def test_inactive_view_for_unknown_id_changes_nothing() -> None:
    cache = FacultyCache()
    assert cache.put(view(7, 3, active=False)) is False
    assert len(cache) == 0


def test_older_active_view_cannot_resurrect_a_deactivated_row() -> None:
    cache = FacultyCache()
    cache.put(view(1, 1))
    cache.put(view(1, 3, active=False))
    assert cache.put(view(1, 2)) is False
    assert cache.get(1) is None
    assert cache.newest_version(1) == 3
    # Reactivation is a newer version and does come back.
    assert cache.put(view(1, 4)) is True
    assert cache.version_of(1) == 4


def test_stale_inactive_view_does_not_remove_newer_entry() -> None:
    cache = FacultyCache()
    cache.put(view(1, 5))
    assert cache.put(view(1, 4, active=False)) is False
    assert cache.version_of(1) == 5


def test_remove_reports_whether_there_was_an_entry_and_blocks_older_views() -> None:
    cache = FacultyCache()
    cache.put(view(1, 2))
    assert cache.remove(1) is True
    assert cache.remove(1) is False
    assert cache.put(view(1, 2)) is False
    assert cache.put(view(1, 1)) is False
    assert cache.get(1) is None


def test_all_sorts_by_department_then_name_case_insensitively_then_id() -> None:
    cache = FacultyCache()
    rows = [
        view(1, name="zed", department="physics"),
        view(2, name="Amy", department="Physics"),
        view(3, name="bob", department="Biology"),
        view(4, name="Amy", department="biology"),
        view(5, name="amy", department="Biology"),
    ]
    for row in random.Random(4).sample(rows, len(rows)):
        cache.put(row)
    assert [v.id for v in cache.all()] == [4, 5, 3, 2, 1]


def test_all_reflects_later_changes() -> None:
    cache = FacultyCache()
    cache.put(view(1, 1, name="B"))
    cache.put(view(2, 1, name="C"))
    assert [v.id for v in cache.all()] == [1, 2]
    cache.put(view(1, 2, name="D"))
    assert [v.id for v in cache.all()] == [2, 1]
    cache.remove(2)
    assert [v.id for v in cache.all()] == [1]


def test_by_department_groups_in_display_order() -> None:
    cache = FacultyCache()
    cache.put(view(1, name="Zoe", department="Physics"))
    cache.put(view(2, name="Al", department="Biology"))
    cache.put(view(3, name="Ann", department="Physics"))
    grouped = cache.by_department()
    assert list(grouped) == ["Biology", "Physics"]
    assert [v.id for v in grouped["Physics"]] == [3, 1]


def test_counts_use_shown_status_so_offline_desks_count_as_offline() -> None:
    cache = FacultyCache()
    cache.put(view(1, status=Status.AVAILABLE, desk_online=True))
    cache.put(view(2, status=Status.AVAILABLE, desk_online=False))
    cache.put(view(3, status=Status.BUSY, desk_online=True))
    cache.put(view(4, status=Status.BUSY, desk_online=False))
    cache.put(view(5, status=Status.AWAY, desk_online=True))
    cache.put(view(6, status=Status.AWAY, desk_online=True, active=False))
    assert cache.counts() == {"available": 1, "away": 1, "busy": 1, "offline": 2}


def test_counts_of_empty_cache_have_every_key() -> None:
    assert FacultyCache().counts() == dict.fromkeys(SHOWN_STATUSES, 0)
    assert set(SHOWN_STATUSES) == {"available", "away", "busy", "offline"}


def test_replace_all_is_authoritative() -> None:
    cache = FacultyCache()
    cache.put(view(1, 9))
    cache.put(view(2, 1))
    cache.put(view(3, 4, active=False))  # a tombstone at version 4
    cache.replace_all([view(1, 7), view(3, 2), view(4, 1), view(5, 1, active=False)])
    assert [(v.id, v.version) for v in cache.all()] == [(1, 7), (3, 2), (4, 1)]
    assert cache.get(2) is None
    assert cache.get(5) is None
    # Version-aware again from the new snapshot.
    assert cache.put(view(1, 6)) is False
    assert cache.put(view(1, 8)) is True


def test_entries_expire_after_ttl_as_a_safety_net() -> None:
    clock = FakeClock()
    cache = FacultyCache(ttl=10, timer=clock)
    cache.put(view(1, 1))
    clock.now = 5
    cache.put(view(2, 1))
    assert len(cache) == 2
    clock.now = 11
    assert [v.id for v in cache.all()] == [2]
    assert cache.get(1) is None
    assert len(cache) == 1
    assert cache.counts()["available"] == 1


@pytest.mark.parametrize("kwargs", [{"ttl": 0}, {"maxsize": 0}])
def test_rejects_nonsense_limits(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        FacultyCache(**kwargs)  # type: ignore[arg-type]


# A view is fully determined by (id, version): the same version is the same row.
def _view_for(faculty_id: int, version: int) -> FacultyView:
    return view(
        faculty_id,
        version,
        status=list(Status)[version % 3],
        desk_online=version % 4 != 0,
        active=version % 5 != 0,
    )


puts = st.lists(
    st.tuples(st.integers(1, 6), st.integers(1, 30)).map(lambda p: _view_for(*p)),
    max_size=60,
)


@given(puts)
def test_any_interleaving_of_puts_ends_with_the_max_version_per_id(
    views: list[FacultyView],
) -> None:
    cache = FacultyCache()
    for v in views:
        cache.put(v)
    newest: dict[int, FacultyView] = {}
    for v in views:
        if v.id not in newest or v.version > newest[v.id].version:
            newest[v.id] = v
    expected = sorted(
        (v for v in newest.values() if v.active), key=lambda v: (v.department, v.name, v.id)
    )
    assert cache.all() == expected
    for faculty_id, v in newest.items():
        assert cache.newest_version(faculty_id) == v.version
        assert cache.version_of(faculty_id) == (v.version if v.active else None)


@given(puts, st.randoms(use_true_random=False))
def test_put_order_does_not_matter(views: list[FacultyView], rnd: random.Random) -> None:
    forward, shuffled = FacultyCache(), FacultyCache()
    for v in views:
        forward.put(v)
    for v in rnd.sample(views, len(views)):
        shuffled.put(v)
    assert forward.all() == shuffled.all()


def test_concurrent_puts_from_many_threads_end_with_the_max_version() -> None:
    cache = FacultyCache()
    versions = list(range(1, 2001))
    barrier = threading.Barrier(4)

    def worker(seed: int) -> None:
        order = random.Random(seed).sample(versions, len(versions))
        barrier.wait()
        for version in order:
            cache.put(view(version % 10, version))
            cache.all()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {v.id: v.version for v in cache.all()} == {i: 1990 + i for i in range(10)} | {0: 2000}
