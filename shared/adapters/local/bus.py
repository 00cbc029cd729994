"""A local message bus: each topic is ``<root>/<topic>.jsonl``, one message per line.

Lines are appended under an exclusive ``flock`` so concurrent publishers (threads or
processes) never interleave. The line format mirrors a Pub/Sub message.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared import identifiers


class LocalBus:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, topic: str) -> Path:
        return self.root / f"{identifiers.topic_id(topic)}.jsonl"

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        path = self.path(topic)
        path.parent.mkdir(parents=True, exist_ok=True)
        message_id = uuid.uuid4().hex
        line = json.dumps(
            {
                "messageId": message_id,
                "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "attributes": dict(attributes),
                "data": base64.b64encode(data).decode("ascii"),
            }
        )
        with path.open("a", encoding="utf-8") as fo:
            fcntl.flock(fo, fcntl.LOCK_EX)
            try:
                fo.write(line + "\n")
                fo.flush()
            finally:
                fcntl.flock(fo, fcntl.LOCK_UN)
        return message_id

    def messages(self, topic: str) -> list[dict[str, Any]]:
        """Every message published to ``topic`` so far, oldest first."""
        path = self.path(topic)
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as fo:
            return [json.loads(line) for line in fo if line.strip()]
