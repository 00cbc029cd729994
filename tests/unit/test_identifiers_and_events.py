from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime

import pytest

from shared import identifiers
from shared.errors import BadInput
from shared.events import event_age_seconds, parse_backup_request, parse_pubsub_envelope
from shared.identifiers import TableRef
from shared.manifest import RunLayout, run_id_for


@pytest.mark.parametrize(
    "value",
    ["ds.t; DROP TABLE x", "`ds`.t", "ds.`t`", "../etc.passwd", "ds.t.u", "ds", "ds.", ".t",
     "ds.-t", "d s.t", "ds.t\n", "ds.t/..", "ds.t*", "ds.t@123", "ds.ta'ble", 'ds."t"', 42, None],
)  # fmt: skip
def test_hostile_table_references_are_rejected(value: object) -> None:
    with pytest.raises(BadInput):
        TableRef.parse(value)


def test_valid_table_reference() -> None:
    ref = TableRef.parse("nba_analytics.player_game_summary")
    assert (ref.dataset, ref.table, str(ref)) == (
        "nba_analytics", "player_game_summary", "nba_analytics.player_game_summary"
    )  # fmt: skip
    assert str(TableRef.parse("ds.table-with-dash")) == "ds.table-with-dash"


@pytest.mark.parametrize("name", ["a", "UPPER", "x" * 64, "goog-bucket", "a..b", "-x-"])
def test_bad_bucket_names(name: str) -> None:
    with pytest.raises(BadInput):
        identifiers.bucket_name(name)


def test_prefix_normalised_and_guarded() -> None:
    assert identifiers.object_prefix("backups//nightly/") == "backups/nightly"
    for bad in ["../x", "a/../b", "/abs", "a/./b"]:
        with pytest.raises(BadInput):
            identifiers.object_prefix(bad)


def _envelope(data: str, **message: object) -> dict[str, object]:
    return {"message": {"data": data, "messageId": "1", **message}, "subscription": "s"}


def test_empty_body_is_tonights_run() -> None:
    message = parse_pubsub_envelope(_envelope(""))
    assert parse_backup_request(message.data).model_dump() == {
        "action": "backup", "date": None, "tables": None, "dry_run": False, "run_id": None,
        "continuation": 0,
    }  # fmt: skip
    assert parse_backup_request(base64.b64decode("e30=")).date is None  # "{}"


def test_full_request() -> None:
    body = {"date": "2026-11-21", "tables": ["nba_analytics.player_game_summary"], "dry_run": True}
    request = parse_backup_request(json.dumps(body).encode())
    assert request.date == date(2026, 11, 21)
    assert request.dry_run is True
    assert request.table_refs() == [TableRef("nba_analytics", "player_game_summary")]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"dry_run": 1}', "dry_run"),
        (b'{"dry_run": "true"}', "dry_run"),
        (b'{"tables": "a.b"}', "tables"),
        (b'{"tables": []}', "at least one"),
        (b'{"tables": [1]}', "tables"),
        (b'{"date": "2026-13-01"}', "date"),
        (b'{"date": "tomorrow"}', "YYYY-MM-DD"),
        (b'{"date": 20261122}', "date"),
        (b'{"extra": true}', "unknown field"),
        (b'{"run_id": "x/../y"}', "run_id"),
        (b'{"continuation": -1}', "continuation"),
        (b"\xff\xfe", "utf-8"),
    ],
)
def test_bad_requests_say_what_was_expected(payload: bytes, message: str) -> None:
    with pytest.raises((BadInput, UnicodeDecodeError)) as info:
        parse_backup_request(payload)
    assert message.lower() in str(info.value).lower()


@pytest.mark.parametrize(
    "data",
    [None, "x", {"message": "x"}, {"message": {"data": 5}}, {"message": {"data": "%%%"}},
     {"message": {"data": "", "attributes": {"a": 1}}}, {"message": {"data": "", "publishTime": "yesterday"}},
     {"message": {"data": "", "publishTime": "0001-01-01T00:00:00+01:00"}}],
)  # fmt: skip
def test_bad_envelopes(data: object) -> None:
    with pytest.raises(BadInput):
        parse_pubsub_envelope(data)


def test_oversized_message_rejected() -> None:
    big = base64.b64encode(b"{" + b" " * 70_000 + b"}").decode()
    with pytest.raises(BadInput, match="larger than"):
        parse_pubsub_envelope(_envelope(big))


def test_event_age() -> None:
    message = parse_pubsub_envelope(_envelope("", publishTime="2026-11-22T09:30:00Z"))
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert event_age_seconds(message, now) == 3600


def test_run_ids_and_job_ids_are_deterministic() -> None:
    day = date(2026, 11, 22)
    assert run_id_for(day, None) == "20261122"
    subset = run_id_for(day, ["b.t", "a.t"])
    assert subset == run_id_for(day, ["a.t", "b.t", "a.t"])
    assert subset.startswith("20261122-") and subset != run_id_for(day, ["a.t"])
    layout = RunLayout("bkt", "backups", "20261122")
    ref = TableRef("nba_analytics", "player_game_summary")
    assert layout.job_id(ref, 1) == layout.job_id(ref, 1)
    assert layout.job_id(ref, 1) != layout.job_id(ref, 2)
    assert layout.job_id(ref, 1) != RunLayout("bkt", "other", "20261122").job_id(ref, 1)
    identifiers.job_id(layout.job_id(ref, 3))
    assert layout.destination_uri(ref, 2, "avro") == (
        "gs://bkt/backups/20261122/nba_analytics/player_game_summary/attempt-2/part-*.avro"
    )


def test_job_ids_of_lookalike_tables_differ() -> None:
    layout = RunLayout("bkt", "backups", "20261122")
    assert layout.job_id(TableRef("nba_raw", "games"), 1) != layout.job_id(
        TableRef("nba", "raw_games"), 1
    )
