"""``opsuite``: the suite from a terminal.

Exit codes scripts can rely on:
  0  success
  1  finished with problems (partial backup, verification findings, a table not restored)
  2  failed (no table backed up or restored)
  64 bad usage or input        75 transient failure: try again        78 configuration error
  141 the reader of the output went away (``opsuite ... | head``), as for any tool killed by
      SIGPIPE; the command itself had finished
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

from shared.composition import Adapters, LocalPaths, build_adapters
from shared.config import DEFAULT_CONFIG_PATH, Settings, load_settings, resolve_backend
from shared.errors import BadInput, ConfigError, NotFound, OpsuiteError, TransientError
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.manifest import CLAIM, MANIFEST, RunLayout, is_run_id
from shared.progress import TableProgress

EXIT_OK, EXIT_PROBLEMS, EXIT_FAILED = 0, 1, 2
EXIT_USAGE, EXIT_TRANSIENT, EXIT_CONFIG = 64, 75, 78
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell shows for a writer whose reader left
EXAMPLE_CONFIG = "config/opsuite.example.yaml"
DEMO_RESTORE_TABLE = "nba_analytics.player_game_summary"
DEMO_RESTORE_DATASET = "nba_restore_drill"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _date_arg(value: str) -> str:
    """``--date``: a real calendar date written YYYY-MM-DD; anything else is refused."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD (e.g. 2026-11-22), got {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD ({exc})") from None
    return value


def _run_arg(value: str) -> str:
    """A run id's shape is checked before it becomes an object name (``../x``, 300 chars)."""
    if not is_run_id(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not a run id (expected YYYYMMDD or YYYYMMDD-<8 hex>; "
            "see opsuite backups list)"
        )
    return value


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
    b.add_argument("--date", type=_date_arg, help="YYYY-MM-DD")
    b.add_argument("--table", action="append", dest="tables", metavar="DATASET.TABLE")
    b.add_argument("--dry-run", action="store_true", help="show what would be exported")
    b.add_argument("--json", action="store_true")

    bl = sub.add_parser("backups", help="backup runs")
    bl_sub = bl.add_subparsers(dest="backups_command", required=True, parser_class=_Parser)
    ls = bl_sub.add_parser("list", help="list runs, newest first")
    ls.add_argument("--json", action="store_true")

    v = sub.add_parser("verify", help="re-check a run's files against its manifest")
    v.add_argument("run", type=_run_arg)
    v.add_argument("--json", action="store_true")

    r = sub.add_parser("restore", help="load a run's tables back into the warehouse")
    r.add_argument("--run", required=True, type=_run_arg)
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


_GS_URI = re.compile(r"gs://[^\s'\"(),]+")


def _where(settings: Settings, adapters: Adapters, uri: str) -> str:
    """Where a ``gs://`` location really is for this backend: on disk for ``local``."""
    if adapters.backend != "local" or not uri.startswith("gs://"):
        return uri
    return f"{LocalPaths(Path(settings.local.root)).gcs}/{uri.removeprefix('gs://')}"


def _where_in(settings: Settings, adapters: Adapters, text: str) -> str:
    """``text`` with every ``gs://`` location in it shown as :func:`_where` shows it."""
    return _GS_URI.sub(lambda m: _where(settings, adapters, m.group(0)), text)


def _backups_location(settings: Settings, adapters: Adapters) -> str:
    b = settings.backups
    return _where(settings, adapters, f"gs://{b.bucket}/{b.prefix + '/' if b.prefix else ''}")


def _no_such_run(settings: Settings, adapters: Adapters, run_id: str, exc: NotFound) -> Exception:
    """A NotFound from verify/restore: bad input if it is the run the user named that is missing."""
    b = settings.backups
    layout = RunLayout(b.bucket, b.prefix, run_id)
    if adapters.store.stat(b.bucket, layout.name(MANIFEST)) is not None:
        return exc  # the run is there: something else is missing
    where = _backups_location(settings, adapters)
    if adapters.store.stat(b.bucket, layout.name(CLAIM)) is not None:
        return BadInput(
            f"backup run {run_id} has not finished (no manifest yet in {where}); "
            "see opsuite backups list"
        )
    return BadInput(f"no backup run {run_id} in {where}; see opsuite backups list")


class _ProgressStream(io.TextIOBase):
    """stderr for progress lines: once its reader has gone (``2>&1 | head``), progress goes
    nowhere instead of raising BrokenPipeError in the middle of a backup or restore."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone = True
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone = True

    def isatty(self) -> bool:
        return self._stream.isatty()


def _progress(label: str) -> TableProgress:
    return TableProgress(label, cast(TextIO, _ProgressStream(sys.stderr)))


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
    from shared.events import BackupRequest
    from shared.services.backup import run_backup_to_end
    from shared.services.inventory import verify_run

    t0 = time.monotonic()
    print("1/4 seeding the demo warehouse")
    cmd_seed(settings, adapters, argparse.Namespace(json=False))
    print("\n2/4 nightly backup")
    outcome = run_backup_to_end(
        BackupRequest(), _backup_deps(settings, adapters, _progress("backup"))
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
    """Run one command; a reader that goes away (``| head``) ends it quietly with 141."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here at the latest
    except BrokenPipeError:
        # Python docs, "Note on SIGPIPE" (library/signal.html): point stdout at devnull so
        # the interpreter's own flush at exit does not raise again, and exit non-zero.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
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
        print(f"opsuite: {_where_in(settings, adapters, str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"opsuite: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TransientError as exc:
        message = _where_in(settings, adapters, str(exc))
        print(f"opsuite: temporary failure, try again: {message}", file=sys.stderr)
        return EXIT_TRANSIENT
    except OpsuiteError as exc:
        print(f"opsuite: {_where_in(settings, adapters, str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        adapters.close()


if __name__ == "__main__":
    raise SystemExit(main())
