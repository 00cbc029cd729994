"""The evaluator's edges: the trigger body (``parse_sla_request``), publishing an event
once (``publish_once``, the claim pattern), and what one evaluation writes: its metric
points, its history load-job id and its event bodies (shared/services/sla.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared import identifiers
from shared.adapters.local.object_store import LocalObjectStore
from shared.config import Settings, load_settings, parse_settings
from shared.errors import BadInput, TransientError
from shared.metrics import PREFIX, spec_for
from shared.models import DailyAggregate, ObjectInfo, RunBucket
from shared.retry import Clock
from shared.services.once import CLAIM_STALE_SECONDS, WAIT_SECONDS, publish_once
from shared.services.sla import SlaRequest, event_body, history_job_id, metric_points
from shared.services.sla_assess import Assessment, Transition, assess, burn_windows
from shared.services.sla_event import parse_sla_request
from shared.services.sla_sli import AggregateKey, DrillSummary, Inputs, compute
from tests.helpers import EXAMPLE_CONFIG

AT = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
Q = timedelta(minutes=15)
BUCKET = "test-backups"
BASE = "_opsuite/slo/events/20261201/abc123"


# --- parse_sla_request --------------------------------------------------------------------


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("payload", [b"", b"  \n", b"{}"])
def test_an_empty_body_is_the_default_request(payload: bytes) -> None:
    assert parse_sla_request(payload) == SlaRequest(at=None, slos=(), dry_run=False)


def test_at_with_z_or_an_offset_is_utc() -> None:
    z = parse_sla_request(_body({"at": "2026-12-01T10:15:00Z"})).at
    assert z == AT
    assert z is not None and z.tzinfo == UTC
    offset = parse_sla_request(_body({"at": "2026-12-01T12:15:00.5+02:00"})).at
    assert offset == AT + timedelta(milliseconds=500)
    assert offset is not None and offset.tzinfo == UTC


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2026-12-01T10:15:00", "RFC 3339"),  # naive
        ("2026-12-01", "RFC 3339"),
        ("yesterday", "RFC 3339"),
        ("2026-12-01T10:15:00Z; DROP", "RFC 3339"),
        ("2026-13-01T10:15:00Z", "not a valid date"),
        ("2026-12-01T10:15:00+25:00", "not a valid date"),
        (1764584100, "at:"),
    ],
)
def test_a_naive_or_garbage_at_is_bad_input(at: Any, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_sla_request(_body({"at": at}))


def test_an_unknown_field_is_bad_input_naming_it() -> None:
    with pytest.raises(BadInput, match=r"slo: unknown field"):
        parse_sla_request(_body({"slo": ["data_freshness"]}))


@pytest.mark.parametrize("slos", [[], [1], ["ok", None], [""], ["x" * 64], "data_freshness"])
def test_slos_must_be_a_non_empty_list_of_names(slos: Any) -> None:
    with pytest.raises(BadInput, match="slos"):
        parse_sla_request(_body({"slos": slos}))


@pytest.mark.parametrize("flag", ["true", 1, 0, "yes", None])
def test_dry_run_must_be_a_json_bool(flag: Any) -> None:
    with pytest.raises(BadInput, match="dry_run"):
        parse_sla_request(_body({"dry_run": flag}))


def test_dry_run_true() -> None:
    assert parse_sla_request(_body({"dry_run": True})).dry_run is True


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"at": "\xff"}', "UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"[" * 100_000, "nested too deeply|not JSON"),
    ],
)
def test_undecodable_bodies_are_bad_input(payload: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_sla_request(payload)


def test_duplicate_slos_are_removed_in_order() -> None:
    request = parse_sla_request(_body({"slos": ["b", "a", "b", "c", "a"]}))
    assert request.slos == ("b", "a", "c")


# --- publish_once -------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that only moves when someone sleeps."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    @property
    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, sleep=self.sleep, jitter=lambda: 0.5)


class Publishes:
    def __init__(self, message_id: str = "m-1") -> None:
        self.message_id = message_id
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.message_id


def _never() -> str:
    raise AssertionError("publish must not be called")


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "gcs")


def _claim(store: LocalObjectStore, claimed_at: datetime, nonce: str = "someone-else") -> None:
    body = json.dumps({"claimed_at": claimed_at.isoformat(), "nonce": nonce}).encode()
    assert store.write_once(BUCKET, f"{BASE}.claim.json", body, "application/json")


def test_the_first_caller_publishes_and_writes_the_done_marker(store: LocalObjectStore) -> None:
    publish = Publishes("m-1")
    published = publish_once(store, BUCKET, BASE, publish, now=AT, clock=FakeClock().clock)
    assert (published.message_id, published.now) == ("m-1", True)
    assert publish.calls == 1
    assert json.loads(store.read(BUCKET, f"{BASE}.done.json")) == {
        "message_id": "m-1",
        "at": AT.isoformat(),  # when it was published: a later reader learns it
    }
    assert published.at == AT
    claim = json.loads(store.read(BUCKET, f"{BASE}.claim.json"))
    assert claim["claimed_at"] == AT.isoformat()


def test_a_second_caller_gets_the_same_message_id_without_publishing(
    store: LocalObjectStore,
) -> None:
    fake = FakeClock()
    publish_once(store, BUCKET, BASE, Publishes("m-1"), now=AT, clock=fake.clock)
    again = publish_once(store, BUCKET, BASE, _never, now=AT + Q, clock=fake.clock)
    assert (again.message_id, again.now, again.at) == ("m-1", False, AT)  # the first's time
    assert fake.sleeps == []


def test_a_fresh_foreign_claim_without_marker_waits_then_asks_for_redelivery(
    store: LocalObjectStore,
) -> None:
    _claim(store, AT - timedelta(seconds=60))  # someone else is publishing right now
    fake = FakeClock()
    with pytest.raises(TransientError, match="another delivery"):
        publish_once(store, BUCKET, BASE, _never, now=AT, clock=fake.clock)
    assert sum(fake.sleeps) == pytest.approx(WAIT_SECONDS)  # waited its time, on the fake
    assert store.stat(BUCKET, f"{BASE}.done.json") is None


def test_a_foreign_claim_whose_marker_appears_while_waiting_is_theirs(
    store: LocalObjectStore,
) -> None:
    _claim(store, AT - timedelta(seconds=5))

    def finish(sleeps: int) -> None:
        if sleeps == 3:  # the other delivery writes its marker
            done = json.dumps({"message_id": "theirs"}).encode()
            store.write_once(BUCKET, f"{BASE}.done.json", done, "application/json")

    fake = FakeClock(finish)
    published = publish_once(store, BUCKET, BASE, _never, now=AT, clock=fake.clock)
    assert (published.message_id, published.now) == ("theirs", False)
    assert len(fake.sleeps) == 3


def test_a_stale_claim_is_published_again(store: LocalObjectStore) -> None:
    # a claim older than the stale limit without a marker: its publisher died
    _claim(store, AT - timedelta(seconds=CLAIM_STALE_SECONDS + 1))
    publish = Publishes("m-2")
    fake = FakeClock()
    published = publish_once(store, BUCKET, BASE, publish, now=AT, clock=fake.clock)
    assert (published.message_id, published.now) == ("m-2", True)
    assert publish.calls == 1
    assert fake.sleeps == []
    assert json.loads(store.read(BUCKET, f"{BASE}.done.json"))["message_id"] == "m-2"


class ClaimAnsweredTwice:
    """An object store whose claim create lands but answers "already exists" (a retried
    create whose first attempt succeeded: GCS then returns 412)."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_once(self, bucket: str, name: str, data: bytes, ct: str) -> ObjectInfo | None:
        info = self.inner.write_once(bucket, name, data, ct)
        return None if name.endswith(".claim.json") else info


