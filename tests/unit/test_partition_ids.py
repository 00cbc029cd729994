"""Partition predicates for tables that require a filter, and partition-id ordering."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.identifiers import TableRef
from shared.models import SchemaField, TableInfo

pytest.importorskip("duckdb")


def _info(**kwargs: object) -> TableInfo:
    fields = (
        SchemaField("id", "INT64"),
        SchemaField("day", "DATE"),
        SchemaField("at", "TIMESTAMP"),
        SchemaField("local_at", "DATETIME"),
    )
    return TableInfo(TableRef("ds", "t"), fields, 0, 0, datetime(2026, 1, 1, tzinfo=UTC),
                     **kwargs)  # type: ignore[arg-type]  # fmt: skip


def test_no_predicate_unless_the_table_requires_one() -> None:
    from shared.adapters.gcp.warehouse import all_partitions_predicate

    assert all_partitions_predicate(_info(time_partitioning={"field": "day"})) is None


@pytest.mark.parametrize(
    ("partitioning", "expected"),
    [
        ({"time_partitioning": {"type": "DAY", "field": "day"}},
         "(`day` IS NULL OR `day` >= DATE '0001-01-01')"),
        ({"time_partitioning": {"type": "HOUR", "field": "at"}},
         "(`at` IS NULL OR `at` >= TIMESTAMP '0001-01-01 00:00:00+00')"),
        ({"time_partitioning": {"type": "MONTH", "field": "local_at"}},
         "(`local_at` IS NULL OR `local_at` >= DATETIME '0001-01-01 00:00:00')"),
        ({"time_partitioning": {"type": "DAY"}},  # ingestion time: the pseudo column
         "(_PARTITIONTIME IS NULL OR _PARTITIONTIME >= TIMESTAMP '0001-01-01 00:00:00+00')"),
        ({"range_partitioning": {"field": "id", "range": {"start": "0", "end": "9",
                                                          "interval": "1"}}},
         "(`id` IS NULL OR `id` <= 9223372036854775807)"),
    ],
)  # fmt: skip
def test_the_predicate_covers_every_partition_on_the_partition_column_only(
    partitioning: dict[str, object], expected: str
) -> None:
    from shared.adapters.gcp.warehouse import all_partitions_predicate

    info = _info(require_partition_filter=True, **partitioning)

    assert all_partitions_predicate(info) == expected


@pytest.mark.parametrize(
    ("partitioning", "value", "expected"),
    [
        ({"type": "DAY"}, datetime(2026, 11, 28, 13, tzinfo=UTC), "20261128"),
        ({"type": "HOUR"}, datetime(2026, 11, 28, 13, tzinfo=UTC), "2026112813"),
        ({"type": "MONTH"}, datetime(2026, 11, 28, 13, tzinfo=UTC), "202611"),
        ({"type": "YEAR"}, datetime(2026, 11, 28, 13, tzinfo=UTC), "2026"),
    ],
)
def test_time_partition_ids_follow_the_partition_type(
    partitioning: dict[str, str], value: datetime, expected: str
) -> None:
    from shared.adapters.local.warehouse import time_partition_id

    assert time_partition_id(partitioning, value) == expected


def test_a_date_value_is_its_midnight() -> None:
    from shared.adapters.local.warehouse import time_partition_id

    assert time_partition_id({"type": "DAY"}, date(2026, 11, 28)) == "20261128"
    assert time_partition_id({"type": "HOUR"}, date(2026, 11, 28)) == "2026112800"
    assert time_partition_id({"type": "DAY"}, None) == "__NULL__"


def test_range_partition_ids_are_bucket_starts_inside_the_range() -> None:
    from shared.adapters.local.warehouse import range_partition_id

    spec = {"field": "b", "range": {"start": "-10", "end": "100", "interval": "20"}}
    assert range_partition_id(spec, 15) == "10"
    assert range_partition_id(spec, -10) == "-10"
    assert range_partition_id(spec, 99) == "90"
    assert range_partition_id(spec, 100) == "__UNPARTITIONED__"
    assert range_partition_id(spec, -11) == "__UNPARTITIONED__"
    assert range_partition_id(spec, None) == "__NULL__"
