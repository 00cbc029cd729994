"""The ObjectStore port: LocalObjectStore and GcsObjectStore (gcp-storage-emulator behind the shim)."""

from __future__ import annotations

import io

import pytest

from shared.checksums import crc32c_b64
from shared.errors import BadInput, NotFound, TransientError
from tests.contract.support import Backend, GcpStack

pytestmark = pytest.mark.timeout(30)

HELLO = b"hello world"
HELLO_CRC32C = "yZRlqg=="  # base64 of the big-endian CRC32C, as GCS reports it


def test_write_then_read_returns_the_bytes_and_their_checksum(backend: Backend) -> None:
    info = backend.store.write(backend.bucket, "a/hello.txt", HELLO, "text/plain")

    assert backend.store.read(backend.bucket, "a/hello.txt") == HELLO
    assert (info.bucket, info.name, info.size) == (backend.bucket, "a/hello.txt", len(HELLO))
    assert info.uri == f"gs://{backend.bucket}/a/hello.txt"


def test_crc32c_is_the_same_for_the_same_bytes_on_every_backend(backend: Backend) -> None:
    written = backend.store.write(backend.bucket, "crc/hello.txt", HELLO, "text/plain")
    stat = backend.store.stat(backend.bucket, "crc/hello.txt")

    assert written.crc32c == HELLO_CRC32C == crc32c_b64(HELLO)
    assert stat == written


def test_write_overwrites(backend: Backend) -> None:
    backend.store.write(backend.bucket, "over/x", b"first", "text/plain")

    info = backend.store.write(backend.bucket, "over/x", b"second!", "text/plain")

    assert backend.store.read(backend.bucket, "over/x") == b"second!"
    assert info.size == 7


def test_write_once_creates_then_refuses_without_touching_the_object(backend: Backend) -> None:
    first = backend.store.write_once(backend.bucket, "m/manifest.json", b"{}", "application/json")

    second = backend.store.write_once(backend.bucket, "m/manifest.json", b"[1]", "application/json")

    assert first is not None
    assert first.size == 2
    assert second is None
    assert backend.store.read(backend.bucket, "m/manifest.json") == b"{}"
    assert backend.store.stat(backend.bucket, "m/manifest.json") == first


def test_list_returns_every_object_under_the_prefix_across_pages(backend: Backend) -> None:
    names = [f"run/1/part-{i:012d}.avro" for i in range(5)]  # gcp page size is 2
    for name in names:
        backend.store.write(backend.bucket, name, name.encode(), "application/octet-stream")
    backend.store.write(backend.bucket, "run/10/other", b"x", "text/plain")
    backend.store.write(backend.bucket, "elsewhere/run/1/x", b"x", "text/plain")

    listed = backend.store.list(backend.bucket, "run/1/")

    assert [o.name for o in listed] == names
    assert [o.size for o in listed] == [len(n) for n in names]
    assert all(o.crc32c == crc32c_b64(o.name.encode()) for o in listed)
    assert backend.store.list(backend.bucket, "nothing/here/") == []


def test_a_prefix_is_a_string_prefix_not_a_directory(backend: Backend) -> None:
    # GCS lists by name prefix: "a/b" reaches a/b/x, a/bc/y and a/b.txt alike
    names = ["p/a/b/x", "p/a/b.txt", "p/a/bc/y", "p/a/b/deep/z", "p/ab/z", "p/q"]
    for name in names:
        backend.store.write(backend.bucket, name, b"x", "text/plain")

    def listed(prefix: str) -> list[str]:
        return [o.name for o in backend.store.list(backend.bucket, prefix)]

    assert listed("p/a/b") == ["p/a/b.txt", "p/a/b/deep/z", "p/a/b/x", "p/a/bc/y"]
    assert listed("p/a/b/") == ["p/a/b/deep/z", "p/a/b/x"]
    assert listed("p/a/") == ["p/a/b.txt", "p/a/b/deep/z", "p/a/b/x", "p/a/bc/y"]
    assert listed("p/a") == ["p/a/b.txt", "p/a/b/deep/z", "p/a/b/x", "p/a/bc/y", "p/ab/z"]
    assert listed("p/") == sorted(names)
    assert listed("p/a/b/x") == ["p/a/b/x"]
    assert listed("p/zz/") == []


