"""ObjectStore compare-and-swap: ``read_versioned`` and ``write_if_generation``.

The same cases run on LocalObjectStore and on GcsObjectStore. gcp-storage-emulator does not
enforce generation preconditions; :class:`tests.fakes.gcs_shim.GcsShim` does (and adds the
``X-Goog-Generation`` header GCS sends with downloads), so the GCP side is checked twice:
end to end through the shim, and at the request level (the precondition each upload
carries, a 412 answered by the server, a reply lost after the write landed).
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.errors import BadInput
from shared.ports import ObjectStore
from tests.contract.support import Backend, GcpStack
from tests.fakes.gcs_shim import PRECONDITION_MESSAGE, gcs_error, is_upload

pytestmark = pytest.mark.timeout(60)

JSON = "application/json"


def increment(store: ObjectStore, bucket: str, name: str) -> tuple[int, int]:
    """Add one to the JSON counter at ``name`` by read → CAS → retry; returns the value
    written and the generation it got."""
    while True:
        current = store.read_versioned(bucket, name)
        value, generation = (0, 0) if current is None else (json.loads(current[0]), current[1])
        written = store.write_if_generation(
            bucket, name, json.dumps(value + 1).encode(), JSON, generation
        )
        if written is not None:
            return value + 1, written


def increment_in_threads(
    store: ObjectStore, bucket: str, name: str, threads: int, each: int
) -> list[tuple[int, int]]:
    start = threading.Barrier(threads)
    results: list[tuple[int, int]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            for _ in range(each):
                outcome = increment(store, bucket, name)
                with lock:
                    results.append(outcome)
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    return results


# -- the contract, on both backends -----------------------------------------------------
def test_read_versioned_of_a_missing_object_is_none(backend: Backend) -> None:
    assert backend.store.read_versioned(backend.bucket, "cas/none") is None


def test_create_with_generation_zero_then_read_the_same_pair(backend: Backend) -> None:
    generation = backend.store.write_if_generation(backend.bucket, "cas/a", b"{}", JSON, 0)

    assert generation is not None and generation > 0
    assert backend.store.read_versioned(backend.bucket, "cas/a") == (b"{}", generation)
    assert backend.store.read(backend.bucket, "cas/a") == b"{}"


def test_a_second_create_with_zero_is_refused_and_changes_nothing(backend: Backend) -> None:
    first = backend.store.write_if_generation(backend.bucket, "cas/b", b"1", JSON, 0)

    second = backend.store.write_if_generation(backend.bucket, "cas/b", b"2", JSON, 0)

    assert second is None
    assert backend.store.read_versioned(backend.bucket, "cas/b") == (b"1", first)


def test_update_with_the_live_generation_gives_a_larger_one(backend: Backend) -> None:
    first = backend.store.write_if_generation(backend.bucket, "cas/c", b"1", JSON, 0)
    assert first is not None

    second = backend.store.write_if_generation(backend.bucket, "cas/c", b"2", JSON, first)

    assert second is not None and second > first
    assert backend.store.read_versioned(backend.bucket, "cas/c") == (b"2", second)


def test_a_stale_generation_is_refused_and_changes_nothing(backend: Backend) -> None:
    first = backend.store.write_if_generation(backend.bucket, "cas/d", b"1", JSON, 0)
    assert first is not None
    second = backend.store.write_if_generation(backend.bucket, "cas/d", b"2", JSON, first)

    stale = backend.store.write_if_generation(backend.bucket, "cas/d", b"3", JSON, first)

    assert stale is None
    assert backend.store.read_versioned(backend.bucket, "cas/d") == (b"2", second)


def test_a_nonzero_generation_on_a_missing_object_is_refused(backend: Backend) -> None:
    assert backend.store.write_if_generation(backend.bucket, "cas/e", b"1", JSON, 12345) is None
    assert backend.store.read_versioned(backend.bucket, "cas/e") is None


def test_plain_writes_and_write_once_move_the_generation_too(backend: Backend) -> None:
    assert backend.store.write_once(backend.bucket, "cas/f", b"once", JSON) is not None
    read = backend.store.read_versioned(backend.bucket, "cas/f")
    assert read is not None and read[0] == b"once"
    assert backend.store.write_if_generation(backend.bucket, "cas/f", b"x", JSON, 0) is None

    backend.store.write(backend.bucket, "cas/f", b"plain", JSON)

    after = backend.store.read_versioned(backend.bucket, "cas/f")
    assert after is not None and after[0] == b"plain" and after[1] > read[1]
    assert backend.store.write_if_generation(backend.bucket, "cas/f", b"x", JSON, read[1]) is None
    assert backend.store.read(backend.bucket, "cas/f") == b"plain"


def test_after_a_delete_the_old_generation_no_longer_matches(backend: Backend) -> None:
    first = backend.store.write_if_generation(backend.bucket, "cas/g", b"1", JSON, 0)
    assert first is not None
    backend.store.delete(backend.bucket, "cas/g")

    assert backend.store.read_versioned(backend.bucket, "cas/g") is None
    assert backend.store.write_if_generation(backend.bucket, "cas/g", b"2", JSON, first) is None
    again = backend.store.write_if_generation(backend.bucket, "cas/g", b"3", JSON, 0)
    assert again is not None and again > first


@pytest.mark.parametrize("generation", [-1, True])
def test_a_generation_that_is_not_a_count_is_bad_input(backend: Backend, generation: Any) -> None:
    with pytest.raises(BadInput):
        backend.store.write_if_generation(backend.bucket, "cas/h", b"1", JSON, generation)


def test_invalid_names_are_bad_input(backend: Backend) -> None:
    with pytest.raises(BadInput):
        backend.store.write_if_generation(backend.bucket, "a/../b", b"1", JSON, 0)
    with pytest.raises(BadInput):
        backend.store.read_versioned(backend.bucket, "a//b")


def test_concurrent_increments_lose_no_update(backend: Backend) -> None:
    threads, each = 8, 5

    results = increment_in_threads(backend.store, backend.bucket, "cas/counter", threads, each)

    total = threads * each
    assert sorted(value for value, _ in results) == list(range(1, total + 1))
    generations = [generation for _, generation in sorted(results)]
    assert generations == sorted(set(generations))  # each value its own, growing generation
    final = backend.store.read_versioned(backend.bucket, "cas/counter")
    assert final == (str(total).encode(), generations[-1])


# -- local only: across processes, and writes made behind the store's back ---------------
def increment_in_process(root: str, bucket: str, name: str, each: int, start: Any) -> None:
    from shared.adapters.local.object_store import LocalObjectStore

    store = LocalObjectStore(root)
    start.wait()
    increment_in_threads(store, bucket, name, threads=3, each=each)


def test_local_two_processes_lose_no_update(local: Backend, tmp_path: Path) -> None:
    from shared.adapters.local.object_store import LocalObjectStore

    assert isinstance(local.store, LocalObjectStore)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    each = 20
    root = str(local.store.root)
    processes = [
        context.Process(
            target=increment_in_process, args=(root, local.bucket, "cas/procs", each, start)
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(50)

    assert [p.exitcode for p in processes] == [0, 0]
    final = LocalObjectStore(root).read_versioned(local.bucket, "cas/procs")
    assert final is not None and json.loads(final[0]) == 2 * 3 * each


def test_local_a_rewrite_behind_the_stores_back_moves_the_generation(local: Backend) -> None:
    from shared.adapters.local.object_store import LocalObjectStore

    assert isinstance(local.store, LocalObjectStore)
    first = local.store.write_if_generation(local.bucket, "cas/foreign", b"ours", JSON, 0)
    assert first is not None
    (local.store.root / local.bucket / "cas" / "foreign").write_bytes(b"theirs!")

    read = local.store.read_versioned(local.bucket, "cas/foreign")

    assert read is not None and read[0] == b"theirs!" and read[1] > first
    assert local.store.write_if_generation(local.bucket, "cas/foreign", b"x", JSON, first) is None
    assert local.store.write_if_generation(local.bucket, "cas/foreign", b"x", JSON, read[1])


def test_local_generations_are_not_listed_as_objects(local: Backend) -> None:
    local.store.write_if_generation(local.bucket, "cas/listed", b"1", JSON, 0)

    assert [o.name for o in local.store.list(local.bucket, "")] == ["cas/listed"]


# -- GCP only: what goes on the wire -----------------------------------------------------
def uploads_of(stack: GcpStack, bucket: str, name: str) -> list[tuple[str | None, int | None]]:
    return [(r.param("ifGenerationMatch"), r.status) for r in stack.gcs_shim.uploads(bucket, name)]


def test_gcs_each_conditional_upload_carries_its_generation(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    first = backend.store.write_if_generation(backend.bucket, "w/x", b"1", JSON, 0)
    assert first is not None
    second = backend.store.write_if_generation(backend.bucket, "w/x", b"2", JSON, first)
    backend.store.write_if_generation(backend.bucket, "w/x", b"3", JSON, first)  # stale

    assert uploads_of(stack, backend.bucket, "w/x") == [
        ("0", 200),
        (str(first), 200),
        (str(first), 412),
    ]
    assert second is not None


def test_gcs_a_412_from_the_server_is_none_and_changes_nothing(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    first = backend.store.write_if_generation(backend.bucket, "w/y", b"1", JSON, 0)
    assert first is not None
    stack.gcs_shim.fail_next(
        1,
        is_upload,
        lambda _: gcs_error(412, "conditionNotMet", PRECONDITION_MESSAGE),
    )

    assert backend.store.write_if_generation(backend.bucket, "w/y", b"2", JSON, first) is None

    assert [r.forwarded for r in stack.gcs_shim.uploads(backend.bucket, "w/y")] == [True, False]
    assert backend.store.read_versioned(backend.bucket, "w/y") == (b"1", first)


def test_gcs_a_conditional_upload_is_retried_with_the_same_precondition(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    first = backend.store.write_if_generation(backend.bucket, "w/z", b"1", JSON, 0)
    assert first is not None
    stack.gcs_shim.fail_requests(1, is_upload)

    second = backend.store.write_if_generation(backend.bucket, "w/z", b"2", JSON, first)

    assert uploads_of(stack, backend.bucket, "w/z")[1:] == [(str(first), 503), (str(first), 200)]
    assert second is not None
    assert backend.store.read_versioned(backend.bucket, "w/z") == (b"2", second)


def lose_reply(stack: GcpStack, matches: Callable[[Any], bool]) -> None:
    """The next matching request reaches the emulator, but its answer becomes a 503."""
    stack.gcs_shim.lose_replies(1, matches)


def test_gcs_our_own_write_answered_412_on_retry_is_ours(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    first = backend.store.write_if_generation(backend.bucket, "w/lost", b"1", JSON, 0)
    assert first is not None
    lose_reply(stack, is_upload)

    second = backend.store.write_if_generation(backend.bucket, "w/lost", b"2", JSON, first)

    # the first attempt landed, its answer was lost; the retry met our own write
    assert uploads_of(stack, backend.bucket, "w/lost")[1:] == [
        (str(first), 503),
        (str(first), 412),
    ]
    read = backend.store.read_versioned(backend.bucket, "w/lost")
    assert read is not None and read[0] == b"2"
    assert second == read[1]


def test_gcs_read_versioned_takes_the_generation_from_the_download_itself(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    generation = backend.store.write_if_generation(backend.bucket, "w/r", b"1", JSON, 0)
    before = len(stack.gcs_shim.recorded())

    assert backend.store.read_versioned(backend.bucket, "w/r") == (b"1", generation)

    (download,) = stack.gcs_shim.recorded()[before:]  # one request: bytes and generation
    assert download.method == "GET" and download.param("alt") == "media"
