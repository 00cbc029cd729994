"""``opsuite drill``: restore a sample of the newest backup into a scratch dataset and
prove it (rows and content against the source at the backup's instant); one record a
day. Exit codes: 0 passed, 2 failed."""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Subcommands,
    _print_json,
    _where_in,
    add_command,
)
from shared.composition import Adapters
from shared.config import Settings
from shared.identifiers import TableRef


def register(sub: Subcommands) -> None:
    d = add_command(
        sub,
        "drill",
        cmd_drill,
        help="restore drill: restore a sample of the newest backup, compare, record",
    )
    d.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="DATASET.TABLE",
        help="the sample (default: backups.drill.tables, else the smallest and the largest "
        "table under 256 MiB)",
    )
    d.add_argument("--dry-run", action="store_true", help="plan only; restore and write nothing")
    d.add_argument("--json", action="store_true", help="the drill record as JSON")


def drill_deps(settings: Settings, adapters: Adapters) -> Any:
    from shared.services.drill import DrillDeps

    return DrillDeps(settings.backups, adapters.warehouse, adapters.store, adapters.backend)


def cmd_drill(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.drill import describe, run_drill

    tables = [TableRef.parse(t) for t in args.table] or None
    outcome = run_drill(drill_deps(settings, adapters), tables=tables, dry_run=args.dry_run)
    item = outcome.plan if args.dry_run else outcome.record
    if args.json:
        key = "plan" if args.dry_run else "record"
        _print_json(
            {
                "outcome": outcome.outcome,
                "location": outcome.location,
                key: None if item is None else item.model_dump(mode="json"),
            }
        )
    else:
        if outcome.outcome == "already_done":
            print("the day's drill is already recorded (one a day): showing it")
        for line in describe(item) if item is not None else []:
            print(_where_in(settings, adapters, line))
        print(f"record          {_where_in(settings, adapters, outcome.location)}")
    if args.dry_run:
        return EXIT_OK
    return EXIT_OK if outcome.passed else EXIT_FAILED
