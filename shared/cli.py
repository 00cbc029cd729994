"""``opsuite``: the suite from a terminal.

Exit codes scripts can rely on:
  0  success
  1  finished with problems (partial backup, verification findings, a table not restored)
  2  failed (no table backed up or restored)
  64 bad usage or input        75 transient failure: try again        78 configuration error
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from shared.composition import Adapters, build_adapters
from shared.config import DEFAULT_CONFIG_PATH, Settings, load_settings, resolve_backend
from shared.errors import BadInput, ConfigError, OpsuiteError, TransientError
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.progress import TableProgress

EXIT_OK, EXIT_PROBLEMS, EXIT_FAILED = 0, 1, 2
EXIT_USAGE, EXIT_TRANSIENT, EXIT_CONFIG = 64, 75, 78
EXAMPLE_CONFIG = "config/opsuite.example.yaml"
DEMO_RESTORE_TABLE = "nba_analytics.player_game_summary"
DEMO_RESTORE_DATASET = "nba_restore_drill"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="opsuite", description="Operations suite for a BigQuery data pipeline.")
    p.add_argument(
        "--config", help=f"config file (default: $OPSUITE_CONFIG or {DEFAULT_CONFIG_PATH})"
    )
    p.add_argument("--backend", choices=["local", "gcp"], help="adapters (default: local)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("seed", help="build the demo warehouse (local backend)")
    s.add_argument("--json", action="store_true")

    b = sub.add_parser("backup", help="run the backup for a date (default: today, UTC)")
    b.add_argument("--date", help="YYYY-MM-DD")
    b.add_argument("--table", action="append", dest="tables", metavar="DATASET.TABLE")
    b.add_argument("--dry-run", action="store_true", help="show what would be exported")
    b.add_argument("--json", action="store_true")

    bl = sub.add_parser("backups", help="backup runs")
    bl_sub = bl.add_subparsers(dest="backups_command", required=True, parser_class=_Parser)
    ls = bl_sub.add_parser("list", help="list runs, newest first")
    ls.add_argument("--json", action="store_true")

    v = sub.add_parser("verify", help="re-check a run's files against its manifest")
    v.add_argument("run")
    v.add_argument("--json", action="store_true")

    r = sub.add_parser("restore", help="load a run's tables back into the warehouse")
    r.add_argument("--run", required=True)
    r.add_argument("--table", action="append", dest="tables", metavar="DATASET.TABLE")
    r.add_argument("--target-dataset", help="restore beside the originals, into this dataset")
    r.add_argument("--force", action="store_true", help="replace existing tables")
    r.add_argument("--dry-run", action="store_true", help="show what would be restored")
    r.add_argument("--json", action="store_true")

    h = sub.add_parser("health", help="is the pipeline healthy? exit 0 pass, 1 warn, 2 fail")
    h.add_argument("--mode", choices=["quick", "full"], default="quick")
    h.add_argument("--checks", help="comma-separated: freshness,backups,pipeline,dependencies")
    h.add_argument("--json", action="store_true", help="the application/health+json document")

    sub.add_parser("demo", help="seed + backup + verify + restore one table, then a summary")
    return p


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config
    if path is None and not Path(DEFAULT_CONFIG_PATH).exists() and Path(EXAMPLE_CONFIG).exists():
        import os

        if "OPSUITE_CONFIG" not in os.environ:
            print(f"note: {DEFAULT_CONFIG_PATH} not found, using {EXAMPLE_CONFIG}", file=sys.stderr)
            path = EXAMPLE_CONFIG
    return load_settings(path)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


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
    if args.date:
        body["date"] = args.date
    if args.tables:
        body["tables"] = args.tables
    request: BackupRequest = parse_backup_request(json.dumps(body).encode())
    progress = TableProgress("backup")
    outcome = run_backup_to_end(request, _backup_deps(settings, adapters, progress))
    if outcome.outcome == "dry_run":
        if args.json:
            _print_json({"run_id": outcome.run_id, "plan": [asdict(p) for p in outcome.plan]})
        else:
            print(f"dry run: run {outcome.run_id} would export {len(outcome.plan)} tables")
            for p in outcome.plan:
                print(f"  {p.source:<48} -> {p.destination}")
        return EXIT_OK
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
            print(f"  FAILED {t.source}: {t.error}")
        for e in manifest.errors:
            print(f"  ERROR {e}")
    return _outcome_code(manifest.status)


def cmd_backups_list(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.inventory import list_runs

    runs = list_runs(adapters.store, settings.backups.bucket, settings.backups.prefix)
    if args.json:
        _print_json([asdict(r) for r in runs])
        return EXIT_OK
    if not runs:
        print(f"no backup runs in gs://{settings.backups.bucket}/{settings.backups.prefix}/")
    for r in runs:
        print(
            f"{r.run_id:<20} {r.status:<12} {r.tables - r.failed:>3}/{r.tables:<3} tables "
            f"{r.rows:>10} rows {r.bytes / 1e6:>9.1f} MB  instant {r.instant}"
        )
    return EXIT_OK


def cmd_verify(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.inventory import verify_run

    report = verify_run(adapters.store, settings.backups.bucket, settings.backups.prefix, args.run)
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
                print(f"      {problem}")
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

    progress = TableProgress("restore")
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
    report = _restore(
        settings, adapters, args.run, args.tables, args.target_dataset, args.force, args.dry_run
    )
    if args.json:
        _print_json({"run_id": report.run_id, "ok": report.ok, "seconds": report.seconds,
                     "tables": [asdict(t) for t in report.tables]})  # fmt: skip
    else:
        for t in report.tables:
            line = f"  {t.source} -> {t.target}: {t.status}"
            if t.rows_restored is not None:
                line += f", {t.rows_restored}/{t.rows_expected} rows"
            if t.seconds is not None and t.status != "planned":
                line += f", {t.seconds:.2f}s"
            if t.error:
                line += f" ({t.error})"
            print(line)
        print(
            f"restore of run {report.run_id}: {'ok' if report.ok else 'FAILED'} "
            f"in {report.seconds:.2f}s"
        )
    failed = sum(t.status == "failed" for t in report.tables)
    if not failed:
        return EXIT_OK
    return EXIT_FAILED if failed == len(report.tables) else EXIT_PROBLEMS


def cmd_demo(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.events import BackupRequest
    from shared.services.backup import run_backup_to_end
    from shared.services.inventory import verify_run

    t0 = time.monotonic()
    print("1/4 seeding the demo warehouse")
    cmd_seed(settings, adapters, argparse.Namespace(json=False))
    print("\n2/4 nightly backup")
    outcome = run_backup_to_end(
        BackupRequest(), _backup_deps(settings, adapters, TableProgress("backup"))
    )
    manifest = outcome.manifest
    assert manifest is not None
    if outcome.outcome == "already_done":
        print(f"  tonight's run {manifest.run_id} already exists ({manifest.status}): reusing it")
    print("\n3/4 verifying the run's files")
    report = verify_run(
        adapters.store, settings.backups.bucket, settings.backups.prefix, manifest.run_id
    )
    print(f"\n4/4 restore drill: {DEMO_RESTORE_TABLE} -> {DEMO_RESTORE_DATASET}")
    restored = _restore(settings, adapters, manifest.run_id, [DEMO_RESTORE_TABLE],
                        DEMO_RESTORE_DATASET, True, False)  # fmt: skip
    table = restored.tables[0]
    b = settings.backups
    base = f"{settings.local.root}/gcs/{b.bucket}/{b.prefix}/{manifest.run_id}"
    print("\n== summary ==")
    print(f"backup run      {manifest.run_id}: {manifest.status}, "
          f"{len(manifest.tables) - len(manifest.failed)}/{len(manifest.tables)} tables, "
          f"{sum(t.rows or 0 for t in manifest.tables)} rows, "
          f"{sum(len(t.files) for t in manifest.tables)} files, "
          f"{sum(t.bytes for t in manifest.tables) / 1e6:.2f} MB (AVRO+SNAPPY)")  # fmt: skip
    print(f"manifest        {base}/_manifest.json" if adapters.backend == "local" else "")
    print(f"verification    {'all files check out' if report.ok else 'PROBLEMS found'}"
          f" ({sum(t.files for t in report.tables)} files re-read)")  # fmt: skip
    print(f"restore drill   {table.status}: {table.rows_restored}/{table.rows_expected} rows "
          f"in {table.seconds or 0:.2f}s (recovery time for one table)")  # fmt: skip
    print(f"total           {time.monotonic() - t0:.1f}s")
    print(
        "next            opsuite backups list | opsuite verify RUN | "
        "opsuite restore --run RUN --dry-run"
    )
    ok = manifest.status == "complete" and report.ok and restored.ok
    return EXIT_OK if ok else EXIT_PROBLEMS


_COLOURS = {"pass": "\033[32m", "warn": "\033[33m", "fail": "\033[31m"}


def cmd_health(settings: Settings, adapters: Adapters, args: argparse.Namespace) -> int:
    from shared.services.health import HealthDeps, parse_health_params, run_health

    params = {"mode": [args.mode]}
    if args.checks:
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


COMMANDS = {
    "health": cmd_health,
    "seed": cmd_seed,
    "backup": cmd_backup,
    "verify": cmd_verify,
    "restore": cmd_restore,
    "demo": cmd_demo,
}


def _configure_cli_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)

    class _Plain(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            fields = getattr(record, "fields", None)
            extra = f" {json.dumps(fields, default=str)}" if fields else ""
            return f"{record.levelname.lower()}: {record.getMessage()}{extra}"

    handler.setFormatter(_Plain())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_cli_logging(args.verbose)
    try:
        settings = _settings(args)
        adapters = build_adapters(settings, resolve_backend(args.backend))
    except ConfigError as exc:
        print(f"opsuite: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.command == "backups":
            return cmd_backups_list(settings, adapters, args)
        return COMMANDS[args.command](settings, adapters, args)
    except BadInput as exc:
        print(f"opsuite: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"opsuite: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TransientError as exc:
        print(f"opsuite: temporary failure, try again: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT
    except OpsuiteError as exc:
        print(f"opsuite: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        adapters.close()


if __name__ == "__main__":
    raise SystemExit(main())
