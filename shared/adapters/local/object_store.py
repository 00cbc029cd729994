"""A directory as object store: ``<root>/<bucket>/<object name>``.

Writes go to a temporary file under ``<root>/.tmp`` first and are then moved into
place, so a reader never sees half an object. ``write_once`` publishes with
``os.link``, which fails if the name exists: an atomic create, the local
equivalent of GCS's ``ifGenerationMatch=0``.

Generations (for ``read_versioned`` / ``write_if_generation``, compare-and-swap):

* Each object's generation is kept in a sidecar, ``<root>/.generations/<bucket>/
  <sha256 of the name>.json``, with the identity of the file it belongs to (inode,
  size, mtime). Like GCS's, a generation is a microsecond timestamp, and strictly
  larger than the one before for the same name (a deleted name's sidecar stays, so a
  re-created object never reuses a generation).
* Every write (``write``, ``write_once``, ``write_if_generation``) and ``delete``
  moves the file and its sidecar under an exclusive ``flock`` on
  ``<root>/.locks/<bucket>.lock``; ``read_versioned`` reads both under the shared
  lock. ``flock`` excludes threads as well as processes (each call opens the lock
  file itself), so the CLI and ``make serve`` can share one root. Only the renames are
  inside the lock: the bytes are written and fsynced before it is taken.
* A file changed behind the store's back (another program, or written before
  generations existed) no longer matches its sidecar: its generation is then derived
  from the file (its mtime in microseconds, and above the recorded one), stable while
  the file stays as it is. So a CAS against a generation read earlier fails, as it
  would on GCS.
* The sidecars are not fsynced: after a power loss a generation may be derived as
  above instead of recorded, which still differs from what was recorded before.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from shared import identifiers
from shared.checksums import crc32c_b64_stream
from shared.errors import BadInput, NotFound, PermanentError
from shared.models import ObjectInfo

#: The longest file or directory name common file systems allow (ext4, xfs, APFS: 255).
NAME_MAX_BYTES = 255


class LocalObjectStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # CRC32C per (path, size, mtime): listing must not re-read every unchanged object
        self._crc_cache: dict[tuple[str, int, int], str] = {}
        self._crc_lock = threading.Lock()

    def _path(self, bucket: str, name: str) -> Path:
        identifiers.bucket_name(bucket)
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise BadInput(f"{name!r} is not a valid object name")
        too_long = next((p for p in parts if len(p.encode("utf-8")) > NAME_MAX_BYTES), None)
        if too_long is not None:
            # a valid GCS name (1024 bytes in all) but no file system holds such a part
            raise PermanentError(
                f"gs://{bucket}/{name}: the local object store (a directory) can't hold a "
                f"name part of {len(too_long.encode('utf-8'))} bytes (at most {NAME_MAX_BYTES})"
            )
        return self.root / bucket / Path(*parts)

    def _tmp(self, data: bytes, *, sync: bool = True) -> Path:
        tmp_dir = self.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        with os.fdopen(fd, "wb") as fo:
            fo.write(data)
            if sync:
                fo.flush()
                os.fsync(fo.fileno())
        return Path(tmp)

    # -- generations ---------------------------------------------------------------------
    @contextmanager
    def _locked(self, bucket: str, *, exclusive: bool) -> Iterator[None]:
        """The bucket's generation lock (``flock``: threads and processes alike)."""
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_dir / f"{bucket}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _sidecar(self, bucket: str, name: str) -> Path:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
        return self.root / ".generations" / bucket / f"{digest}.json"

    @staticmethod
    def _identity(st: os.stat_result) -> list[int]:
        return [st.st_ino, st.st_size, st.st_mtime_ns]

    @staticmethod
    def _recorded(sidecar: Path) -> tuple[int, list[int]] | None:
        try:
            recorded = json.loads(sidecar.read_bytes())
            return int(recorded["generation"]), [int(v) for v in recorded["file"]]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _generation(self, sidecar: Path, st: os.stat_result | None) -> int:
        """The live generation of the file with stat ``st`` (None: absent, generation 0)."""
        if st is None:
            return 0
        recorded = self._recorded(sidecar)
        if recorded is not None and recorded[1] == self._identity(st):
            return recorded[0]
        # changed behind the store's back: derived from the file, above the recorded one
        return max(st.st_mtime_ns // 1000, 1 if recorded is None else recorded[0] + 1)

    def _stat(self, path: Path) -> os.stat_result | None:
        try:
            return path.stat()
        except FileNotFoundError:
            return None

    def _record(self, bucket: str, name: str, path: Path, previous: int) -> int:
        """Record a new generation for the file just published at ``path`` (lock held)."""
        sidecar = self._sidecar(bucket, name)
        recorded = self._recorded(sidecar)
        floor = max(previous, 0 if recorded is None else recorded[0])
        generation = max(time.time_ns() // 1000, floor + 1)
        body = {"name": name, "generation": generation, "file": self._identity(path.stat())}
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp(json.dumps(body).encode("utf-8"), sync=False), sidecar)
        return generation

    def _publish(
        self, bucket: str, name: str, path: Path, tmp: Path, *, only_if: int | None
    ) -> int | None:
        """Move ``tmp`` to ``path`` and record its generation, under the bucket's lock.

        ``only_if``: None = unconditionally (``write``); 0 = only if absent; N = only if
        the live generation is N. Returns the new generation, or None if the condition
        did not hold (``tmp`` is then left for the caller to remove)."""
        with self._locked(bucket, exclusive=True):
            current = self._generation(self._sidecar(bucket, name), self._stat(path))
            if only_if is not None and current != only_if:
                return None
            if only_if == 0:
                try:
                    os.link(tmp, path)  # refuses a file created behind the store's back
                except FileExistsError:
                    return None
            else:
                os.replace(tmp, path)
            return self._record(bucket, name, path, current)

    def _info(self, bucket: str, name: str, path: Path) -> ObjectInfo:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._crc_lock:
            crc = self._crc_cache.get(key)
        if crc is None:
            with path.open("rb") as fo:
                crc = crc32c_b64_stream(fo)
            with self._crc_lock:
                self._crc_cache[key] = crc
        return ObjectInfo(bucket=bucket, name=name, size=st.st_size, crc32c=crc)

    def write(self, bucket: str, name: str, data: bytes, content_type: str) -> ObjectInfo:
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp(data)
        try:
            self._publish(bucket, name, path, tmp, only_if=None)
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(bucket, name, path)

    def write_once(
        self, bucket: str, name: str, data: bytes, content_type: str
    ) -> ObjectInfo | None:
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp(data)
        try:
            if self._publish(bucket, name, path, tmp, only_if=0) is None:
                return None
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(bucket, name, path)

    def write_if_generation(
        self, bucket: str, name: str, data: bytes, content_type: str, generation: int
    ) -> int | None:
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise BadInput(f"generation must be a count (0: create), got {generation!r}")
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp(data)
        try:
            return self._publish(bucket, name, path, tmp, only_if=generation)
        finally:
            tmp.unlink(missing_ok=True)

    def read_versioned(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        path = self._path(bucket, name)
        with self._locked(bucket, exclusive=False):
            try:
                with path.open("rb") as fo:
                    st = os.fstat(fo.fileno())
                    data = fo.read()
            except FileNotFoundError:
                return None
            return data, self._generation(self._sidecar(bucket, name), st)

    def read(self, bucket: str, name: str) -> bytes:
        try:
            return self._path(bucket, name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"gs://{bucket}/{name} does not exist") from None

    def open(self, bucket: str, name: str) -> BinaryIO:
        try:
            return self._path(bucket, name).open("rb")
        except FileNotFoundError:
            raise NotFound(f"gs://{bucket}/{name} does not exist") from None

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        base = self.root / identifiers.bucket_name(bucket)
        if not base.is_dir():
            return []
        # Walk only where names with the prefix can be (as GCS lists by prefix, not the
        # whole bucket): from the prefix's directory part, into matching directories.
        head = prefix.rpartition("/")[0]
        parts = head.split("/") if head else []
        start = base.joinpath(*parts) if parts and not {"", ".", ".."} & set(parts) else base
        if not start.is_dir():
            return []
        out = []
        for dirpath, dirs, files in os.walk(start):
            rel = Path(dirpath).relative_to(base).as_posix()
            rel = "" if rel == "." else rel + "/"
            dirs[:] = [
                d
                for d in dirs
                if (rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/")
            ]
            for filename in files:
                name = rel + filename
                if name.startswith(prefix):
                    out.append(self._info(bucket, name, Path(dirpath) / filename))
        return sorted(out, key=lambda info: info.name)

    def stat(self, bucket: str, name: str) -> ObjectInfo | None:
        path = self._path(bucket, name)
        return self._info(bucket, name, path) if path.is_file() else None

    def delete(self, bucket: str, name: str) -> None:
        path = self._path(bucket, name)
        # under the lock: a CAS never sees the file gone between its check and its move.
        # The sidecar stays, so a re-created object gets a larger generation.
        with self._locked(bucket, exclusive=True):
            try:
                path.unlink()
            except FileNotFoundError:
                raise NotFound(f"gs://{bucket}/{name} does not exist") from None
