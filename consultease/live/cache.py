"""The in-memory picture of the faculty table that kiosks draw from (SPEC 6).

``FacultyCache`` holds the *active* faculty as ``FacultyView`` values, keyed
by id, and never lets an older row ``version`` replace a newer one: the
listener may fetch a row twice, or a slow fetch may land after a fast one,
and the kiosk must not flicker back to a state that was already superseded.

Removal is versioned too. When an inactive view arrives (a deactivated
faculty) or an entry is removed, the id keeps a *tombstone* with the newest
version seen, so a late, older, still-active view cannot bring the row back.
``replace_all`` (a resync from the database) is the one authoritative write:
it replaces entries and tombstones with what the database says now.

Entries live in ``cachetools.TTLCache``. The TTL is only a safety net against
a picture that silently stopped being maintained; the listener refreshes the
whole cache (a resync) well within it. One lock makes every method safe to
call from any thread. No Qt here: the kiosk adapts this to its models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from cachetools import TTLCache

from consultease.domain import OFFLINE, FacultyView, Status

SHOWN_STATUSES: tuple[str, ...] = (*(s.value for s in Status), OFFLINE)
"""Every value of ``FacultyView.shown_status``: the keys of ``FacultyCache.counts``."""


def sort_key(view: FacultyView) -> tuple[str, str, int]:
    """The order kiosks list faculty in: department, then name, then id."""
    return (view.department.lower(), view.name.lower(), view.id)


class FacultyCache:
    """Active faculty by id; version-aware; thread-safe."""

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        maxsize: int = 100_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self._ttl = ttl
        self._lock = threading.RLock()
        self._views: TTLCache[int, FacultyView] = TTLCache(maxsize, ttl, timer=timer)
        self._tombstones: TTLCache[int, int] = TTLCache(maxsize, ttl, timer=timer)
        self._sorted: tuple[FacultyView, ...] | None = None

    @property
    def ttl(self) -> float:
        """Seconds an entry lives without being refreshed."""
        return self._ttl

    # -- reading ------------------------------------------------------------

    def get(self, faculty_id: int) -> FacultyView | None:
        """The cached view of an active faculty, or ``None``."""
        with self._lock:
            return self._views.get(faculty_id)

    def version_of(self, faculty_id: int) -> int | None:
        """The ``version`` of the cached (active) entry, or ``None`` when there is none."""
        with self._lock:
            view = self._views.get(faculty_id)
            return None if view is None else view.version

    def newest_version(self, faculty_id: int) -> int | None:
        """The newest version seen for the id, counting removed (tombstoned) rows."""
        with self._lock:
            view = self._views.get(faculty_id)
            if view is not None:
                return view.version
            return self._tombstones.get(faculty_id)

    def all(self) -> list[FacultyView]:
        """Active faculty sorted by (department, name) case-insensitively, then id."""
        with self._lock:
            return list(self._sorted_views())

    def by_department(self) -> dict[str, list[FacultyView]]:
        """Active faculty grouped by department; departments and members in ``all()`` order."""
        grouped: dict[str, list[FacultyView]] = {}
        for view in self.all():
            grouped.setdefault(view.department, []).append(view)
        return grouped

    def counts(self) -> dict[str, int]:
        """How many active faculty show each status (``offline`` when the desk is offline).

        Every key of ``SHOWN_STATUSES`` is present, zero included.
        """
        result = dict.fromkeys(SHOWN_STATUSES, 0)
        with self._lock:
            self._expire()
            for view in self._views.values():
                result[view.shown_status] += 1
        return result

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._views)

    # -- writing ------------------------------------------------------------

    def put(self, view: FacultyView) -> bool:
        """Store a view unless the cache already knows this version or a newer one.

        An inactive view removes the entry. Returns ``True`` when the visible
        picture changed (an entry added, replaced by a newer version, or
        removed); ``False`` leaves the cache exactly as it was.
        """
        with self._lock:
            known = self.newest_version(view.id)
            if known is not None and view.version <= known:
                return False
            if not view.active:
                self._tombstones[view.id] = view.version
                return self._pop(view.id)
            self._tombstones.pop(view.id, None)
            self._views[view.id] = view
            self._sorted = None
            return True

    def remove(self, faculty_id: int) -> bool:
        """Drop an entry (a deleted row). ``True`` when there was one.

        The removed version stays as a tombstone, so an older view of the
        row cannot come back; a newer one can.
        """
        with self._lock:
            view = self._views.get(faculty_id)
            if view is None:
                return False
            self._tombstones[faculty_id] = view.version
            return self._pop(faculty_id)

    def replace_all(self, views: Iterable[FacultyView]) -> None:
        """Make the cache exactly the given rows (a resync): the database is the truth.

        Inactive views are left out. Tombstones are forgotten, since the
        snapshot already reflects every removal.
        """
        fresh = {v.id: v for v in views if v.active}
        with self._lock:
            self._views.clear()
            self._tombstones.clear()
            for faculty_id, view in fresh.items():
                self._views[faculty_id] = view
            self._sorted = None

    # -- internals (callers hold the lock) ------------------------------------

    def _pop(self, faculty_id: int) -> bool:
        if self._views.pop(faculty_id, None) is None:
            return False
        self._sorted = None
        return True

    def _expire(self) -> None:
        if self._views.expire():
            self._sorted = None
        self._tombstones.expire()

    def _sorted_views(self) -> tuple[FacultyView, ...]:
        self._expire()
        if self._sorted is None:
            self._sorted = tuple(sorted(self._views.values(), key=sort_key))
        return self._sorted