def test_stat_of_a_missing_object_is_none(backend: Backend) -> None:
    assert backend.store.stat(backend.bucket, "no/such/object") is None


def test_read_and_open_of_a_missing_object_are_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.store.read(backend.bucket, "no/such/object")
    with pytest.raises(NotFound):
        backend.store.open(backend.bucket, "no/such/object")


def test_delete_removes_and_a_second_delete_is_not_found(backend: Backend) -> None:
    backend.store.write(backend.bucket, "d/x", b"x", "text/plain")

    backend.store.delete(backend.bucket, "d/x")

    assert backend.store.stat(backend.bucket, "d/x") is None
    with pytest.raises(NotFound):
        backend.store.delete(backend.bucket, "d/x")


def test_open_gives_a_seekable_reader(backend: Backend) -> None:
    data = bytes(range(256)) * 64  # 16 KiB
    backend.store.write(backend.bucket, "seek/blob.bin", data, "application/octet-stream")

    with backend.store.open(backend.bucket, "seek/blob.bin") as fo:
        assert fo.read(4) == data[:4]
        fo.seek(1000)
        assert fo.read(8) == data[1000:1008]
        fo.seek(-1, io.SEEK_CUR)
        assert fo.read(1) == data[1007:1008]
        fo.seek(-16, io.SEEK_END)
        assert fo.read() == data[-16:]
        assert fo.tell() == len(data)
        fo.seek(0)
        assert fo.read() == data


@pytest.mark.parametrize("name", ["", "/abs", "a//b", "a/../b", "./a"])
def test_invalid_object_names_are_bad_input(backend: Backend, name: str) -> None:
    with pytest.raises(BadInput):
        backend.store.write(backend.bucket, name, b"x", "text/plain")


# -- GCP only: the requests on the wire, faults ------------------------------------------
def test_gcs_write_once_sends_if_generation_match_zero(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp

    backend.store.write_once(backend.bucket, "m/once.json", b"{}", "application/json")
    backend.store.write_once(backend.bucket, "m/once.json", b"{}", "application/json")

    uploads = stack.gcs_shim.uploads(backend.bucket, "m/once.json")
    assert [r.param("ifGenerationMatch") for r in uploads] == ["0", "0"]
    assert [(r.status, r.forwarded) for r in uploads] == [(200, True), (412, False)]


def test_gcs_plain_write_sends_no_precondition(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp

    backend.store.write(backend.bucket, "plain/x", b"x", "text/plain")

    (upload,) = stack.gcs_shim.uploads(backend.bucket, "plain/x")
    assert upload.param("ifGenerationMatch") is None


def test_gcs_list_pages_through_the_listing(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    for i in range(5):
        backend.store.write(backend.bucket, f"p/{i}", b"x", "text/plain")

    assert len(backend.store.list(backend.bucket, "p/")) == 5

    pages = stack.gcs_shim.recorded(
        lambda r: r.method == "GET" and r.path == f"/storage/v1/b/{backend.bucket}/o"
    )
    assert [r.param("pageToken") for r in pages] == [None, "2", "4"]
    assert {r.param("maxResults") for r in pages} == {"2"}


def test_gcs_persistent_503_becomes_transient(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    store = backend.make_store(retry_deadline=1.0)
    backend.store.write(backend.bucket, "t/x", b"x", "text/plain")
    stack.gcs_shim.fail_requests(1000, lambda r: r.method == "GET")

    with pytest.raises(TransientError):
        store.read(backend.bucket, "t/x")


def test_gcs_single_503_is_retried_by_the_client(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    backend.store.write(backend.bucket, "t/y", b"y", "text/plain")
    stack.gcs_shim.fail_requests(1, lambda r: r.method == "GET")

    assert backend.store.read(backend.bucket, "t/y") == b"y"
