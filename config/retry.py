"""How long to wait before trying a peer again: one rule for every retry loop.

Doubling from a first delay up to a ceiling, never past it however long the
outage lasts (a broker or mailbox away for a weekend is tried every
``ceiling`` seconds), with optional jitter that only shortens a delay, so
that several processes do not retry in step and the ceiling still holds.
"""

from __future__ import annotations

import random

# Any ceiling is reached long before 2 ** 62 times the first delay; without
# this cap a long outage (1,025 failures in a row) grows the power past what
# a float holds, and the retry loop dies of an OverflowError.
MAX_DOUBLINGS = 62


def backoff_delay(failures: int, first: float, ceiling: float, jitter: float = 0.0) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (n >= 1).

    ``jitter`` is the share a delay may be shortened by at random (0.2: down
    to 80 %).
    """
    doublings = min(max(0, failures - 1), MAX_DOUBLINGS)
    base = min(ceiling, first * 2.0**doublings)
    if jitter <= 0:
        return float(base)
    return base * random.uniform(1.0 - jitter, 1.0)  # noqa: S311 (jitter, not security)
