"""Per-process wiring for the deployed functions, built on first use (lazy globals).

Reads ``$OPSUITE_CONFIG`` and ``$OPSUITE_BACKEND`` when a function first runs, never
at import, and keeps the adapters (and their clients) for later invocations.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from shared.composition import Adapters, build_adapters, build_object_store
from shared.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, Settings, load_settings, resolve_backend
from shared.errors import OpsuiteError
from shared.identifiers import bucket_name, project_id
from shared.ports import ObjectStore

#: Set by Terraform on the backup function: where to record a rejected trigger even when
#: the configuration file can't be read.
BACKUP_BUCKET_ENV = "OPSUITE_BACKUP_BUCKET"
#: Set by Terraform too: the project for that record's Cloud Storage client (Cloud Functions
#: 2nd gen sets no project variable itself).
PROJECT_ENV = "OPSUITE_PROJECT"

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


def fallback_backup_store(env: Mapping[str, str] | None = None) -> tuple[ObjectStore, str] | None:
    """The backup bucket's store without a valid configuration, or None if unknowable.

    The bucket comes from ``$OPSUITE_BACKUP_BUCKET``, else from whatever of the config
    file still parses as YAML (``backups.bucket``); the project from ``$OPSUITE_PROJECT``,
    ``$GOOGLE_CLOUD_PROJECT`` or the same file's ``gcp.project``. Never raises.
    """
    environ = os.environ if env is None else env
    raw: dict[str, object] = {}
    try:
        import yaml

        path = Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
        loaded = yaml.safe_load(path.read_bytes().decode("utf-8", errors="replace"))
        raw = loaded if isinstance(loaded, dict) else {}
    except Exception:  # best effort: the config is already known to be broken
        raw = {}

    def section(name: str) -> Mapping[str, object]:
        value = raw.get(name)
        return value if isinstance(value, dict) else {}

    try:
        bucket = bucket_name(environ.get(BACKUP_BUCKET_ENV) or section("backups").get("bucket"))
        backend = resolve_backend(None, environ)
        project = (
            environ.get(PROJECT_ENV)
            or environ.get("GOOGLE_CLOUD_PROJECT")
            or section("gcp").get("project")
        )
        root = section("local").get("root")
        store = build_object_store(
            backend,
            project=project_id(project) if backend == "gcp" else None,
            local_root=root if isinstance(root, str) else ".local",
        )
    except OpsuiteError:
        return None
    return store, bucket
