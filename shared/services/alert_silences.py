"""Silences: add, list, expire (``opsuite silence ...``), in the router's own store.

Stored as ``_opsuite/alerts/silences/<id>.json`` (:data:`alert_router.SILENCES_PREFIX`)
with ``{id, matchers, starts_at, ends_at, comment, created_by}``; the router records the
alerts a silence mutes as ``suppressed`` (never dropped) and the tick notifies them once
the silence is over. Expiring rewrites ``ends_at`` to now by compare-and-swap.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from shared.alerting_config import parse_duration, parse_matcher
from shared.errors import BadInput, NotFound, TransientError
from shared.services.alert_router import SILENCES_PREFIX, RouterDeps, Silence

JSON = "application/json"
MAX_SILENCE = timedelta(days=90)


@dataclass(frozen=True)
class SilenceRequest:
    matchers: tuple[str, ...]
    duration: str  # Prometheus duration: 30m, 2h, 1d
    comment: str
    created_by: str


def _name(silence_id: str) -> str:
    return f"{SILENCES_PREFIX}{silence_id}.json"


def _body(s: Silence, matchers: list[str]) -> bytes:
    return json.dumps(
        {
            "id": s.id,
            "matchers": matchers,
            "starts_at": s.starts_at.isoformat(),
            "ends_at": s.ends_at.isoformat(),
            "comment": s.comment,
            "created_by": s.created_by,
        },
        indent=2,
    ).encode()


def add_silence(deps: RouterDeps, request: SilenceRequest) -> Silence:
    if not request.matchers:
        raise BadInput("a silence needs at least one --matcher (it would mute everything)")
    for text in request.matchers:
        try:
            parse_matcher(text)
        except ValueError as exc:
            raise BadInput(f"matcher {text[:80]!r}: {exc}") from None
    parsed = [parse_matcher(m) for m in request.matchers]
    if all(m.matches("") for m in parsed):
        # as Alertmanager: a silence whose matchers all match the empty string would mute
        # every alert (team="", severity!="P9", alertname=~".*")
        raise BadInput(
            "at least one matcher must not match an empty label value "
            "(these would silence every alert)"
        )
    if not request.comment.strip():
        raise BadInput("a silence needs a --comment saying why (it is shown to the on-call)")
    try:
        length = parse_duration(request.duration)
    except ValueError as exc:
        raise BadInput(f"--for {request.duration[:20]!r}: {exc}") from None
    if not timedelta(0) < length <= MAX_SILENCE:
        raise BadInput(f"--for must be more than 0 and at most {MAX_SILENCE.days} days")
    now = deps.now()
    silence = Silence(
        id=uuid.uuid4().hex[:16],
        matchers=tuple(parse_matcher(m) for m in request.matchers),
        starts_at=now,
        ends_at=now + length,
        comment=request.comment.strip()[:1000],
        created_by=request.created_by[:200],
    )
    created = deps.store.write_once(
        deps.bucket, _name(silence.id), _body(silence, list(request.matchers)), JSON
    )
    if created is None:
        raise TransientError("a silence with that id exists already; try again")
    return silence


def list_silences(deps: RouterDeps, *, expired: bool = False) -> list[Silence]:
    from shared.services.alert_router import silences

    now = deps.now()
    found = [s for s in silences(deps) if expired or now < s.ends_at]
    return sorted(found, key=lambda s: (s.ends_at, s.id))


def expire_silence(deps: RouterDeps, silence_id: str) -> Silence:
    if not silence_id.isalnum() or len(silence_id) > 64:
        raise BadInput(f"{silence_id[:40]!r} is not a silence id (opsuite silence list shows them)")
    for _ in range(10):
        current = deps.store.read_versioned(deps.bucket, _name(silence_id))
        if current is None:
            raise NotFound(f"no silence {silence_id} (opsuite silence list shows them)")
        raw, generation = current
        body = json.loads(raw)
        silence = Silence.from_json(body)
        now = deps.now()
        if silence.ends_at <= now:
            return silence  # expired already: nothing to do
        ended = Silence(silence.id, silence.matchers, silence.starts_at, now,
                        silence.comment, silence.created_by)  # fmt: skip
        written = deps.store.write_if_generation(
            deps.bucket, _name(silence_id), _body(ended, list(body["matchers"])), JSON, generation
        )
        if written is not None:
            return ended
    raise TransientError(f"silence {silence_id} kept changing while expiring it; try again")
