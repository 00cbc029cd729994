"""``sla backfill`` against the seeded demo warehouse: what it records, and re-runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.services.seed import seed_demo
from shared.services.sla import SlaDeps
from shared.services.sla_backfill import backfill
from shared.services.sla_budget import floor_to_cadence
from tests.helpers import Stack, make_example_stack

Q = timedelta(minutes=15)


def _deps(stack: Stack, now: datetime) -> SlaDeps:
    a = stack.adapters
    assert a.metrics is not None and a.history is not None
    return SlaDeps(
        stack.settings, a.warehouse, a.store, a.publisher, a.metrics, a.history, now=lambda: now
    )


def test_a_rerun_later_the_same_day_records_the_new_slots(tmp_path: Path) -> None:
    stack = make_example_stack(tmp_path)
    now = floor_to_cadence(datetime.now(UTC), timedelta(days=1)) + timedelta(hours=12, minutes=5)
    seed_demo(stack.adapters.warehouse, now)  # type: ignore[arg-type]
    first = backfill(_deps(stack, now), days=1)
    assert first.rows_written == first.slots * 3 and first.load_jobs >= 1

    # an hour later the same day: 4 more slots per SLO, in a day that already has a job
    later = backfill(_deps(stack, now + timedelta(hours=1)), days=1)

    assert later.rows_written == 4 * 3
    assert later.rows_kept == (first.slots - 4) * 3  # the window moved on by 4 slots too
    assert stack.adapters.history is not None
    rows = stack.adapters.history.read(
        ["data_freshness"], now - timedelta(days=2), now + timedelta(hours=2)
    )
    instants = sorted({r.at for r in rows})
    end = floor_to_cadence(now + timedelta(hours=1), Q)
    assert instants[-1] == end - Q  # every slot up to the live one, none missing
    assert len(instants) == len(set(instants)) == first.slots + 4


def test_backfilled_rows_are_marked_and_their_state_is_not_announced(tmp_path: Path) -> None:
    import json

    from shared.services.sla import SlaRequest, evaluate

    stack = make_example_stack(tmp_path)
    now = datetime.now(UTC)
    seed_demo(stack.adapters.warehouse, now)  # type: ignore[arg-type]
    backfill(_deps(stack, now), days=2)
    assert stack.messages("opsuite-alerts") == []  # the past is history, not pages
    assert stack.adapters.history is not None
    rows = stack.adapters.history.read(["model_accuracy"], now - timedelta(days=3), now)
    assert rows and all(json.loads(r.detail)["backfilled"] is True for r in rows)

    outcome = evaluate(SlaRequest(), _deps(stack, now))
    announced = {(e.transition.slo, e.transition.condition) for e in outcome.events}
    assert ("model_accuracy", "sli") in announced  # the current breach, announced once
    again = evaluate(SlaRequest(at=now + Q), _deps(stack, now + Q))
    assert not [e for e in again.events if e.transition.condition == "sli"]


def test_phase_success_per_configured_phase_over_the_window(tmp_path: Path) -> None:
    from shared.metrics import PREFIX
    from shared.services.sla import SlaRequest, evaluate

    stack = make_example_stack(tmp_path)
    now = datetime.now(UTC)
    seed_demo(stack.adapters.warehouse, now)  # type: ignore[arg-type]
    backfill(_deps(stack, now), days=3)
    evaluate(SlaRequest(), _deps(stack, now))

    assert stack.adapters.metrics is not None
    points = stack.adapters.metrics.query(
        PREFIX + "pipeline/phase_success", now - timedelta(hours=1), now + timedelta(minutes=5)
    )
    at = floor_to_cadence(now, Q)
    by_phase = {p.labels["phase"]: p.value for p in points if p.at == at}
    assert set(by_phase) == {"phase_2", "phase_3", "phase_4", "phase_5"}
    # the seed's newest day: the two FAILING processors fail every run; phase 4 and 5 are
    # the ones hit, phase 2 and 3 mostly succeed
    assert all(0.0 <= v <= 1.0 for v in by_phase.values())
    assert by_phase["phase_2"] > by_phase["phase_4"]
