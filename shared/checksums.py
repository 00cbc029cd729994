"""CRC32C as GCS reports it (base64 of the big-endian 4-byte value)."""

from __future__ import annotations

import base64
from typing import BinaryIO

import google_crc32c


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode("ascii")


def crc32c_b64_stream(fo: BinaryIO, chunk_size: int = 1 << 20) -> str:
    checksum = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
    while chunk := fo.read(chunk_size):
        checksum.update(chunk)  # type: ignore[no-untyped-call]
    return base64.b64encode(checksum.digest()).decode("ascii")  # type: ignore[no-untyped-call]