def test_our_own_claim_answered_twice_still_publishes(store: LocalObjectStore) -> None:
    publish = Publishes("m-3")
    fake = FakeClock()
    published = publish_once(
        ClaimAnsweredTwice(store),  # type: ignore[arg-type]
        BUCKET,
        BASE,
        publish,
        now=AT,
        clock=fake.clock,
    )
    assert (published.message_id, published.now) == ("m-3", True)
    assert publish.calls == 1
    assert fake.sleeps == []  # did not wait for itself


class ClaimReleasedBeforeRead:
    """A foreign claim that its delivery releases (its send failed) between our create
    losing to it and our read of it: the read finds nothing."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self.inner = inner
        self.released = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, bucket: str, name: str) -> bytes:
        if name.endswith(".claim.json") and not self.released:
            self.released = True
            self.inner.delete(bucket, name)
        return self.inner.read(bucket, name)


def test_a_claim_released_before_it_is_read_is_claimed_and_published(
    store: LocalObjectStore,
) -> None:
    _claim(store, AT - timedelta(seconds=5))
    publish = Publishes("m-4")
    fake = FakeClock()
    released = ClaimReleasedBeforeRead(store)
    published = publish_once(
        released,  # type: ignore[arg-type]
        BUCKET,
        BASE,
        publish,
        now=AT,
        clock=fake.clock,
    )
    assert released.released
    assert (published.message_id, published.now) == ("m-4", True)  # not NotFound
    assert publish.calls == 1 and fake.sleeps == []
    assert json.loads(store.read(BUCKET, f"{BASE}.claim.json"))["claimed_at"] == AT.isoformat()


def test_a_claim_without_its_time_counts_as_stale(store: LocalObjectStore) -> None:
    body = json.dumps({"nonce": "someone-else"}).encode()
    assert store.write_once(BUCKET, f"{BASE}.claim.json", body, "application/json")
    publish = Publishes("m-5")
    published = publish_once(store, BUCKET, BASE, publish, now=AT, clock=FakeClock().clock)
    assert (published.message_id, publish.calls) == ("m-5", 1)


# --- metric_points ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Settings:
    return load_settings(EXAMPLE_CONFIG)


def _tables(settings: Settings) -> list[str]:
    return [t.table for t in settings.health.freshness.tables]


def _inputs(settings: Settings) -> Inputs:
    accuracy = next(s for s in settings.slos.objectives if s.sli.kind == "threshold")
    ages: dict[str, float | None] = {t: 1.0 + i / 2 for i, t in enumerate(_tables(settings))}
    return Inputs(
        at=AT,
        freshness=ages,
        checks={"freshness": "pass", "backups": "warn", "dependencies": "pass"},
        runs=[RunBucket(AT, "phase_2", 10, 9), RunBucket(AT, "phase_3", 4, 4)],
        aggregates={
            AggregateKey.of(accuracy.sli): [  # type: ignore[arg-type]
                DailyAggregate(AT.date(), 10, 44.0, 1.0, 9.0)
            ]
        },
        drill=DrillSummary(AT.date(), AT - timedelta(hours=3), True, 0.5),
        drill_looked_up=True,
    )


def _assess_all(settings: Settings, inputs: Inputs) -> list[Assessment]:
    cadence = timedelta(minutes=settings.slos.cadence_minutes)
    out = []
    for slo in settings.slos.objectives:
        result = compute(
            slo, inputs, freshness_configured=_tables(settings), ratio_since=AT - cadence
        )
        out.append(
            assess(
                slo,
                result,
                [],
                at=AT,
                cadence=cadence,
                windows=burn_windows(settings.slos.burn_rates),
                recorded_at=AT + timedelta(seconds=20),
                detail=json.dumps(result.detail, sort_keys=True, default=str),
            )
        )
    return out


def _by_type(points: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in points:
        out.setdefault(p.metric_type.removeprefix(PREFIX), []).append(p)
    return out


def test_metric_points_of_the_six_example_slos(example: Settings) -> None:
    assessments = _assess_all(example, _inputs(example))
    assert [a.slo.name for a in assessments] == [s.name for s in example.slos.objectives]
    points = metric_points(assessments, example, backup_hours=5.5)
    for p in points:
        spec_for(p.metric_type, p.labels)  # every type and label set is in the catalog
        assert p.at == AT
    series = [p.series for p in points]
    assert len(series) == len(set(series)) <= 200  # one point per series, one request
    by_type = _by_type(points)
    # detection without the ledger read: unknown = 1, no value, no good/bad
    detection = {
        p.metric_type.removeprefix(PREFIX): p.value
        for p in points
        if p.labels.get("slo") == "incident_detection"
    }
    assert detection["slo/unknown"] == 1
    assert "slo/sli" not in detection and "slo/good" not in detection
    # burn rates: one per distinct window length of the pairs, per measured SLO
    measured = {a.slo.name for a in assessments if a.measured}
    assert len(measured) == 6
    # detection counted no incident events (the ledger was not read): no window metrics
    windowed = measured - {"incident_detection"}
    for name in windowed:
        windows = [p.labels["window"] for p in by_type["slo/burn_rate"] if p.labels["slo"] == name]
        assert sorted(windows) == sorted(["15m", "1h", "6h", "3d"])
    assert {p.labels["slo"] for p in by_type["slo/compliance"]} == windowed
    assert {p.labels["slo"] for p in by_type["slo/budget_remaining_minutes"]} == windowed
    # freshness age per configured table, the worst 7.0 h (13th table: 1 + 12/2)
    ages = {p.labels["table"]: p.value for p in by_type["freshness/age_hours"]}
    assert set(ages) == set(_tables(example))
    assert max(ages.values()) == 7.0
    assert [p.value for p in by_type["backup/hours_since_complete"]] == [5.5]
    assert [(p.labels, p.value) for p in by_type["evaluator/heartbeat"]] == [({}, 1)]


def test_metric_points_values_follow_the_records(example: Settings) -> None:
    assessments = _assess_all(example, _inputs(example))
    points = metric_points(assessments, example, backup_hours=None)
    sli = {p.labels["slo"]: p.value for p in _by_type(points)["slo/sli"]}
    # freshness: worst age 7.0; availability 1.0 (warn is not failing); ratio 13/14;
    # MAE 44/10 = 4.4; recovery: projected 0.5 h
    assert sli == {
        "data_freshness": 7.0,
        "pipeline_availability": 1.0,
        "phase_success_rate": round(13 / 14, 6),
        "model_accuracy": 4.4,
        "bigquery_recovery_time": 0.5,
    }
    good = {p.labels["slo"]: p.value for p in _by_type(points)["slo/good"]}
    assert good["phase_success_rate"] == 0  # 0.929 < 0.95 this interval
    assert good["model_accuracy"] == 1
    # no backup hours given and none in an availability row's detail: no point
    assert "backup/hours_since_complete" not in _by_type(points)


def test_metric_points_of_nothing_is_nothing(example: Settings) -> None:
    assert metric_points([], example, backup_hours=1.0) == []


def test_two_ratio_slos_on_one_phase_write_one_point_per_series() -> None:
    # a valid config: the same phase held to 95 % over 28 days and to 90 % over 7 days
    def ratio(name: str, objective: float, days: int) -> dict[str, Any]:
        return {
            "name": name,
            "description": "d",
            "objective": objective,
            "window": {"count": days, "period": "day"},
            "severity": "P2",
            "sli": {"kind": "ratio", "phases": ["phase_2"]},
        }

    settings = parse_settings(
        {
            "backups": {"bucket": BUCKET, "tables": ["nba_analytics.t1"]},
            "slos": {"objectives": [ratio("phase2_28d", 0.95, 28), ratio("phase2_7d", 0.9, 7)]},
        }
    )
    inputs = Inputs(at=AT, runs=[RunBucket(AT, "phase_2", 10, 9)])
    points = metric_points(_assess_all(settings, inputs), settings, backup_hours=None)
    series = [p.series for p in points]
    assert len(series) == len(set(series))


# --- history_job_id -----------------------------------------------------------------------

SIX = [
    "data_freshness",
    "pipeline_availability",
    "phase_success_rate",
    "model_accuracy",
    "incident_detection",
    "bigquery_recovery_time",
]


def test_history_job_id_is_deterministic_and_order_independent() -> None:
    job = history_job_id(AT, SIX)
    assert job == history_job_id(AT, list(reversed(SIX)))
    assert job == history_job_id(AT.astimezone(timezone(timedelta(hours=-5))), SIX)
    assert identifiers.job_id(job) == job  # a valid BigQuery job id
    assert job.startswith("opsuite_slo_20261201T101500Z_")


def test_history_job_id_differs_per_instant_and_per_slo_set() -> None:
    ids = {
        history_job_id(AT, SIX),
        history_job_id(AT + Q, SIX),
        history_job_id(AT, SIX[:5]),
        history_job_id(AT, ["data_freshness"]),
        history_job_id(AT, ["data_freshness", "model_accuracy"]),
    }
    assert len(ids) == 5


# --- event_body ---------------------------------------------------------------------------


def test_event_body_describes_the_change(example: Settings) -> None:
    slo = next(s for s in example.slos.objectives if s.name == "pipeline_availability")
    inputs = Inputs(at=AT, checks={"freshness": "pass", "backups": "fail", "dependencies": "pass"})
    result = compute(slo, inputs, freshness_configured=[], ratio_since=AT - Q)
    a = assess(
        slo,
        result,
        [],
        at=AT,
        cadence=Q,
        windows=burn_windows(example.slos.burn_rates),
        recorded_at=AT,
        detail=json.dumps(result.detail),
    )
    # a first bad slot: not yet a missed 99 % over 28 days (15 of 403 budget minutes),
    # but burning at 100x on every pair: one burn event
    assert [(t.event_type, t.condition) for t in a.transitions] == [("slo.burn_rate", "burn")]
    (burn,) = a.transitions
    breach = Transition("slo.breached", "sli", slo.name, AT)
    body = event_body(a, breach, "https://github.com/example/opsuite/blob/main/")
    assert body["type"] == "slo.breached"
    assert (body["slo"], body["severity"], body["condition"]) == (slo.name, "P0", "sli")
    assert body["at"] == AT.isoformat()
    assert body["window"] == "28d"
    assert body["sli"] == {"kind": "availability", "good": False, "value": 0.0}
    assert body["compliance"] == 0.0
    assert body["budget_remaining_minutes"] == pytest.approx(388.2)  # 403.2 - 15
    assert body["state"] == {
        "breaching": False,
        "exhausted": False,
        "burning": ["1h/15m", "6h/1h", "3d/6h"],
    }
    assert [b["window"] for b in body["burn_rates"]] == ["1h/15m", "6h/1h", "3d/6h"]
    assert all(b["firing"] and b["long"] == pytest.approx(100) for b in body["burn_rates"])
    assert body["detail"]["failing"] == ["backups"]
    assert (
        body["runbook"]
        == "https://github.com/example/opsuite/blob/main/docs/runbook.md#slo-breach-pipeline-availability"
    )
    assert (body["fingerprint"], body["event_id"]) == (breach.fingerprint, breach.event_id)
    assert body["burn_pair"] is None
    burn_body = event_body(a, burn)
    assert (burn_body["type"], burn_body["burn_pair"]) == ("slo.burn_rate", "1h/15m")
    assert (
        burn_body["runbook"] == "docs/runbook.md#slo-breach-pipeline-availability"
    )  # no base: the path as given
    json.dumps(burn_body)  # a JSON body as it stands


# --- publish_once: failures and takeovers ------------------------------------------------


def test_a_failed_publish_frees_the_claim_for_the_retry(store: LocalObjectStore) -> None:
    def fails() -> str:
        raise TransientError("503 UNAVAILABLE")

    with pytest.raises(TransientError):
        publish_once(store, BUCKET, BASE, fails, now=AT, clock=FakeClock().clock, nonce="d1")
    assert store.stat(BUCKET, f"{BASE}.claim.json") is None  # nothing published: no claim
    # the retry of the same delivery (or any other) publishes at once, without waiting
    fake = FakeClock()
    published = publish_once(store, BUCKET, BASE, Publishes("m-2"), now=AT, clock=fake.clock)
    assert (published.message_id, published.now) == ("m-2", True)
    assert fake.sleeps == []


def test_a_retry_with_the_delivery_nonce_recognises_its_own_claim(
    store: LocalObjectStore,
) -> None:
    _claim(store, AT, nonce="d1")  # written by this delivery's first try, then it lost track
    fake = FakeClock()
    published = publish_once(
        store, BUCKET, BASE, Publishes("m-3"), now=AT, clock=fake.clock, nonce="d1"
    )
    assert published.now and fake.sleeps == []


def test_two_takers_of_a_stale_claim_publish_once(store: LocalObjectStore) -> None:
    _claim(store, AT - timedelta(seconds=CLAIM_STALE_SECONDS + 1))
    first = Publishes("m-4")
    published = publish_once(store, BUCKET, BASE, first, now=AT, clock=FakeClock().clock)
    assert published.now and first.calls == 1
    assert store.stat(BUCKET, f"{BASE}.claim.1.json") is not None  # the next generation
    # a second taker that also found generation 0 stale: generation 1 is taken, and done
    second = publish_once(store, BUCKET, BASE, _never, now=AT, clock=FakeClock().clock)
    assert (second.message_id, second.now) == ("m-4", False)


def test_a_taker_that_loses_the_generation_race_waits(store: LocalObjectStore) -> None:
    _claim(store, AT - timedelta(seconds=CLAIM_STALE_SECONDS + 1))
    body = json.dumps({"claimed_at": AT.isoformat(), "nonce": "other-taker"}).encode()
    assert store.write_once(BUCKET, f"{BASE}.claim.1.json", body, "application/json")
    fake = FakeClock()
    with pytest.raises(TransientError):
        publish_once(store, BUCKET, BASE, _never, now=AT, clock=fake.clock)
    assert sum(fake.sleeps) >= WAIT_SECONDS - 0.2


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-04T10:00:00", datetime(2026, 11, 4, 10, tzinfo=UTC)),  # naive: UTC
        ("2026-11-04T10:00:00Z", datetime(2026, 11, 4, 10, tzinfo=UTC)),
        ("2026-11-04T12:00:00+02:00", datetime(2026, 11, 4, 10, tzinfo=UTC)),
        ("yesterday", None),
        (17, None),
    ],
)
def test_a_done_markers_instant_is_aware_or_none(
    store: LocalObjectStore, at: Any, expected: datetime | None
) -> None:
    marker = json.dumps({"message_id": "m-1", "at": at}).encode()
    store.write_once(BUCKET, f"{BASE}.done.json", marker, "application/json")
    published = publish_once(store, BUCKET, BASE, _never, now=AT, clock=FakeClock().clock)
    assert (published.message_id, published.now, published.at) == ("m-1", False, expected)
    if published.at is not None:
        assert published.at <= AT + timedelta(days=400)  # comparable with an aware instant
