"""``opsuite health``: is the pipeline healthy? exit 0 pass, 1 warn, 2 fail."""

from __future__ import annotations

import argparse
import sys

from shared.cli.common import (
    _COLOURS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PROBLEMS,
    Subcommands,
    _print_json,
    add_command,
)
from shared.composition import Adapters
from shared.config import Settings


def register(sub: Subcommands) -> None:
    h = add_command(
        sub, "health", cmd_health, help="is the pipeline healthy? exit 0 pass, 1 warn, 2 fail"
    )
    h.add_argument("--mode", choices=["quick", "full"], default="quick")
    h.add_argument("--checks", help="comma-separated: freshness,backups,pipeline,dependencies")
    h.add_argument("--json", action="store_true", help="the application/health+json document")


def cmd_health(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.health import HealthDeps, parse_health_params, run_health

    params = {"mode": [args.mode]}
    if args.checks is not None:
        params["checks"] = [args.checks]
    request = parse_health_params(params)
    report = run_health(request, HealthDeps(settings, adapters.warehouse, adapters.store))
    if args.json:
        _print_json(report.document())
    else:
        colour = sys.stdout.isatty()

        def paint(status: str) -> str:
            text = f"{status.upper():<4}"
            return f"{_COLOURS[status]}{text}\033[0m" if colour else text

        print(f"{'check':<52} {'status':<6} {'observed':>14}  detail")
        for c in report.checks:
            observed = c.observed_value
            if c.observed_unit == "s" and isinstance(observed, int | float):
                shown = f"{observed / 3600:.1f} h"
            elif observed is None:
                shown = ""
            else:
                shown = f"{observed}{' ' + c.observed_unit if c.observed_unit else ''}"
            label = c.key if c.component_id in c.key else f"{c.key} ({c.component_id})"
            print(f"{label:<52} {paint(c.status)}   {shown:>14}  {c.output}")
            for error in c.details.get("errors", []):
                print(f"{'':<52}        {'':>14}  {error['processor']}: {error['message']}")
        print(f"overall: {paint(report.status)} ({request.mode} mode)")
    return {"pass": EXIT_OK, "warn": EXIT_PROBLEMS, "fail": EXIT_FAILED}[report.status]
