from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import fastavro
import pytest

from shared.avro import avro_schema, scan_avro
from shared.errors import VerificationError
from shared.models import SchemaField

SCHEMA = (
    SchemaField("id", "INT64", "REQUIRED"),
    SchemaField("d", "DATE"),
    SchemaField("ts", "TIMESTAMP"),
    SchemaField("n", "NUMERIC"),
    SchemaField("tags", "STRING", "REPEATED"),
    SchemaField(
        "rec", "RECORD", "NULLABLE", (SchemaField("a", "INT64"), SchemaField("dt", "DATETIME"))
    ),
)


def test_schema_matches_bigquery_logical_type_mapping() -> None:
    fields = {f["name"]: f["type"] for f in avro_schema(SCHEMA)["fields"]}
    assert fields["id"] == "long"
    assert fields["d"] == ["null", {"type": "int", "logicalType": "date"}]
    assert fields["ts"] == ["null", {"type": "long", "logicalType": "timestamp-micros"}]
    assert fields["n"] == [
        "null",
        {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 9},
    ]
    assert fields["tags"] == {"type": "array", "items": "string"}
    rec = fields["rec"][1]
    assert rec["type"] == "record"
    assert rec["fields"][1]["type"] == ["null", {"type": "string", "logicalType": "datetime"}]


def _file(rows: int, codec: str = "snappy", sync_interval: int = 1000) -> bytes:
    schema = fastavro.parse_schema(avro_schema(SCHEMA))
    records = [
        {"id": i, "d": date(2026, 1, 1), "ts": datetime(2026, 1, 1, tzinfo=UTC), "n": Decimal("1.5"),
         "tags": ["a"], "rec": {"a": i, "dt": "2026-01-01T00:00:00"}}
        for i in range(rows)
    ]  # fmt: skip
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec=codec, sync_interval=sync_interval)
    return buf.getvalue()


@pytest.mark.parametrize("codec", ["snappy", "deflate", "null"])
def test_scan_counts_rows_across_blocks(codec: str) -> None:
    raw = _file(5000, codec)
    stats = scan_avro(io.BytesIO(raw))
    assert stats.rows == 5000
    assert stats.blocks > 1
    assert stats.codec == codec
    assert stats.size == len(raw)
    assert len(list(fastavro.reader(io.BytesIO(raw)))) == 5000


def test_empty_file_has_zero_rows() -> None:
    assert scan_avro(io.BytesIO(_file(0))).rows == 0


def test_truncated_file_is_detected() -> None:
    raw = _file(5000)
    with pytest.raises(VerificationError):
        scan_avro(io.BytesIO(raw[: len(raw) - 7]))


def test_corrupt_sync_marker_is_detected() -> None:
    raw = bytearray(_file(5000))
    raw[-3] ^= 0xFF
    with pytest.raises(VerificationError, match="corrupt"):
        scan_avro(io.BytesIO(bytes(raw)))


def test_not_avro() -> None:
    with pytest.raises(VerificationError, match="not an Avro"):
        scan_avro(io.BytesIO(b"PAR1...."))
