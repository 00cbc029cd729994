"""Publish a message once per key, however many deliveries try (the claim pattern).

Pub/Sub delivers at least once and a function may run twice at the same time. A
write-once claim object picks the one caller that publishes; a done marker follows
the publish. A caller that finds a fresh claim of someone else waits briefly for its
done marker, then raises TransientError (its delivery comes back later); a claim left
by a crash (older than ``stale_seconds`` without a marker) is published again: at
least once, never silently lost, and exactly once unless a publisher died between
publishing and writing its marker.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.errors import TransientError
from shared.ports import ObjectStore
from shared.retry import Clock

JSON = "application/json"
CLAIM_STALE_SECONDS = 600
WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class Published:
    message_id: str
    #: False: an earlier delivery had already published it (its message id)
    now: bool


def publish_once(
    store: ObjectStore,
    bucket: str,
    base: str,
    publish: Callable[[], str],
    *,
    now: datetime,
    clock: Clock,
    stale_seconds: float = CLAIM_STALE_SECONDS,
    wait_seconds: float = WAIT_SECONDS,
) -> Published:
    """Run ``publish`` (returns the message id) once for ``base`` (an object name
    without extension: ``<base>.claim.json`` and ``<base>.done.json`` are written)."""
    done, claim = f"{base}.done.json", f"{base}.claim.json"
    marker = store.stat(bucket, done)
    if marker is not None:
        return Published(_message_id(store, bucket, done), False)
    nonce = uuid.uuid4().hex
    body = json.dumps({"claimed_at": now.isoformat(), "nonce": nonce}).encode()
    if store.write_once(bucket, claim, body, JSON) is None:
        previous = json.loads(store.read(bucket, claim))
        if previous.get("nonce") != nonce:  # not our own write answered twice
            age = (now - datetime.fromisoformat(previous["claimed_at"])).total_seconds()
            if age < stale_seconds:
                until = clock.monotonic() + wait_seconds
                while clock.monotonic() < until:
                    if store.stat(bucket, done) is not None:
                        return Published(_message_id(store, bucket, done), False)
                    clock.sleep(0.2)
                raise TransientError(f"{base}: another delivery is publishing it; retry later")
    message_id = publish()
    store.write_once(bucket, done, json.dumps({"message_id": message_id}).encode(), JSON)
    return Published(message_id, True)


def _message_id(store: ObjectStore, bucket: str, done: str) -> str:
    try:
        return str(json.loads(store.read(bucket, done)).get("message_id", ""))
    except (ValueError, AttributeError):
        return ""
