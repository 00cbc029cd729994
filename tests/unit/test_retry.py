from __future__ import annotations

import pytest

from shared.errors import NotFound, TransientError
from shared.retry import Clock, DeadlineReached, retry_transient


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep, jitter=lambda: 0.5)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_retries_with_growing_backoff_until_success() -> None:
    clock = FakeClock()
    failures = iter([TransientError("503")] * 4)

    def call() -> str:
        err = next(failures, None)
        if err:
            raise err
        return "ok"

    assert retry_transient(call, deadline=100, clock=clock) == "ok"
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_gives_up_at_the_deadline() -> None:
    clock = FakeClock()

    def call() -> None:
        raise TransientError("503")

    with pytest.raises(DeadlineReached):
        retry_transient(call, deadline=10, clock=clock)
    assert clock.now == pytest.approx(10)


def test_permanent_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def call() -> None:
        calls.append(1)
        raise NotFound("gone")

    with pytest.raises(NotFound):
        retry_transient(call, deadline=100, clock=clock)
    assert calls == [1] and clock.sleeps == []
