"""What the ingest service has done: mutable tallies and their frozen snapshot."""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from consultease.domain import Verdict


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestStats:
    """A snapshot of what the service has done since it started."""

    received: int = 0
    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    rejected: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    batches: int = 0
    batch_sizes: Mapping[int, int] = field(default_factory=dict)
    """How many batches had each size."""
    acked: int = 0
    ack_skipped: int = 0
    """Committed messages left unacknowledged because their connection was gone
    (the broker redelivers them; they come back as duplicates)."""
    swept_offline: int = 0
    state_published: int = 0

    @property
    def processed(self) -> int:
        """Messages committed, whatever their verdict."""
        return self.applied + self.duplicate + self.stale + self.rejected

    @property
    def largest_batch(self) -> int:
        return max(self.batch_sizes, default=0)

    @property
    def mean_batch(self) -> float:
        return self.processed / self.batches if self.batches else 0.0


class Counters:
    """Mutable tallies behind ``IngestStats``; guarded by their own lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = 0
        self.verdicts: collections.Counter[Verdict] = collections.Counter()
        self.reasons: collections.Counter[str] = collections.Counter()
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self.acked = 0
        self.ack_skipped = 0
        self.swept_offline = 0
        self.state_published = 0

    def snapshot(self) -> IngestStats:
        with self.lock:
            return IngestStats(
                received=self.received,
                applied=self.verdicts[Verdict.APPLIED],
                duplicate=self.verdicts[Verdict.DUPLICATE],
                stale=self.verdicts[Verdict.STALE],
                rejected=self.verdicts[Verdict.REJECTED],
                rejected_by_reason=dict(self.reasons),
                batches=sum(self.batch_sizes.values()),
                batch_sizes=dict(sorted(self.batch_sizes.items())),
                acked=self.acked,
                ack_skipped=self.ack_skipped,
                swept_offline=self.swept_offline,
                state_published=self.state_published,
            )
