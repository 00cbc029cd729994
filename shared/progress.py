"""Progress for long work: a redrawn bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from shared.manifest import TableResult


class TableProgress:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.label = label
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        with self._lock:
            self.total = total
            self.started = time.monotonic()
            if not self.tty:
                print(f"{self.label}: {total} tables", file=self.stream, flush=True)
            else:
                self._draw("")

    def _draw(self, last: str) -> None:
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        elapsed = time.monotonic() - self.started
        line = (
            f"\r{self.label} [{bar}] {self.done}/{self.total} "
            f"({self.failed} failed) {elapsed:5.1f}s {last[:40]:<40}"
        )
        self.stream.write(line)
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()

    def table_done(self, result: TableResult) -> None:
        self.report(result.source, result.status == "complete", result.rows)

    def report(self, name: str, ok: bool, rows: int | None) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if self.tty:
                self._draw(name)
            else:
                state = "ok" if ok else "FAILED"
                print(
                    f"  [{self.done}/{self.total}] {name}: {state}"
                    + (f" ({rows} rows)" if rows is not None else ""),
                    file=self.stream,
                    flush=True,
                )
