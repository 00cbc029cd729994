"""The ObjectStore port on Cloud Storage (``google-cloud-storage``, imported on first use).

* ``write_once`` is an upload with ``ifGenerationMatch=0``: GCS creates the object only
  if no live generation exists and answers 412 otherwise, which becomes ``None``.
* Sizes and CRC32C come from the object resource GCS returns (base64, big-endian),
  the same encoding :mod:`shared.checksums` produces for the local store.
* ``open`` returns a seekable reader that fetches byte ranges of the generation that
  existed when it was opened; errors while reading are translated like any other.
* Calls use the storage client's retry bounded by ``retry_deadline``. Plain uploads
  are retried too: rewriting the same bytes to the same name is idempotent here.
* ``read`` checks the download's CRC32C (``checksum="crc32c"``); a mismatch arrives as a
  :class:`~shared.errors.TransientError` naming the object. ``open`` reads byte ranges,
  which the client can't checksum (google/cloud/storage/fileio.py passes
  ``checksum=None``): callers check what they read (Avro blocks, sizes).
* The client built here pools ``max_connections`` HTTP connections: one per thread.
* ``write_if_generation`` is an upload with ``ifGenerationMatch=N``; 412 becomes
  ``None``. It is retried like every call here, which is safe *because* of the
  precondition: google/cloud/storage/retry.py ``DEFAULT_RETRY_IF_GENERATION_SPECIFIED``
  (a ``ConditionalRetryPolicy``) is the library's own rule that a mutation may be
  retried once ``ifGenerationMatch`` is set, and blob.py ``_do_upload`` applies it to
  media uploads; a retry can't overwrite a write made by someone else in between. The
  one thing a retry can do is meet our own earlier attempt that landed but whose answer
  was lost: GCS then answers 412. So each conditional upload carries a random
  ``x-goog-meta-opsuite-write-id``, and on 412 the live object's is compared: ours →
  the write happened, its generation is returned.
* ``read_versioned`` is one download: GCS sends the generation of the bytes it serves in
  ``X-Goog-Generation``, which the library stores on the blob
  (blob.py ``_extract_headers_from_download``) and pins its own retried range requests
  to (``_media/requests/download.py``): bytes and generation come from one response.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar, cast

from shared import identifiers
from shared.adapters.gcp._errors import pooled_session, translate, translated
from shared.checksums import crc32c_b64
from shared.errors import BadInput, PermanentError
from shared.models import ObjectInfo

_T = TypeVar("_T")
DEFAULT_READ_CHUNK = 1024 * 1024
#: requests' default pool (10 connections per host) is too small for 16 threads.
DEFAULT_MAX_CONNECTIONS = 16
#: Custom metadata key of the random id each conditional upload carries.
WRITE_ID_KEY = "opsuite-write-id"


def check_object_name(name: str) -> str:
    """The object names the suite writes: relative, no empty, '.' or '..' segments."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BadInput(f"{name!r} is not a valid object name")
    if len(name.encode("utf-8")) > 1024:
        raise BadInput("object names are at most 1024 bytes")
    return name


