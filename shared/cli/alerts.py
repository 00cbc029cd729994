"""``opsuite alerts ...``: the alert router's configuration from a terminal.

``alerts route`` answers which receivers an alert with these labels would reach, in
order, like ``amtool config routes test`` (and, for each route, its group and timing,
and whether it is muted right now by a time interval). Exit codes: 0, 64 bad labels.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from shared.cli.common import EXIT_OK, Subcommands, _print_json, add_command, add_group
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput

_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=(.*)", re.DOTALL)


def register(sub: Subcommands) -> None:
    group = add_group(sub, "alerts", help="the alert router: routing")
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
