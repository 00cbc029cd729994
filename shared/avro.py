"""Avro as BigQuery writes it: the schema mapping and a block-header reader.

``avro_schema`` produces the writer schema BigQuery uses for an export with
``use_avro_logical_types=True``; the local warehouse writes with it so that local
backups have the same shape as real ones. ``scan_avro`` counts rows by walking
block headers and seeking over the block data, so verification of an export reads
a few bytes per block instead of decoding the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from shared.errors import VerificationError
from shared.models import SchemaField

MAGIC = b"Obj\x01"
SYNC_SIZE = 16

_PRIMITIVES: dict[str, Any] = {
    "STRING": "string",
    "BYTES": "bytes",
    "INT64": "long",
    "FLOAT64": "double",
    "BOOL": "boolean",
    "DATE": {"type": "int", "logicalType": "date"},
    "TIME": {"type": "long", "logicalType": "time-micros"},
    "TIMESTAMP": {"type": "long", "logicalType": "timestamp-micros"},
    "DATETIME": {"type": "string", "logicalType": "datetime"},
    "NUMERIC": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 9},
    "BIGNUMERIC": {"type": "bytes", "logicalType": "decimal", "precision": 77, "scale": 38},
    "GEOGRAPHY": {"type": "string", "sqlType": "GEOGRAPHY"},
    "JSON": {"type": "string", "sqlType": "JSON"},
}


def _field_type(field: SchemaField, namespace: str) -> Any:
    if field.type == "RECORD":
        base: Any = {
            "type": "record",
            "name": field.name,
            "namespace": namespace,
            "fields": [_avro_field(f, f"{namespace}.{field.name}") for f in field.fields],
        }
    elif field.type in _PRIMITIVES:
        base = _PRIMITIVES[field.type]
        if field.type == "NUMERIC" and field.precision is not None:
            base = {**base, "precision": field.precision, "scale": field.scale or 0}
    else:
        raise ValueError(f"column {field.name}: type {field.type} has no Avro mapping")
    if field.mode == "REPEATED":
        return {"type": "array", "items": base}
    if field.mode == "REQUIRED":
        return base
    return ["null", base]


def _avro_field(field: SchemaField, namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": field.name, "type": _field_type(field, namespace)}
    if field.description:
        out["doc"] = field.description
    return out


def avro_schema(schema: Sequence[SchemaField]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Root",
        "fields": [_avro_field(f, "Root") for f in schema],
    }


@dataclass(frozen=True)
class AvroFileStats:
    rows: int
    blocks: int
    codec: str
    size: int


def _read_long(fo: BinaryIO) -> int:
    shift = 0
    accum = 0
    while True:
        byte = fo.read(1)
        if not byte:
            raise EOFError
        b = byte[0]
        accum |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise VerificationError("corrupt Avro varint")
    return (accum >> 1) ^ -(accum & 1)


def _read_bytes(fo: BinaryIO) -> bytes:
    length = _read_long(fo)
    data = fo.read(length)
    if len(data) != length:
        raise EOFError
    return data


def scan_avro(fo: BinaryIO, name: str = "<avro>") -> AvroFileStats:
    """Count rows and blocks of an Avro object container file by its block headers."""
    try:
        if fo.read(4) != MAGIC:
            raise VerificationError(f"{name}: not an Avro container file")
        metadata: dict[str, bytes] = {}
        while True:
            count = _read_long(fo)
            if count == 0:
                break
            if count < 0:
                _read_long(fo)  # byte size of the block, unused
                count = -count
            for _ in range(count):
                key = _read_bytes(fo).decode("utf-8")
                metadata[key] = _read_bytes(fo)
        sync = fo.read(SYNC_SIZE)
        rows = blocks = 0
        while True:
            head = fo.read(1)
            if not head:
                break
            fo.seek(-1, 1)
            block_rows = _read_long(fo)
            block_size = _read_long(fo)
            if block_rows < 0 or block_size < 0:
                raise VerificationError(f"{name}: corrupt block header")
            fo.seek(block_size, 1)
            if fo.read(SYNC_SIZE) != sync:
                raise VerificationError(f"{name}: block {blocks} is truncated or corrupt")
            rows += block_rows
            blocks += 1
        size = fo.tell()
    except EOFError:
        raise VerificationError(f"{name}: file ends in the middle of a block") from None
    codec = metadata.get("avro.codec", b"null").decode("ascii", "replace")
    return AvroFileStats(rows=rows, blocks=blocks, codec=codec, size=size)