class _TranslatingReader(io.RawIOBase):
    """Wraps the client's ``BlobReader`` so read errors arrive as :mod:`shared.errors`."""

    def __init__(self, inner: Any, what: str) -> None:
        super().__init__()
        self._inner = inner
        self._what = what

    def _call(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except Exception as exc:
            mapped = translate(exc, self._what)
            if mapped is None:
                raise
            raise mapped from exc

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        n = -1 if size is None else size
        return cast(bytes, self._call(lambda: self._inner.read(n)))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._call(lambda: self._inner.seek(offset, whence)))

    def tell(self) -> int:
        return int(self._inner.tell())

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class GcsObjectStore:
    def __init__(
        self,
        project: str,
        client: Any | None = None,
        *,
        retry_deadline: float = 30.0,
        page_size: int | None = None,
        read_chunk_size: int = DEFAULT_READ_CHUNK,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        credentials: Any | None = None,
    ) -> None:
        """``max_connections``: the HTTP pool of the client built here (the backup's
        worker threads share it); ``credentials``: default Application Default Credentials."""
        self.project = identifiers.project_id(project)
        self.retry_deadline = retry_deadline
        self.page_size = page_size
        self.read_chunk_size = read_chunk_size
        self.max_connections = max_connections
        self._credentials = credentials
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                with translated("Cloud Storage client"):
                    from google.cloud.storage import (  # type: ignore[import-untyped, unused-ignore]
                        Client,
                    )

                    session, credentials = pooled_session(
                        self._credentials, Client.SCOPE, self.max_connections
                    )
                    self._client = Client(
                        project=self.project, credentials=credentials, _http=session
                    )
            return self._client

    @property
    def _retry(self) -> Any:
        from google.cloud.storage.retry import (  # type: ignore[import-untyped, unused-ignore]
            DEFAULT_RETRY,
        )

        return DEFAULT_RETRY.with_timeout(self.retry_deadline)

    def _blob(self, bucket: str, name: str) -> Any:
        identifiers.bucket_name(bucket)
        return self.client.bucket(bucket).blob(check_object_name(name))

    def _info(self, bucket: str, blob: Any, data: bytes | None = None) -> ObjectInfo:
        crc = blob.crc32c
        if not crc:
            if data is None:
                raise PermanentError(f"gs://{bucket}/{blob.name}: GCS reported no crc32c")
            crc = crc32c_b64(data)
        return ObjectInfo(bucket=bucket, name=str(blob.name), size=int(blob.size), crc32c=crc)

    def write(self, bucket: str, name: str, data: bytes, content_type: str) -> ObjectInfo:
        blob = self._blob(bucket, name)
        with translated(f"upload gs://{bucket}/{name}"):
            blob.upload_from_string(
                data,
                content_type=content_type,
                checksum="crc32c",
                retry=self._retry,
                timeout=self.retry_deadline,
            )
        return self._info(bucket, blob, data)

    def write_once(
        self, bucket: str, name: str, data: bytes, content_type: str
    ) -> ObjectInfo | None:
        from google.api_core.exceptions import PreconditionFailed

        blob = self._blob(bucket, name)
        with translated(f"create gs://{bucket}/{name}"):
            try:
                blob.upload_from_string(
                    data,
                    content_type=content_type,
                    checksum="crc32c",
                    if_generation_match=0,
                    retry=self._retry,
                    timeout=self.retry_deadline,
                )
            except PreconditionFailed:
                return None  # a live generation exists: nothing written
        return self._info(bucket, blob, data)

    def write_if_generation(
        self, bucket: str, name: str, data: bytes, content_type: str, generation: int
    ) -> int | None:
        from google.api_core.exceptions import PreconditionFailed

        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise BadInput(f"generation must be a count (0: create), got {generation!r}")
        blob = self._blob(bucket, name)
        write_id = uuid.uuid4().hex
        blob.metadata = {WRITE_ID_KEY: write_id}
        with translated(f"update gs://{bucket}/{name} if generation {generation}"):
            try:
                blob.upload_from_string(
                    data,
                    content_type=content_type,
                    checksum="crc32c",
                    if_generation_match=generation,
                    retry=self._retry,  # safe with the precondition: see the module notes
                    timeout=self.retry_deadline,
                )
            except PreconditionFailed:
                return self._own_live_generation(bucket, name, write_id)
        return self._generation(bucket, blob)

    def _own_live_generation(self, bucket: str, name: str, write_id: str) -> int | None:
        """After a 412: the live generation if it is our write (an attempt that landed
        and whose answer was lost, met by the retry), else None (someone else wrote)."""
        live = self.client.bucket(bucket).get_blob(
            name, retry=self._retry, timeout=self.retry_deadline
        )
        if live is None or (live.metadata or {}).get(WRITE_ID_KEY) != write_id:
            return None
        return self._generation(bucket, live)

    @staticmethod
    def _generation(bucket: str, blob: Any) -> int:
        generation = blob.generation
        if not generation:
            raise PermanentError(f"gs://{bucket}/{blob.name}: GCS reported no generation")
        return int(generation)

    def read_versioned(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        from google.api_core.exceptions import NotFound as GcsNotFound

        blob = self._blob(bucket, name)
        with translated(f"download gs://{bucket}/{name}"):
            try:
                data = blob.download_as_bytes(
                    checksum="crc32c", retry=self._retry, timeout=self.retry_deadline
                )
            except GcsNotFound:
                return None
        # X-Goog-Generation of the response that carried ``data`` (see the module notes)
        return bytes(data), self._generation(bucket, blob)

    def read(self, bucket: str, name: str) -> bytes:
        blob = self._blob(bucket, name)
        with translated(f"download gs://{bucket}/{name}"):
            return bytes(
                blob.download_as_bytes(
                    checksum="crc32c", retry=self._retry, timeout=self.retry_deadline
                )
            )

    def open(self, bucket: str, name: str) -> BinaryIO:
        blob = self._blob(bucket, name)
        what = f"read gs://{bucket}/{name}"
        with translated(what):
            # Fetch the metadata first: a missing object fails here, not on first read,
            # and the reader is pinned to this generation and knows the size for seeks.
            blob.reload(retry=self._retry, timeout=self.retry_deadline)
            reader = blob.open(
                "rb",
                chunk_size=self.read_chunk_size,
                retry=self._retry,
                timeout=self.retry_deadline,
            )
        return cast(BinaryIO, _TranslatingReader(reader, what))

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        identifiers.bucket_name(bucket)
        with translated(f"list gs://{bucket}/{prefix}"):
            blobs = self.client.list_blobs(
                bucket,
                prefix=prefix or None,
                page_size=self.page_size,
                retry=self._retry,
                timeout=self.retry_deadline,
            )
            # Iterating the listing fetches every page.
            out = [self._info(bucket, blob) for blob in blobs]
        return sorted(out, key=lambda info: info.name)

    def stat(self, bucket: str, name: str) -> ObjectInfo | None:
        identifiers.bucket_name(bucket)
        check_object_name(name)
        with translated(f"stat gs://{bucket}/{name}"):
            blob = self.client.bucket(bucket).get_blob(
                name, retry=self._retry, timeout=self.retry_deadline
            )
        return None if blob is None else self._info(bucket, blob)

    def delete(self, bucket: str, name: str) -> None:
        blob = self._blob(bucket, name)
        with translated(f"delete gs://{bucket}/{name}"):
            blob.delete(retry=self._retry, timeout=self.retry_deadline)
