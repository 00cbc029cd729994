"""``opsuite``: the suite from a terminal.

Exit codes scripts can rely on:
  0  success
  1  finished with problems (partial backup, verification findings, a table not restored)
  2  failed (no table backed up or restored)
  64 bad usage or input        75 transient failure: try again        78 configuration error
  141 the reader of the output went away (``opsuite ... | head``), as for any tool killed by
      SIGPIPE; the command itself had finished

One module per command family. A family module has ``register(sub)``, which adds its commands
with :func:`shared.cli.common.add_command` (binding each to its handler
``(settings, adapters, args) -> int``); adding a family is writing that module and listing it
in :data:`FAMILIES`. Shared helpers and the exit codes live in :mod:`shared.cli.common`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from shared.cli import alerts, backups, drill, health, report, sla
from shared.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_TRANSIENT,
    EXIT_USAGE,
    Family,
    Handler,
    _Parser,
    _settings,
    _where_in,
)
from shared.composition import build_adapters
from shared.config import DEFAULT_CONFIG_PATH, resolve_backend
from shared.errors import BadInput, ConfigError, OpsuiteError, TransientError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_TRANSIENT",
    "EXIT_USAGE",
    "FAMILIES",
    "main",
]

FAMILIES: tuple[Family, ...] = (backups, drill, health, sla, alerts, report)
"""The command families, in the order ``opsuite --help`` lists their commands."""


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="opsuite", description="Operations suite for a BigQuery data pipeline.")
    p.add_argument(
        "--config", help=f"config file (default: $OPSUITE_CONFIG or {DEFAULT_CONFIG_PATH})"
    )
    p.add_argument("--backend", choices=["local", "gcp"], help="adapters (default: local)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for family in FAMILIES:
        family.register(sub)
    backups.register_demo(sub)  # the tour across the families stays last in --help
    return p


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
        handler: Handler = args.handler  # bound by the family's register (set_defaults)
        return handler(settings, adapters, args)
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
