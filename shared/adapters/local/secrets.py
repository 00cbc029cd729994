"""The SecretStore port on files: ``<root>/<secret-id>`` holds a secret's value.

The embedded stack's stand-in for Secret Manager (the composition passes
``.local/secrets``). Names are the port's (:data:`shared.alerting_config._NAME_PATTERN`,
checked before anything touches the file system, and the name itself is never echoed
when it doesn't fit: a mistyped config may have pasted the secret instead of its name):

* ``slack-webhook``, ``projects/P/secrets/slack-webhook`` and
  ``projects/P/secrets/slack-webhook/versions/latest`` → the file ``<root>/slack-webhook``
  (the latest value; one trailing newline, ``\\n`` or ``\\r\\n``, is stripped so that
  ``echo URL > file`` works);
* ``projects/P/secrets/slack-webhook/versions/3`` → ``<root>/slack-webhook@3`` if that file
  exists, else ``<root>/slack-webhook``: the local stack keeps one value per secret unless
  told otherwise, so a config written for GCP (pinned versions) runs locally unchanged;
* the project ``P`` is ignored (one local namespace) unless the store was built with
  ``project=``: then another project's name is NotFound, as a secret that isn't there.

A missing file is :class:`NotFound` naming the secret and the file to create (never a
value); an unreadable one is :class:`PermissionDenied`; a value that isn't UTF-8 is
:class:`PermanentError`. A file readable by group or others is used but warned about,
once per file. Values are cached per name for ``ttl_seconds`` (300 s; 0 disables) and
registered with :func:`shared.log.redact` before they are returned.

:func:`parse_secret_name` and :class:`SecretCache` are the parts the GCP adapter
(:mod:`shared.adapters.gcp.secrets`) shares.
"""

from __future__ import annotations

import logging
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.alerting_config import _NAME_PATTERN
from shared.errors import BadInput, NotFound, PermanentError, PermissionDenied
from shared.log import redact

log = logging.getLogger(__name__)

_NAME_RE = re.compile(_NAME_PATTERN)
DEFAULT_TTL_SECONDS = 300.0
LATEST = "latest"


@dataclass(frozen=True)
class SecretRef:
    """A validated secret name: ``project`` is None for a short id (the store's own)."""

    project: str | None
    secret: str
    version: str = LATEST

    def resource(self, default_project: str) -> str:
        """The full version name Secret Manager takes: ``projects/P/secrets/S/versions/V``."""
        project = self.project or default_project
        return f"projects/{project}/secrets/{self.secret}/versions/{self.version}"


def parse_secret_name(name: object) -> SecretRef:
    """``name`` as a :class:`SecretRef`, or :class:`BadInput` (which doesn't repeat it)."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        # Not echoed: a value that isn't a name may be the secret itself, pasted by mistake.
        size = f"{len(name)} characters" if isinstance(name, str) else type(name).__name__
        raise BadInput(
            f"secret name ({size}) is not a Secret Manager name: expected a secret id "
            "such as 'slack-webhook' or 'projects/P/secrets/S[/versions/V]'"
        )
    if not name.startswith("projects/"):
        return SecretRef(None, name)
    parts = name.split("/")  # projects, P, secrets, S[, versions, V]
    return SecretRef(parts[1], parts[3], parts[5] if len(parts) == 6 else LATEST)


class SecretCache:
    """Values by key for ``ttl_seconds`` of ``clock`` (monotonic seconds); thread-safe.

    Only values are cached, never a failure. Two threads missing the same key at once
    may both fetch it (the same value, read twice): simpler than a lock per key and
    harmless for a read.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self.clock() >= expires:
                del self._entries[key]
                return None
            return value

    def put(self, key: str, value: str) -> None:
        if self.ttl_seconds == 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl_seconds, value)


class LocalSecretStore:
    def __init__(
        self,
        root: Path,
        *,
        project: str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.project = project
        self.reads = 0  # files read (cache misses that found a file)
        self._cache = SecretCache(ttl_seconds, clock)
        self._warned: set[Path] = set()
        self._lock = threading.Lock()

    def path_for(self, name: str) -> Path:
        """The file ``name`` reads (after validation), whether or not it exists."""
        ref = parse_secret_name(name)
        return self._path(ref, name)

    def get(self, name: str) -> str:
        ref = parse_secret_name(name)
        if self.project is not None and ref.project not in (None, self.project):
            raise NotFound(
                f"secret {name}: not found (the local store holds project {self.project})"
            )
        key = ref.resource(self.project or "local")
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        value = self._read(name, self._path(ref, name))
        redact(value)
        self._cache.put(key, value)
        return value

    def _path(self, ref: SecretRef, name: str) -> Path:
        plain = self.root / ref.secret
        if ref.version != LATEST:
            pinned = self.root / f"{ref.secret}@{ref.version}"
            if pinned.is_file():
                plain = pinned
        # The pattern allows only [A-Za-z0-9_-] in an id and digits in a version: no
        # separator or dot can take the path out of root. Checked anyway, cheaply.
        if plain.parent != self.root:
            raise BadInput(f"secret {name}: does not map to a file under the secrets root")
        return plain

    def _read(self, name: str, path: Path) -> str:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"secret {name}: not found (create the file {path} holding its value)"
            ) from None
        except IsADirectoryError:
            raise NotFound(f"secret {name}: not found ({path} is a directory)") from None
        except PermissionError as exc:
            raise PermissionDenied(f"secret {name}: cannot read {path}") from exc
        with self._lock:
            self.reads += 1
        self._warn_if_shared(name, path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PermanentError(f"secret {name}: the value in {path} is not UTF-8 text") from None
        if text.endswith("\r\n"):
            return text[:-2]
        if text.endswith("\n"):
            return text[:-1]
        return text

    def _warn_if_shared(self, name: str, path: Path) -> None:
        try:
            mode = path.stat().st_mode
        except OSError:
            return
        if not mode & (stat.S_IRWXG | stat.S_IRWXO):
            return
        with self._lock:
            if path in self._warned:
                return
            self._warned.add(path)
        log.warning(
            "secret file readable by group or others",
            extra={"fields": {"secret": name, "path": str(path), "mode": oct(mode & 0o777)}},
        )
