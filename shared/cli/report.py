"""``opsuite report``: the pipeline's health, SLOs, backups and incidents in one HTML file."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from shared.cli.common import EXIT_OK, Subcommands, add_command
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput


def register(sub: Subcommands) -> None:
    r = add_command(
        sub,
        "report",
        cmd_report,
        help="one self-contained HTML file: SLOs, budgets, freshness, backups, incidents",
    )
    r.add_argument("--days", type=int, default=28, help="the window, in days (default 28)")
    r.add_argument(
        "--output", default="report.html", help="the file to write (default report.html)"
    )
    r.add_argument(
        "--at",
        help="the report's instant, ISO 8601 with a zone (default now): the window ends there",
    )


def write_report(
    settings: Settings,
    adapters: Adapters,
    output: Path,
    days: int,
    at: datetime | None = None,
) -> dict[str, str]:
    """Gather, render and write the report (as of ``at``, default now); the sections that
    had no data, each with why."""
    from shared.report_assets import vega_script_bodies
    from shared.services.report import gather
    from shared.services.report_html import render

    data = gather(settings, adapters, now=at or datetime.now(UTC), days=days)
    page = render(data, vega_script_bodies())
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    # a lone surrogate (a name read from a record) can't be UTF-8: written as its \\u
    # escape, which JSON.parse reads back, instead of failing the whole report
    temporary.write_bytes(page.encode("utf-8", "backslashreplace"))
    temporary.replace(output)  # a reader never sees half a report
    return data.missing()


def cmd_report(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    if args.days < 1:
        raise BadInput(f"--days must be at least 1, got {args.days}")
    at = None
    if args.at is not None:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise BadInput(f"--at {args.at!r} is not an ISO 8601 instant") from None
        if at.tzinfo is None:
            raise BadInput(f"--at {args.at!r} needs a time zone (e.g. +00:00 or Z)")
    output = Path(args.output)
    started = time.monotonic()
    missing = write_report(settings, adapters, output, args.days, at)
    size = output.stat().st_size
    print(f"report: {output} ({size / 1e6:.2f} MB, {time.monotonic() - started:.1f} s)")
    for name, why in missing.items():
        print(f"  no data: {name}: {why}", file=sys.stderr)
    return EXIT_OK
