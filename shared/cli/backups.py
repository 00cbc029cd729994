"""``opsuite`` backup commands: seed, backup, backups list, verify, restore, demo."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PROBLEMS,
    Subcommands,
    _backups_location,
    _date_arg,
    _no_such_run,
    _print_json,
    _progress,
    _run_arg,
    _where,
    _where_in,
    add_command,
    add_group,
)
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput, NotFound
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.manifest import MANIFEST, RunLayout


def register(sub: Subcommands) -> None:
    """seed, backup, backups list, verify, restore (demo: :func:`register_demo`)."""
    s = add_command(sub, "seed", cmd_seed, help="build the demo warehouse (local backend)")
    s.add_argument("--json", action="store_true")

    b = add_command(
        sub, "backup", cmd_backup, help="run the backup for a date (default: today, UTC)"
    )
    b.add_argument("--date", type=_date_arg, help="YYYY-MM-DD")
    b.add_argument("--table", action="append", dest="tables", metavar="DATASET.TABLE")
    b.add_argument("--dry-run", action="store_true", help="show what would be exported")
    b.add_argument("--json", action="store_true")

    bl_sub = add_group(sub, "backups", help="backup runs")
    ls = add_command(bl_sub, "list", cmd_backups_list, help="list runs, newest first")
    ls.add_argument("--json", action="store_true")

    v = add_command(sub, "verify", cmd_verify, help="re-check a run's files against its manifest")
    v.add_argument("run", type=_run_arg)
    v.add_argument("--json", action="store_true")

    r = add_command(sub, "restore", cmd_restore, help="load a run's tables back into the warehouse")
    r.add_argument("--run", required=True, type=_run_arg)
    r.add_argument("--table", action="append", dest="tables", metavar="DATASET.TABLE")
    r.add_argument("--target-dataset", help="restore beside the originals, into this dataset")
    r.add_argument("--force", action="store_true", help="replace existing tables")
    r.add_argument("--dry-run", action="store_true", help="show what would be restored")
    r.add_argument("--json", action="store_true")


def register_demo(sub: Subcommands) -> None:
    """``demo``, the guided tour: registered after every family so it is listed last."""
    add_command(
        sub, "demo", cmd_demo, help="seed + backup + verify + restore one table, then a summary"
    )


def _outcome_code(status: str) -> int:
    return {"complete": EXIT_OK, "partial": EXIT_PROBLEMS, "failed": EXIT_FAILED}.get(
        status, EXIT_OK
    )


def cmd_seed(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.adapters.local.warehouse import LocalWarehouse
    from shared.services.seed import describe, seed_demo

    if not isinstance(adapters.warehouse, LocalWarehouse):
        raise BadInput("seed builds the demo on the local warehouse only (use --backend local)")
    seeded = seed_demo(adapters.warehouse)
    if args.json:
        _print_json(describe(seeded))
    else:
        for s in seeded:
            print(f"  {s.ref!s:<48} {s.rows:>7} rows  newest {s.newest:%Y-%m-%d %H:%M} UTC")
        print(f"seeded {len(seeded)} tables, {sum(s.rows for s in seeded)} rows")
    return EXIT_OK


def _backup_deps(settings: Settings, adapters: Adapters, progress: Any) -> Any:
    from shared.services.backup import BackupDeps

    return BackupDeps(
        settings=settings.backups,
        warehouse=adapters.warehouse,
        store=adapters.store,
        publisher=adapters.publisher,
        backend=adapters.backend,
        progress=progress,
    )


def cmd_backup(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.events import parse_backup_request
    from shared.services.backup import run_backup_to_end

    body: dict[str, Any] = {"dry_run": bool(args.dry_run)}
    if args.date is not None:
        body["date"] = args.date
    if args.tables:
        body["tables"] = args.tables
    request: BackupRequest = parse_backup_request(json.dumps(body).encode())
    progress = _progress("backup")
    outcome = run_backup_to_end(request, _backup_deps(settings, adapters, progress))
    if outcome.outcome == "dry_run":
        existing = outcome.manifest  # the run exists already: there is nothing to export
        if args.json:
            _print_json({"run_id": outcome.run_id, "plan": [asdict(p) for p in outcome.plan],
                         "rejected": [r.model_dump() for r in outcome.rejected],
                         "existing_status": existing.status if existing else None})  # fmt: skip
        elif existing is not None:
            print(
                f"dry run: run {existing.run_id} is already {existing.status} "
                f"({len(existing.tables)} tables); nothing to do"
            )
        else:
            print(f"dry run: run {outcome.run_id} would export {len(outcome.plan)} tables")
            for p in outcome.plan:
                print(f"  {p.source:<48} -> {_where(settings, adapters, p.destination)}")
            for r in outcome.rejected:  # would be failed tables of the run: never left out
                print(f"  CANNOT BACK UP {r.name}: {r.error}")
        return EXIT_PROBLEMS if outcome.rejected else EXIT_OK
    manifest = outcome.manifest
    assert manifest is not None
    if args.json:
        _print_json({"outcome": outcome.outcome, "manifest": manifest.model_dump(mode="json")})
    else:
        if outcome.outcome == "already_done":
            print(f"run {manifest.run_id} already finished ({manifest.status}); nothing to do")
        print(
            f"run {manifest.run_id}: {manifest.status} — "
            f"{len(manifest.tables) - len(manifest.failed)}/{len(manifest.tables)} tables, "
            f"{sum(t.rows or 0 for t in manifest.tables)} rows, "
            f"{sum(t.bytes for t in manifest.tables) / 1e6:.1f} MB "
            f"at {manifest.instant:%Y-%m-%d %H:%M:%S} UTC"
        )
        for t in manifest.failed:
            print(f"  FAILED {t.source}: {_where_in(settings, adapters, str(t.error))}")
        for e in manifest.errors:
            print(f"  ERROR {_where_in(settings, adapters, e)}")
    return _outcome_code(manifest.status)


def cmd_backups_list(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.inventory import list_runs

    runs = list_runs(adapters.store, settings.backups.bucket, settings.backups.prefix)
    if args.json:
        _print_json([asdict(r) for r in runs])
        return EXIT_OK
    if not runs:
        print(f"no backup runs in {_backups_location(settings, adapters)}")
    for r in runs:
        print(
            f"{r.run_id:<20} {r.status:<12} {r.tables - r.failed:>3}/{r.tables:<3} tables "
            f"{r.rows:>10} rows {r.bytes / 1e6:>9.1f} MB  instant {r.instant}"
        )
    return EXIT_OK


def cmd_verify(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.inventory import verify_run

    try:
        report = verify_run(
            adapters.store, settings.backups.bucket, settings.backups.prefix, args.run
        )
    except NotFound as exc:
        raise _no_such_run(settings, adapters, args.run, exc) from None
    if args.json:
        _print_json(
            {"run_id": report.run_id, "ok": report.ok, "tables": [asdict(t) for t in report.tables]}
        )
    else:
        for t in report.tables:
            state = "ok" if t.ok else "PROBLEM"
            print(
                f"  {t.source:<48} {state:<8} {t.files} files "
                f"{t.rows if t.rows is not None else '?'} rows"
            )
            for problem in t.problems:
                print(f"      {_where_in(settings, adapters, problem)}")
        print(f"run {report.run_id}: {'verified' if report.ok else 'verification found problems'}")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _restore(
    settings: Settings,
    adapters: Adapters,
    run: str,
    tables: Sequence[str] | None,
    target: str | None,
    force: bool,
    dry_run: bool,
) -> Any:
    from shared.services.restore import RestoreDeps, restore_run

    progress = _progress("restore")
    refs = [TableRef.parse(t) for t in tables] if tables else None
    deps = RestoreDeps(
        warehouse=adapters.warehouse,
        store=adapters.store,
        bucket=settings.backups.bucket,
        prefix=settings.backups.prefix,
        max_concurrent=settings.backups.max_concurrent_jobs,
        poll_interval=0.2 if adapters.backend == "local" else 2.0,
        on_start=progress.start,
        on_table=lambda t: progress.report(t.source, t.status != "failed", t.rows_restored),
    )
    return restore_run(run, deps, tables=refs, target_dataset=target, force=force, dry_run=dry_run)


def cmd_restore(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    try:
        report = _restore(
            settings, adapters, args.run, args.tables, args.target_dataset, args.force, args.dry_run
        )
    except NotFound as exc:
        raise _no_such_run(settings, adapters, args.run, exc) from None
    if args.json:
        _print_json({"run_id": report.run_id, "ok": report.ok, "dry_run": report.dry_run,
                     "refused": report.refused, "seconds": report.seconds, "notes": report.notes,
                     "tables": [asdict(t) for t in report.tables]})  # fmt: skip
    else:
        for t in report.tables:
            line = f"  {t.source} -> {t.target}: {t.status}"
            if t.rows_restored is not None:
                line += f", {t.rows_restored}/{t.rows_expected} rows"
            if t.seconds is not None and t.status not in ("planned", "refused"):
                line += f", {t.seconds:.2f}s"  # the table's own work, not its wait
            if t.error:
                line += f" ({_where_in(settings, adapters, t.error)})"
            print(line)
        for note in report.notes:
            print(f"  note: {note}")
        if report.dry_run:
            verdict = (
                "would be refused: pass --force to replace existing tables, "
                "or --target-dataset to restore beside them"
                if report.refused
                else ("would restore" if report.ok else "PROBLEMS found (see above)")
            )
            print(f"dry run of restoring run {report.run_id}: {verdict}")
        else:
            print(
                f"restore of run {report.run_id}: {'ok' if report.ok else 'FAILED'} "
                f"in {report.seconds:.2f}s"
            )
    if report.ok:
        return EXIT_OK
    failed = sum(t.status == "failed" for t in report.tables)
    return EXIT_FAILED if failed == len(report.tables) else EXIT_PROBLEMS


def cmd_demo(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.cli.drill import drill_deps
    from shared.events import BackupRequest
    from shared.services.backup import run_backup_to_end
    from shared.services.drill import describe, run_drill
    from shared.services.inventory import verify_run

    t0 = time.monotonic()
    steps = (7 if settings.alerting.route is not None else 6) if settings.slos.objectives else 4
    print(f"1/{steps} seeding the demo warehouse")
    cmd_seed(settings, adapters, argparse.Namespace(json=False))
    print(f"\n2/{steps} nightly backup")
    outcome = run_backup_to_end(
        BackupRequest(), _backup_deps(settings, adapters, _progress("backup"))
    )
    manifest = outcome.manifest
    assert manifest is not None
    if outcome.outcome == "already_done":
        print(f"  tonight's run {manifest.run_id} already exists ({manifest.status}): reusing it")
    print(f"\n3/{steps} verifying the run's files")
    report = verify_run(
        adapters.store, settings.backups.bucket, settings.backups.prefix, manifest.run_id
    )
    print(f"\n4/{steps} restore drill into {settings.backups.drill.scratch_dataset}")
    drilled = run_drill(drill_deps(settings, adapters))
    record = drilled.record
    assert record is not None
    if drilled.outcome == "already_done":
        print("  today's drill is already recorded (one a day): reusing it")
    for line in describe(record):
        print(f"  {_where_in(settings, adapters, line)}")
    evaluation = None
    if settings.slos.objectives:
        evaluation = _demo_slos(settings, adapters, steps)
        if settings.alerting.route is not None:
            _demo_alerts(settings, adapters, evaluation, steps)
    b = settings.backups
    layout = RunLayout(b.bucket, b.prefix, manifest.run_id)
    print("\n== summary ==")
    print(f"backup run      {manifest.run_id}: {manifest.status}, "
          f"{len(manifest.tables) - len(manifest.failed)}/{len(manifest.tables)} tables, "
          f"{sum(t.rows or 0 for t in manifest.tables)} rows, "
          f"{sum(len(t.files) for t in manifest.tables)} files, "
          f"{sum(t.bytes for t in manifest.tables) / 1e6:.2f} MB (AVRO+SNAPPY)")  # fmt: skip
    print(f"manifest        {_where(settings, adapters, layout.uri(layout.name(MANIFEST)))}")
    print(f"verification    {'all files check out' if report.ok else 'PROBLEMS found'}"
          f" ({sum(t.files for t in report.tables)} files re-read)")  # fmt: skip
    rows = sum(t.rows_restored or 0 for t in record.tables)
    expected = sum(t.rows_expected or 0 for t in record.tables)
    hours = record.projected_hours
    projected = (
        "?" if hours is None else f"{hours:.2f} h" if hours >= 0.1 else f"{hours * 3600:.1f} s"
    )
    print(f"restore drill   {'passed' if record.passed else 'FAILED'}: {rows}/{expected} rows, "
          f"content {'equal' if record.passed else 'see the record'}; "
          f"full restore projected at {projected}")  # fmt: skip
    print(f"drill record    {_where(settings, adapters, drilled.location)}")
    if evaluation is not None:
        breaching = evaluation.breaching
        print(f"SLOs            {len(evaluation.assessments)} evaluated, "
              f"{len(breaching)} breaching ({', '.join(breaching) or 'none'}), "
              f"{len(evaluation.events)} events on {settings.slos.alerts_topic}")  # fmt: skip
    from shared.cli.report import write_report

    report_path = Path(settings.local.root) / "report.html"
    report_started = time.monotonic()
    missing = write_report(settings, adapters, report_path, 28)
    absent = ", ".join(missing)
    print(f"report          {report_path} ({report_path.stat().st_size / 1e6:.2f} MB, "
          f"{time.monotonic() - report_started:.1f} s; open it in a browser)"
          + (f"; no data: {absent}" if missing else ""))  # fmt: skip
    print(f"total           {time.monotonic() - t0:.1f}s")
    print(
        "next            opsuite backups list | opsuite verify RUN | "
        "opsuite restore --run RUN --dry-run"
        + (" | opsuite sla status | opsuite sla history NAME" if evaluation else "")
        + " | opsuite report"
    )
    ok = manifest.status == "complete" and report.ok and record.passed
    return EXIT_OK if ok else EXIT_PROBLEMS


def _demo_slos(settings: Settings, adapters: Adapters, steps: int) -> Any:
    """Back-fill the SLO history from the seeded warehouse, evaluate now, show the table."""
    import base64

    from shared.cli.sla import _deps, _table
    from shared.services.sla import (
        SlaRequest,
        SloStatus,
        cadence_of,
        evaluate,
        evaluation_instant,
    )
    from shared.services.sla_backfill import backfill

    deps = _deps(settings, adapters)
    print(f"\n5/{steps} SLO history: back-filling every {settings.slos.cadence_minutes} min "
          "from the warehouse")  # fmt: skip
    filled = backfill(deps)
    print(f"  {filled.slots} slots from {filled.start:%Y-%m-%d %H:%M}Z: "
          f"{filled.rows_written} rows in {filled.load_jobs} load jobs "
          f"({filled.rows_kept} already recorded), {filled.metrics.written} metric points "
          "(Monitoring takes the last 25 h only)")  # fmt: skip
    for name, why in filled.skipped_slos.items():
        print(f"  not back-filled: {name}: {why}")
    previous = evaluation_instant(settings, deps.now()) - cadence_of(settings)
    print(f"\n6/{steps} evaluating the SLOs at {previous:%H:%M}Z (the last slot)")
    outcome = evaluate(SlaRequest(at=previous), deps)
    _table([SloStatus(a.slo, a) for a in outcome.assessments])
    for event in outcome.events:
        t = event.transition
        print(f"  event {t.event_type:<14} {t.slo} ({t.condition}) -> "
              f"{settings.slos.alerts_topic} {event.message_id}")  # fmt: skip
    bus = getattr(adapters.publisher, "messages", None)
    if callable(bus) and outcome.events:
        messages = bus(settings.slos.alerts_topic)
        breaches = [m for m in messages if m["attributes"].get("event_type") == "slo.breached"]
        shown = (breaches or messages)[-1]
        body = json.loads(base64.b64decode(shown["data"]))
        path = getattr(adapters.publisher, "path", None)
        where = f" ({path(settings.slos.alerts_topic)})" if callable(path) else ""
        print(f"  {shown['attributes']['event_type']} on the local bus{where}:\n"
              f"  {json.dumps(body)[:400]}...")  # fmt: skip
    return outcome


def _demo_alerts(settings: Settings, adapters: Adapters, evaluation: Any, steps: int) -> None:
    """Route the evaluation's events through the alert router to the local receivers; then a
    simulated fix, the next evaluation, and its resolutions routed the same way."""
    import base64
    from datetime import UTC, datetime

    from shared.alerting_config import FileConfig, Receiver
    from shared.cli.sla import _deps
    from shared.events import PubSubMessage
    from shared.services.alert_inputs import alert_from_message
    from shared.services.alert_router import RouterDeps, handle_alert
    from shared.services.sla import SlaRequest, evaluate

    # the production routes, decided exactly as configured; receivers whose secrets this
    # machine doesn't have deliver to local files of the same name instead
    secrets_dir = Path(settings.local.root) / "secrets"
    receivers = []
    for r in settings.alerting.receivers:
        remote = r.slack_configs or r.pagerduty_configs or r.webhook_configs
        # every secret it needs, a webhook's hmac_key_secret too: one missing and the
        # real receiver would fail every delivery of the demo
        if remote and not all((secrets_dir / n).is_file() for n in r.secret_names()):
            r = Receiver(name=r.name, file_configs=[FileConfig(path=f"alerts/{r.name}.jsonl")])
        receivers.append(r)
    alerting = settings.alerting.model_copy(update={"receivers": receivers})
    demo = settings.model_copy(update={"alerting": alerting})
    router = RouterDeps.of(demo, adapters)
    bus = getattr(adapters.publisher, "messages", None)
    if not callable(bus):
        return

    def route(events: Any, what: str) -> None:
        ids = {e.message_id for e in events}
        for m in bus(settings.slos.alerts_topic):
            if m["messageId"] not in ids:
                continue
            message = PubSubMessage(
                base64.b64decode(m["data"]), m["attributes"], m["messageId"], None
            )
            alert = alert_from_message(message, topic_kind="alerts", received_at=datetime.now(UTC))
            if alert is None:
                continue
            outcome = handle_alert(alert, router)
            for r in outcome.receivers:
                print(f"  {what:<9} {alert.labels.get('alertname', '')[:44]:<44} -> "
                      f"{r.receiver:<16} {r.result}")  # fmt: skip

    print(f"\n7/{steps} alert router: the events to their receivers "
          f"(local files under {Path(settings.local.root) / 'alerts'})")  # fmt: skip
    route(evaluation.events, "firing")
    # a simulated fix: the stale tables are reloaded (their metadata says so)
    fresh = next((a for a in evaluation.assessments if a.slo.name == "data_freshness"), None)
    touch = getattr(adapters.warehouse, "touch", None)
    if fresh is None or not callable(touch):
        return
    stale = json.loads(fresh.record.detail).get("stale", [])
    now = datetime.now(UTC)
    for table in stale:
        touch(TableRef.parse(table), now)
    print(f"  simulated fix: {', '.join(stale)} reloaded; evaluating the current slot")
    after = evaluate(SlaRequest(), _deps(settings, adapters))
    route(after.events, "resolved" if after.events else "")
    recovered = [
        e.transition.slo for e in after.events if e.transition.event_type == "slo.recovered"
    ]
    print(
        f"  recovered: {', '.join(recovered) or 'none'}; ledger: opsuite alerts log, "
        "what fires: opsuite alerts active"
    )
