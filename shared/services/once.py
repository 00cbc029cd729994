"""Publish a message once per key, however many deliveries try (the claim pattern).

Pub/Sub delivers at least once and a function may run twice at the same time. A
write-once claim object picks the one caller that publishes; a done marker follows
the publish. A caller that finds a fresh claim of someone else waits briefly for its
done marker, then raises TransientError (its delivery comes back later). A claim
left by a crash (older than ``stale_seconds`` without a marker) is taken over by
writing the next claim generation write-once (``<base>.claim.1.json``, ...), so of two
callers that find it stale exactly one publishes. A publish that fails deletes its
own claim, so the retry (or the next delivery) claims again at once. Exactly once,
unless a publisher dies between publishing and writing its marker: then at least once.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import NotFound, OpsuiteError, TransientError
from shared.models import parse_utc_instant
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
    #: when it was published (the ``now`` of the delivery that did; None: a marker written
    #: before this was recorded)
    at: datetime | None = None


def new_nonce() -> str:
    """One per delivery: retries of the same delivery recognise their own claim."""
    return uuid.uuid4().hex


def _claim_name(base: str, generation: int) -> str:
    return f"{base}.claim.json" if generation == 0 else f"{base}.claim.{generation}.json"


def publish_once(
    store: ObjectStore,
    bucket: str,
    base: str,
    publish: Callable[[], str],
    *,
    now: datetime,
    clock: Clock,
    nonce: str | None = None,
    stale_seconds: float = CLAIM_STALE_SECONDS,
    wait_seconds: float = WAIT_SECONDS,
) -> Published:
    """Run ``publish`` (returns the message id) once for ``base`` (an object name
    without extension: claims ``<base>.claim[.N].json``, marker ``<base>.done.json``).
    ``nonce``: the caller's delivery (pass the same one to every retry)."""
    done = f"{base}.done.json"
    if store.stat(bucket, done) is not None:
        return _published(store, bucket, done)
    nonce = nonce or new_nonce()
    body = json.dumps({"claimed_at": now.isoformat(), "nonce": nonce}).encode()
    claims = sorted(
        (int(m.group(1) or 0), o.name)
        for o in store.list(bucket, f"{base}.claim")
        if (m := re.fullmatch(re.escape(base) + r"\.claim(?:\.(\d{1,6}))?\.json", o.name))
    )
    generation = claims[-1][0] if claims else 0
    name = _claim_name(base, generation)
    if store.write_once(bucket, name, body, JSON) is None:
        held = _held_claim(store, bucket, name)
        if held is None and store.write_once(bucket, name, body, JSON) is None:
            # released (a failed send deletes its claim) and taken again since
            raise TransientError(f"{base}: another delivery is publishing it; retry later")
        # not our own claim (a retry of ours finds its own)
        if held is not None and held.get("nonce") != nonce:
            age = _age_seconds(held, now)
            taken = False
            if age >= stale_seconds:
                # a crashed claimant: take over with the next generation, write-once
                name = _claim_name(base, generation + 1)
                taken = store.write_once(bucket, name, body, JSON) is not None
            if not taken:
                until = clock.monotonic() + wait_seconds
                while clock.monotonic() < until:
                    if store.stat(bucket, done) is not None:
                        return _published(store, bucket, done)
                    clock.sleep(0.2)
                raise TransientError(f"{base}: another delivery is publishing it; retry later")
    try:
        message_id = publish()
    except BaseException:
        with contextlib.suppress(OpsuiteError, OSError):
            store.delete(bucket, name)  # nothing published: let the retry claim at once
        raise
    marker = {"message_id": message_id, "at": now.isoformat()}
    store.write_once(bucket, done, json.dumps(marker).encode(), JSON)
    return Published(message_id, True, now)


def _held_claim(store: ObjectStore, bucket: str, name: str) -> dict[str, Any] | None:
    """The claim that kept ours from being written, or None if it is gone already (its
    delivery failed and released it between our write and this read)."""
    try:
        held = json.loads(store.read(bucket, name))
    except NotFound:
        return None
    return held if isinstance(held, dict) else {}


def _age_seconds(claim: dict[str, Any], now: datetime) -> float:
    """How old a claim is; one that doesn't say when it was made counts as stale."""
    try:
        claimed_at = datetime.fromisoformat(str(claim["claimed_at"]))
        return (now - claimed_at).total_seconds()
    except (KeyError, ValueError, TypeError, OverflowError):
        return float("inf")


def _published(store: ObjectStore, bucket: str, done: str) -> Published:
    """What an earlier delivery's done marker says it published (and when)."""
    try:
        body = json.loads(store.read(bucket, done))
    except (ValueError, NotFound):
        return Published("", False)
    if not isinstance(body, dict):
        return Published("", False)
    # lenient and always aware: a marker without an offset (or with a bad one) must not
    # make a caller's comparison with an aware instant raise
    return Published(str(body.get("message_id", "")), False, parse_utc_instant(body.get("at")))
