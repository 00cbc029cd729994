"""``opsuite sla ...`` and ``opsuite metrics ...``: the SLOs from a terminal.

``sla evaluate`` runs the evaluator's own code (the function's): record, write points,
publish state changes; ``--dry-run`` computes and shows without changing anything.
``sla status`` / ``sla history`` read the evaluations table; ``sla backfill``
reconstructs past slots from the warehouse. ``metrics list`` / ``metrics query`` read
the metric store (the local one, or Cloud Monitoring with ``--backend gcp``).
Exit codes: 0 every SLO ok, 1 some SLO breaching or unknown (``evaluate``, ``status``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    Subcommands,
    _print_json,
    add_command,
    add_group,
)
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput, ConfigError

_RED, _YELLOW, _GREEN, _DIM, _RESET = "\033[31m", "\033[33m", "\033[32m", "\033[2m", "\033[0m"


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value[:40]!r} is not a timestamp (e.g. 2026-12-01T10:15:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time zone, e.g. 2026-12-01T10:15:00Z")
    return moment.astimezone(UTC)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value[:20]!r} is not a number") from None
    if not 0 < number <= 400:
        raise argparse.ArgumentTypeError("expected more than 0 and at most 400")
    return number


def register(sub: Subcommands) -> None:
    group = add_group(sub, "sla", help="SLOs: evaluate, status, history, back-fill")
    e = add_command(group, "evaluate", cmd_evaluate, help="evaluate the SLOs now (or --at)")
    e.add_argument("--at", type=_timestamp, help="instant to evaluate (floored to the cadence)")
    e.add_argument("--slo", action="append", default=[], metavar="NAME", help="only this SLO")
    e.add_argument("--dry-run", action="store_true", help="compute and show; change nothing")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    s = add_command(group, "status", cmd_status, help="each SLO's newest evaluation")
    s.add_argument("--slo", action="append", default=[], metavar="NAME")
    s.add_argument("--json", action="store_true")
    h = add_command(group, "history", cmd_history, help="one SLO's evaluations")
    h.add_argument("name", help="SLO name")
    h.add_argument("--days", type=_positive, default=1.0, help="how far back (default 1)")
    h.add_argument("--json", action="store_true")
    b = add_command(group, "backfill", cmd_backfill, help="reconstruct past evaluations")
    b.add_argument("--days", type=_positive, help="how far back (default: the longest window)")
    b.add_argument("--slo", action="append", default=[], metavar="NAME")
    b.add_argument("--dry-run", action="store_true", help="compute; record and write nothing")
    b.add_argument("--json", action="store_true")

    m = add_group(sub, "metrics", help="the custom metrics the evaluator writes")
    add_command(m, "list", cmd_metrics_list, help="metric types, their labels and units")
    q = add_command(m, "query", cmd_metrics_query, help="points of one metric type")
    q.add_argument("type", help="e.g. slo/compliance or custom.googleapis.com/opsuite/...")
    q.add_argument("--hours", type=_positive, default=1.0, help="how far back (default 1)")
    q.add_argument("--json", action="store_true")


def _deps(settings: Settings, adapters: Adapters) -> Any:
    from shared.services.sla import SlaDeps

    return SlaDeps.of(settings, adapters)


def _colour() -> bool:
    return sys.stdout.isatty()


def _paint(text: str, colour: str) -> str:
    return f"{colour}{text}{_RESET}" if _colour() else text


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _bar(remaining: float | None, width: int = 12) -> str:
    if remaining is None:
        return " " * (width + 7)
    filled = max(0, min(width, round(max(0.0, remaining) * width)))
    colour = _GREEN if remaining > 0.5 else _YELLOW if remaining > 0 else _RED
    shown = f"{remaining * 100:5.0f}%"
    return _paint("█" * filled + "·" * (width - filled), colour) + f" {shown}"


def _state(assessment: Any) -> str:
    if assessment is None:
        return _paint("never evaluated", _DIM)
    r = assessment.record
    if not assessment.measured:
        return _paint("not measured", _DIM)
    words = []
    if r.breaching:
        words.append(_paint("BREACHING", _RED))
    if r.exhausted:
        words.append(_paint("budget spent", _RED))
    if r.burning:
        words.append(_paint("burning " + ",".join(r.burning), _YELLOW))
    if r.good is None:
        words.append(_paint("unknown", _YELLOW))
    return " ".join(words) or _paint("ok", _GREEN)


def _sli(record: Any) -> str:
    if record.value is None:
        if record.good is None:
            return "unknown"
        if record.kind == "ratio":
            return "no runs"
        return "bad" if record.good is False else "good"
    kind = record.kind
    if kind == "freshness":
        return f"{record.value:.1f} h"
    if kind == "recovery_time":
        return f"{record.value:.2f} h"
    if kind in ("ratio", "availability"):
        return _pct(record.value)
    return f"{record.value:.3f}"


def _burns(assessment: Any) -> str:
    parts = []
    for burn in assessment.burns:
        rate = burn.long_rate
        text = "—" if rate is None else f"{rate:.1f}×"
        parts.append(_paint(text, _RED) if burn.firing else text)
    return " ".join(parts)


def _table(statuses: list[Any]) -> None:
    header = (
        f"{'SLO':<24} {'objective':>9} {'SLI now':>10} {'compliance':>10}  "
        f"{'budget left':<19}  {'burn (long windows)':<20} state"
    )
    print(header)
    for status in statuses:
        a = status.assessment
        name, objective = status.slo.name, _pct(status.slo.objective, 1)
        if a is None:
            print(f"{name:<24} {objective:>9} {'—':>10} {'—':>10}  {'':<19}  {'':<20} {_state(a)}")
            continue
        r = a.record
        budget = _bar(r.budget_remaining) if a.measured else " " * 19
        print(
            f"{name:<24} {objective:>9} {_sli(r):>10} {_pct(r.compliance):>10}  "
            f"{budget}  {_burns(a) if a.measured else '':<20} {_state(a)}"
        )


def _assessment_json(a: Any) -> dict[str, Any]:
    from shared.services.sla import parse_detail

    r = a.record
    return {
        "slo": a.slo.name,
        "objective": a.slo.objective,
        "severity": a.slo.severity,
        "at": r.at.isoformat(),
        "kind": r.kind,
        "good": r.good,
        "value": r.value,
        "compliance": r.compliance,
        "budget_remaining": r.budget_remaining,
        "budget_remaining_minutes": a.shown_budget_minutes,
        "coverage": a.shown_coverage,
        "burn_rates": [
            {
                "long": b.long_rate,
                "short": b.short_rate,
                "threshold": b.window.rate,
                "firing": b.firing,
            }
            for b in a.burns
        ],
        "state": {"breaching": r.breaching, "exhausted": r.exhausted, "burning": list(r.burning)},
        "measured": a.measured,
        "detail": parse_detail(r),
    }


def cmd_evaluate(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.sla import SlaRequest, evaluate

    outcome = evaluate(
        SlaRequest(at=args.at, slos=tuple(args.slo), dry_run=args.dry_run),
        _deps(settings, adapters),
    )
    if args.json:
        _print_json(
            {
                "at": outcome.at.isoformat(),
                "dry_run": outcome.dry_run,
                "replayed": list(outcome.replayed),
                "late": outcome.late,
                "recorded": outcome.appended,
                "points": outcome.points,
                "metrics": None
                if outcome.metrics is None
                else {
                    "written": outcome.metrics.written,
                    "already_present": outcome.metrics.already_present,
                    "rejected": list(outcome.metrics.rejected),
                },
                "events": [
                    {
                        "type": e.transition.event_type,
                        "slo": e.transition.slo,
                        "condition": e.transition.condition,
                        "message_id": e.message_id,
                        "published_now": e.now,
                    }
                    for e in outcome.events
                ],
                "slos": [_assessment_json(a) for a in outcome.assessments],
                "notes": outcome.notes,
            }
        )
    else:
        from shared.services.sla import SloStatus

        print(
            f"evaluation at {outcome.at:%Y-%m-%d %H:%M}Z" + (" (dry run)" if args.dry_run else "")
        )
        _table([SloStatus(a.slo, a) for a in outcome.assessments])
        for event in outcome.events:
            t = event.transition
            verb = "published" if event.now else "already published"
            print(f"event {t.event_type} {t.slo} ({t.condition}): {verb} {event.message_id}")
        if outcome.metrics is not None:
            m = outcome.metrics
            rejected = f", {len(m.rejected)} rejected" if m.rejected else ""
            print(
                f"metrics: {m.written} points written, {m.already_present} already present"
                + rejected
            )
        for note in outcome.notes:
            print(f"note: {note}")
    problems = any(
        a.record.breaching or a.record.good is None for a in outcome.assessments if a.measured
    )
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_status(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.sla import current_status

    if adapters.history is None:
        raise ConfigError("this backend has no history table")
    statuses = current_status(settings, adapters.history, datetime.now(UTC), args.slo)
    if args.json:
        _print_json(
            [
                {"slo": s.slo.name, "evaluated": False}
                if s.assessment is None
                else _assessment_json(s.assessment)
                for s in statuses
            ]
        )
    else:
        _table(statuses)
        newest = max((s.assessment.record.at for s in statuses if s.assessment), default=None)
        if newest is not None:
            print(f"newest evaluation: {newest:%Y-%m-%d %H:%M}Z")
    problems = any(
        s.assessment is None
        or (
            s.assessment.measured
            and (s.assessment.record.breaching or s.assessment.record.good is None)
        )
        for s in statuses
    )
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_history(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.sla import parse_detail, slo_history

    if adapters.history is None:
        raise ConfigError("this backend has no history table")
    now = datetime.now(UTC)
    rows = slo_history(settings, adapters.history, args.name, now - timedelta(days=args.days), now)
    if args.json:
        _print_json(
            [
                {
                    "at": r.at.isoformat(),
                    "good": r.good,
                    "value": r.value,
                    "good_events": r.good_events,
                    "total_events": r.total_events,
                    "compliance": r.compliance,
                    "budget_remaining": r.budget_remaining,
                    "breaching": r.breaching,
                    "exhausted": r.exhausted,
                    "burning": list(r.burning),
                    "detail": parse_detail(r),
                }
                for r in rows
            ]
        )
        return EXIT_OK
    print(f"{'at (UTC)':<17} {'good':<7} {'SLI':>10} {'compliance':>10} {'budget':>8}  state")
    for r in rows:
        good = "unknown" if r.good is None else ("good" if r.good else "BAD")
        state = " ".join(
            w
            for w in (
                "breaching" if r.breaching else "",
                "budget-spent" if r.exhausted else "",
                ("burning " + ",".join(r.burning)) if r.burning else "",
            )
            if w
        )
        print(
            f"{r.at:%Y-%m-%d %H:%M} {good:<7} {_sli(r):>10} {_pct(r.compliance):>10} "
            f"{_pct(r.budget_remaining, 0):>8}  {state or 'ok'}"
        )
    print(f"{len(rows)} evaluations of {args.name} in the last {args.days:g} days")
    return EXIT_OK


def cmd_backfill(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.sla_backfill import backfill

    def progress(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    outcome = backfill(
        _deps(settings, adapters),
        days=args.days,
        names=args.slo,
        dry_run=args.dry_run,
        progress=progress,
    )
    summary = {
        "start": outcome.start.isoformat(),
        "end": outcome.end.isoformat(),
        "slots": outcome.slots,
        "slos": outcome.slos,
        "skipped": outcome.skipped_slos,
        "rows_computed": outcome.rows_written,
        "rows_kept": outcome.rows_kept,
        "load_jobs": outcome.load_jobs,
        "points_written": outcome.metrics.written,
        "points_already_present": outcome.metrics.already_present,
        "points_rejected": len(outcome.metrics.rejected),
        "dry_run": outcome.dry_run,
    }
    if args.json:
        _print_json(summary)
    else:
        verb = "would record" if args.dry_run else "recorded"
        print(
            f"back-filled {outcome.slots} slots ({outcome.start:%Y-%m-%d %H:%M}Z → "
            f"{outcome.end:%Y-%m-%d %H:%M}Z): {verb} {outcome.rows_written} rows in "
            f"{outcome.load_jobs} load jobs, kept {outcome.rows_kept}; "
            f"{outcome.metrics.written} metric points written (the last 25 h)"
        )
        for name, why in outcome.skipped_slos.items():
            print(f"not back-filled: {name}: {why}")
    return EXIT_OK


def _metric_type(value: str) -> str:
    from shared.metrics import BY_TYPE, PREFIX

    full = value if value.startswith(PREFIX) else PREFIX + value
    if full not in BY_TYPE:
        raise BadInput(
            f"{value[:80]!r} is not one of the suite's metrics (opsuite metrics list shows them)"
        )
    return full


def cmd_metrics_list(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.metrics import METRICS

    print(f"{'type':<58} {'value':<6} {'unit':<4} labels")
    for m in METRICS:
        print(f"{m.type:<58} {m.value_type:<6} {m.unit:<4} {','.join(m.labels) or '—'}")
        print(f"{'':<58} {_paint(m.description, _DIM)}")
    return EXIT_OK


def cmd_metrics_query(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    if adapters.metrics is None:
        raise ConfigError("this backend has no metric store")
    metric_type = _metric_type(args.type)
    now = datetime.now(UTC)
    points = adapters.metrics.query(metric_type, now - timedelta(hours=args.hours), now)
    if args.json:
        _print_json(
            [{"labels": dict(p.labels), "value": p.value, "at": p.at.isoformat()} for p in points]
        )
        return EXIT_OK
    for p in points:
        labels = ",".join(f"{k}={v}" for k, v in sorted(p.labels.items())) or "—"
        print(f"{p.at:%Y-%m-%d %H:%M:%S}Z  {labels:<48} {p.value}")
    print(f"{len(points)} points of {metric_type} in the last {args.hours:g} h")
    return EXIT_OK
