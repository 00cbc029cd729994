"""Retrying transient faults with capped exponential backoff inside a deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shared.errors import TransientError

T = TypeVar("T")


@dataclass
class Clock:
    """Injectable time: tests drive it, production uses the real clocks."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = field(default=random.random)


class DeadlineReached(TransientError):
    """The time budget ran out while a transient fault persisted."""


def retry_transient(
    call: Callable[[], T],
    *,
    deadline: float,
    clock: Clock,
    first_delay: float = 0.5,
    max_delay: float = 8.0,
) -> T:
    """Call until it succeeds, retrying TransientError until ``deadline`` (monotonic)."""
    delay = first_delay
    while True:
        try:
            return call()
        except TransientError as exc:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                raise DeadlineReached(str(exc)) from exc
            clock.sleep(min(delay * (0.5 + clock.jitter()), remaining, max_delay))
            delay = min(delay * 2, max_delay)
