"""``opsuite alerts ...``: the alert router's configuration from a terminal.

``alerts route`` answers which receivers an alert with these labels would reach, in
order, like ``amtool config routes test`` (and, for each route, its group and timing,
and whether it is muted right now by a time interval). Exit codes: 0, 64 bad labels.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime
from typing import Any

from shared.cli.common import EXIT_OK, Subcommands, _print_json, add_command, add_group
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput
from shared.models import parse_utc_instant

_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=(.*)", re.DOTALL)


def register(sub: Subcommands) -> None:
    group = add_group(sub, "alerts", help="the alert router: routing, the ledger, what fires")
    r = add_command(
        group, "route", cmd_route, help="which receivers an alert would reach, in order"
    )
    r.add_argument(
        "--labels",
        default="",
        metavar="K=V,...",
        help="comma-separated labels, e.g. severity=P1,slo=data_freshness",
    )
    r.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="one label (repeatable)"
    )
    r.add_argument("--json", action="store_true", help='{"receivers": [...], "routes": [...]}')
    lg = add_command(group, "log", cmd_log, help="the notification ledger, newest last")
    lg.add_argument("--since", default="1d", metavar="DURATION", help="how far back (default 1d)")
    lg.add_argument("--json", action="store_true")
    ac = add_command(group, "active", cmd_active, help="what is firing now")
    ac.add_argument("--json", action="store_true")

    silence = add_group(sub, "silence", help="mute alerts by matchers for a while")
    sa = add_command(silence, "add", cmd_silence_add, help="add a silence")
    sa.add_argument("--matcher", action="append", default=[], required=True,
                    help='e.g. slo="data_freshness" (repeatable: all must match)')  # fmt: skip
    sa.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 2h")
    sa.add_argument("--comment", required=True, help="why (shown to the on-call)")
    sa.add_argument("--created-by", default=os.environ.get("USER", "opsuite"))
    sa.add_argument("--json", action="store_true")
    sl = add_command(silence, "list", cmd_silence_list, help="silences in force")
    sl.add_argument("--expired", action="store_true", help="also the expired ones")
    sl.add_argument("--json", action="store_true")
    se = add_command(silence, "expire", cmd_silence_expire, help="end a silence now")
    se.add_argument("id")


def parse_labels(comma_list: str, single: list[str]) -> dict[str, str]:
    """``k=v,k2=v2`` plus repeated ``k=v`` (a value with a comma goes in ``--label``)."""
    items = [p for p in comma_list.split(",") if p.strip()] if comma_list else []
    labels: dict[str, str] = {}
    for item in [*items, *single]:
        found = _LABEL.fullmatch(item.strip())
        if found is None:
            raise BadInput(
                f"label {item[:60]!r}: expected name=value (name: [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        name, value = found.groups()
        if name in labels and labels[name] != value:
            raise BadInput(f"label {name!r} given twice with different values")
        labels[name] = value
    return labels


def cmd_route(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.alert_routing import group_key, routes_for, time_muted

    labels = parse_labels(args.labels, args.label)
    alerting = settings.alerting
    if alerting.route is None:
        raise BadInput("no alerting.route is configured (see config/opsuite.example.yaml)")
    now = datetime.now(UTC)
    matches = routes_for(alerting, labels)
    routes = [
        {
            "receiver": m.receiver,
            "route": m.path,
            "route_id": m.route_id,
            "group_key": group_key(m, labels),
            "group_by": ["..."] if m.group_by_all else list(m.group_by),
            "group_wait": m.group_wait.total_seconds(),
            "group_interval": m.group_interval.total_seconds(),
            "repeat_interval": m.repeat_interval.total_seconds(),
            "muted_now": time_muted(alerting, m, now),
        }
        for m in matches
    ]
    if args.json:
        _print_json(
            {"labels": labels, "receivers": [m.receiver for m in matches], "routes": routes}
        )
        return EXIT_OK
    print(",".join(m.receiver for m in matches))
    for route in routes:
        muted = f"  (muted now: {route['muted_now']})" if route["muted_now"] else ""
        print(
            f"  {route['receiver']:<20} {route['route']:<28} group {route['group_key']}{muted}",
        )
    return EXIT_OK


def _router(settings: Settings, adapters: Adapters) -> Any:
    from shared.services.alert_router import RouterDeps

    return RouterDeps.of(settings, adapters)


def cmd_log(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.alerting_config import parse_duration
    from shared.services.alert_router import ledger_records

    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as exc:
        raise BadInput(f"--since {args.since[:20]!r}: {exc}") from None
    records = []
    for record in ledger_records(_router(settings, adapters)):
        when = parse_utc_instant(record.get("time") or record.get("notified_at"))
        if when is not None and when >= since:
            records.append(record)
    records.sort(key=lambda r: str(r.get("time") or ""))
    if args.json:
        _print_json(records)
        return EXIT_OK
    print(f"{'time (UTC)':<20} {'status':<10} {'receiver':<18} {'fingerprint':<12} "
          f"{'detect':>7}  source")  # fmt: skip
    for r in records:
        detection = r.get("detection_seconds")
        shown = "" if detection is None else f"{float(detection):.0f}s"
        when = parse_utc_instant(r.get("time"))
        print(
            f"{when:%Y-%m-%d %H:%M:%S} " if when else f"{'?':<20} ",
            end="",
        )
        print(
            f"{r.get('status')!s:<10} {r.get('receiver')!s:<18} "
            f"{str(r.get('fingerprint'))[:12]:<12} {shown:>7}  "
            f"{r.get('source')}:{r.get('source_id')} {r.get('reason') or ''}"
        )
    print(f"{len(records)} ledger records since {since:%Y-%m-%d %H:%M}Z")
    return EXIT_OK


def cmd_active(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.alert_router import active_alerts, alert_to_json

    firing = [a for a in active_alerts(_router(settings, adapters)) if a.alert.status == "firing"]
    firing.sort(key=lambda a: (a.alert.severity, a.alert.starts_at))
    if args.json:
        _print_json([alert_to_json(a.alert) for a in firing])
        return EXIT_OK
    for a in firing:
        alert = a.alert
        name = alert.labels.get("alertname", alert.fingerprint[:12])
        print(f"{alert.severity}  {alert.starts_at:%Y-%m-%d %H:%M}Z  {name}  "
              f"{alert.annotations.get('summary', '')[:100]}")  # fmt: skip
    print(f"{len(firing)} alerts firing")
    return EXIT_OK


def _silence_json(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [str(m) for m in s.matchers],
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "comment": s.comment,
        "created_by": s.created_by,
    }


def cmd_silence_add(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.alert_silences import SilenceRequest, add_silence

    silence = add_silence(
        _router(settings, adapters),
        SilenceRequest(tuple(args.matcher), args.duration, args.comment, args.created_by),
    )
    if args.json:
        _print_json(_silence_json(silence))
    else:
        print(f"silence {silence.id} until {silence.ends_at:%Y-%m-%d %H:%M}Z: "
              f"{', '.join(args.matcher)}")  # fmt: skip
    return EXIT_OK


def cmd_silence_list(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.alert_silences import list_silences

    found = list_silences(_router(settings, adapters), expired=args.expired)
    if args.json:
        _print_json([_silence_json(s) for s in found])
        return EXIT_OK
    now = datetime.now(UTC)
    for s in found:
        state = "active" if s.active_at(now) else ("expired" if s.ends_at <= now else "pending")
        print(f"{s.id}  {state:<8} until {s.ends_at:%Y-%m-%d %H:%M}Z  "
              f"{', '.join(str(m) for m in s.matchers)}  {s.comment}")  # fmt: skip
    print(f"{len(found)} silences")
    return EXIT_OK


def cmd_silence_expire(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.alert_silences import expire_silence

    silence = expire_silence(_router(settings, adapters), args.id)
    print(f"silence {silence.id} expired at {silence.ends_at:%Y-%m-%d %H:%M:%S}Z")
    return EXIT_OK
