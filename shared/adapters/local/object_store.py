"""A directory as object store: ``<root>/<bucket>/<object name>``.

Writes go to a temporary file under ``<root>/.tmp`` first and are then moved into
place, so a reader never sees half an object. ``write_once`` publishes with
``os.link``, which fails if the name exists: an atomic create, the local
equivalent of GCS's ``ifGenerationMatch=0``.
"""

from __future__ import annotations

import os
import tempfile
import threading
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

    def _tmp(self, data: bytes) -> Path:
        tmp_dir = self.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        with os.fdopen(fd, "wb") as fo:
            fo.write(data)
            fo.flush()
            os.fsync(fo.fileno())
        return Path(tmp)

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
        os.replace(self._tmp(data), path)
        return self._info(bucket, name, path)

    def write_once(
        self, bucket: str, name: str, data: bytes, content_type: str
    ) -> ObjectInfo | None:
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
        finally:
            tmp.unlink()
        return self._info(bucket, name, path)

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
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for filename in files:
                path = Path(dirpath) / filename
                name = path.relative_to(base).as_posix()
                if name.startswith(prefix):
                    out.append(self._info(bucket, name, path))
        return sorted(out, key=lambda info: info.name)

    def stat(self, bucket: str, name: str) -> ObjectInfo | None:
        path = self._path(bucket, name)
        return self._info(bucket, name, path) if path.is_file() else None

    def delete(self, bucket: str, name: str) -> None:
        try:
            self._path(bucket, name).unlink()
        except FileNotFoundError:
            raise NotFound(f"gs://{bucket}/{name} does not exist") from None
