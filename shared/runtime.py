"""Per-process wiring for the deployed functions, built on first use (lazy globals).

Reads ``$OPSUITE_CONFIG`` and ``$OPSUITE_BACKEND`` when a function first runs, never
at import, and keeps the adapters (and their clients) for later invocations.
"""

from __future__ import annotations

import threading

from shared.composition import Adapters, build_adapters
from shared.config import Settings, load_settings, resolve_backend

_lock = threading.Lock()
_cached: tuple[Settings, Adapters] | None = None


def settings_and_adapters() -> tuple[Settings, Adapters]:
    global _cached
    with _lock:
        if _cached is None:
            settings = load_settings()
            _cached = (settings, build_adapters(settings, resolve_backend(None)))
        return _cached


def reset() -> None:
    """Forget the cached wiring (tests; a config change in a long-lived process)."""
    global _cached
    with _lock:
        if _cached is not None:
            _cached[1].close()
        _cached = None


def use(settings: Settings, adapters: Adapters) -> None:
    """Install explicit wiring (tests inject fault-injecting adapters this way)."""
    global _cached
    with _lock:
        _cached = (settings, adapters)
