"""How a simulated lecturer answers a consultation request on the desk's screen (SPEC 9.2).

Pure: the randomness comes from a ``random.Random`` handed in. Both desk profiles use it.
"""

from __future__ import annotations

import enum
import random
import re
from dataclasses import dataclass

from desk_firmware_sim.errors import SimError

CID = re.compile(r"CID:(\S+)")
"""The request id in a ``…/messages`` text: ``CID:{id} From:{student} (SID:{sid}): {message}``."""


class Response(enum.StrEnum):
    """The two buttons: blue acknowledges, red says busy."""

    ACKNOWLEDGE = "ACKNOWLEDGE"
    BUSY = "BUSY"


@dataclass(frozen=True, kw_only=True, slots=True)
class AnswerPolicy:
    """How the simulated lecturer answers a consultation request on screen: ACKNOWLEDGE
    with ``acknowledge``, BUSY with ``busy``, else never (so the request expires), after
    a delay drawn uniformly from ``delay_min..delay_max`` seconds."""

    acknowledge: float = 0.6
    busy: float = 0.25
    delay_min: float = 5.0
    delay_max: float = 45.0

    def __post_init__(self) -> None:
        if min(self.acknowledge, self.busy) < 0 or self.acknowledge + self.busy > 1:
            raise SimError("answer probabilities must be >= 0 and add up to at most 1")
        if not 0 <= self.delay_min <= self.delay_max:
            raise SimError("answer delays must satisfy 0 <= min <= max")

    def choose(self, rng: random.Random) -> tuple[Response | None, float]:
        """The answer (``None``: never) and the seconds before the button is pressed."""
        draw = rng.random()
        delay = rng.uniform(self.delay_min, self.delay_max)
        if draw < self.acknowledge:
            return Response.ACKNOWLEDGE, delay
        if draw < self.acknowledge + self.busy:
            return Response.BUSY, delay
        return None, delay
