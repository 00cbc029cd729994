"""What every ``opsuite`` command family shares: exit codes, settings loading, showing
``gs://`` locations where they really are, JSON output, progress lines, colours, and the
small registration types a family module uses (see :mod:`shared.cli`)."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, Protocol, TextIO, TypeAlias, cast

from shared.composition import Adapters, LocalPaths
from shared.config import DEFAULT_CONFIG_PATH, Settings, load_settings
from shared.errors import BadInput, NotFound
from shared.manifest import CLAIM, MANIFEST, RunLayout, is_run_id
from shared.progress import TableProgress

EXIT_OK, EXIT_PROBLEMS, EXIT_FAILED = 0, 1, 2
EXIT_USAGE, EXIT_TRANSIENT, EXIT_CONFIG = 64, 75, 78
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell shows for a writer whose reader left
EXAMPLE_CONFIG = "config/opsuite.example.yaml"

Handler: TypeAlias = Callable[[Settings, Adapters, argparse.Namespace], int]
"""A command: runs with the loaded settings and built adapters, returns the exit code."""

Subcommands: TypeAlias = "argparse._SubParsersAction[_Parser]"
"""What ``add_subparsers`` returns: where a family adds its commands."""


class Family(Protocol):
    """A command family module: ``register`` adds its commands to ``opsuite``."""

    def register(self, sub: Subcommands) -> None: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def add_command(sub: Subcommands, name: str, handler: Handler, *, help: str) -> _Parser:
    """Add command ``name`` to ``sub``, run by ``handler``; returns its parser for arguments."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(handler=handler)
    return parser


def add_group(sub: Subcommands, name: str, *, help: str) -> Subcommands:
    """Add ``name`` whose own subcommands (``opsuite NAME list``) are added to what it returns."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)


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


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config
    if (
        path is None
        and not Path(DEFAULT_CONFIG_PATH).exists()
        and Path(EXAMPLE_CONFIG).exists()
        and "OPSUITE_CONFIG" not in os.environ
    ):
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


_COLOURS = {"pass": "\033[32m", "warn": "\033[33m", "fail": "\033[31m"}
