"""The SecretStore contract: the same cases on the local files and on Secret Manager.

``gcp`` runs the real ``SecretManagerServiceClient`` against the in-test gRPC fake of
:mod:`tests.fakes.secretmanager_fake`. Then the GCP-only behaviour (the request names sent,
the client's retry on UNAVAILABLE, CRC32C, states) and the log redaction every value
returned is registered for.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]
import pytest

from shared import log as shared_log
from shared.errors import BadInput, NotFound, PermanentError, PermissionDenied, TransientError
from tests.contract.secrets_support import (
    TTL,
    ManualClock,
    SecretBackend,
    gcp_backend,
    gcp_secret_stack,
    local_backend,
    running_as_root,
)
from tests.contract.support import PROJECT

pytestmark = pytest.mark.timeout(60)


def secret_value(tag: str = "") -> str:
    """Unique (registering it for redaction can't touch other tests' logs), with a quote and
    non-ASCII so that a JSON-escaped copy differs from the raw one."""
    return f'https://hooks.slack.com/services/T0/B0/{uuid.uuid4().hex}{tag}"ü'


def secret_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "gcp"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretBackend]:
    if request.param == "local":
        yield local_backend(tmp_path / "secrets")
        return
    with gcp_backend() as bundle:
        yield bundle


# -- the contract -----------------------------------------------------------------------
def test_a_value_round_trips_by_short_id_and_by_full_name(backend: SecretBackend) -> None:
    name, value = secret_id(), secret_value("\nsecond line")
    backend.add_version(name, value)

    assert backend.store.get(name) == value
    assert backend.store.get(f"projects/{PROJECT}/secrets/{name}") == value
    assert backend.store.get(f"projects/{PROJECT}/secrets/{name}/versions/latest") == value


def test_latest_is_the_newest_version_and_an_explicit_version_is_that_one(
    backend: SecretBackend,
) -> None:
    name, old, new = secret_id(), secret_value("old"), secret_value("new")
    first = backend.add_version(name, old)
    second = backend.add_version(name, new)

    assert backend.store.get(name) == new
    assert backend.store.get(f"projects/{PROJECT}/secrets/{name}/versions/{first}") == old
    assert backend.store.get(f"projects/{PROJECT}/secrets/{name}/versions/{second}") == new


def test_a_missing_secret_is_not_found_naming_it_and_no_value(backend: SecretBackend) -> None:
    present, value = secret_id(), secret_value()
    backend.add_version(present, value)
    missing = secret_id()

    with pytest.raises(NotFound) as caught:
        backend.store.get(missing)

    assert missing in str(caught.value)
    assert value not in str(caught.value)


def test_a_missing_version_of_a_known_secret_is_not_found_without_its_value(
    backend: SecretBackend,
) -> None:
    name, value = secret_id(), secret_value()
    backend.add_version(name, value)
    if backend.name == "local":
        # the local store falls back to <root>/S for a version it has no file for
        # (documented): a config pinned for GCP runs locally; the contract is the value
        assert backend.store.get(f"projects/{PROJECT}/secrets/{name}/versions/9") == value
        return

    with pytest.raises(NotFound) as caught:
        backend.store.get(f"projects/{PROJECT}/secrets/{name}/versions/9")

    assert name in str(caught.value)
    assert value not in str(caught.value)


BAD_NAMES = [
    "",
    "../etc/passwd",
    "a/b",
    "name with spaces",
    "s" * 256,
    "projects/p/secrets/",
    "projects//secrets/s",
    "projects/Upper_Case/secrets/s",
    "projects/opsuite-test/secrets/s/versions/",
    "projects/opsuite-test/secrets/s/versions/abc",
    "projects/opsuite-test/secrets/s/versions/1/extra",
    "projects/opsuite-test/locations/us/secrets/s",
    "projects/opsuite-test/secrets/s\n",
    "https://hooks.slack.com/services/T0/B0/pasted-instead-of-a-name",
    None,
    42,
]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_a_bad_name_is_bad_input_before_any_request_and_not_echoed(
    backend: SecretBackend, bad: Any
) -> None:
    with pytest.raises(BadInput) as caught:
        backend.store.get(bad)

    assert backend.requests() == 0
    if isinstance(bad, str) and len(bad) > 3:
        assert bad not in str(caught.value)  # it may be a secret pasted as a name


def test_a_value_is_cached_for_the_ttl_then_read_again(backend: SecretBackend) -> None:
    name, first, second = secret_id(), secret_value("1"), secret_value("2")
    backend.add_version(name, first)
    assert backend.store.get(name) == first
    reads = backend.requests()

    backend.add_version(name, second)  # rotated underneath
    backend.clock.advance(TTL - 1)
    assert backend.store.get(name) == first
    assert backend.requests() == reads

    backend.clock.advance(1)
    assert backend.store.get(name) == second
    assert backend.requests() == reads + 1


def test_a_failure_is_not_cached(backend: SecretBackend) -> None:
    name, value = secret_id(), secret_value()
    with pytest.raises(NotFound):
        backend.store.get(name)

    backend.add_version(name, value)

    assert backend.store.get(name) == value


def test_an_unreadable_secret_is_permission_denied(backend: SecretBackend) -> None:
    if backend.name == "local" and running_as_root():
        pytest.skip("root reads a file whatever its mode")
    name, value = secret_id(), secret_value()
    backend.add_version(name, value)
    backend.deny(name)

    with pytest.raises(PermissionDenied) as caught:
        backend.store.get(name)

    assert name in str(caught.value)
    assert value not in str(caught.value)


def test_concurrent_gets_all_see_the_value(backend: SecretBackend) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [secret_id() for _ in range(4)]
    values = {name: secret_value(name) for name in names}
    for name, value in values.items():
        backend.add_version(name, value)

    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(backend.store.get, names * 16))

    assert got == [values[name] for name in names * 16]
    assert backend.requests() >= len(names)  # each read at least once, then from the cache


def test_every_value_returned_is_registered_for_redaction(backend: SecretBackend) -> None:
    name, value = secret_id(), secret_value()
    backend.add_version(name, value)

    backend.store.get(name)

    assert shared_log.redacted(f"url={value}.") == "url=[redacted]."


# -- local only -------------------------------------------------------------------------
def test_local_strips_one_trailing_newline_only(tmp_path: Path) -> None:
    bundle = local_backend(tmp_path)
    value = secret_value()
    (tmp_path / "crlf").write_bytes(value.encode() + b"\r\n")
    (tmp_path / "two").write_bytes(value.encode() + b"\n\n")
    (tmp_path / "none").write_bytes(value.encode())

    assert bundle.store.get("crlf") == value
    assert bundle.store.get("two") == value + "\n"
    assert bundle.store.get("none") == value


def test_local_refuses_another_project_when_it_has_one(tmp_path: Path) -> None:
    from shared.adapters.local.secrets import LocalSecretStore

    value = secret_value()
    (tmp_path / "hook").write_text(value)
    store = LocalSecretStore(tmp_path, project=PROJECT)

    assert store.get(f"projects/{PROJECT}/secrets/hook") == value
    with pytest.raises(NotFound, match="projects/other-project/secrets/hook"):
        store.get("projects/other-project/secrets/hook")


def test_local_unreadable_file_is_permission_denied_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root reads a file whatever its mode: the contract case above is skipped then
    bundle = local_backend(tmp_path)
    bundle.add_version("hook", secret_value())

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)

    with pytest.raises(PermissionDenied, match="hook"):
        bundle.store.get("hook")


def test_local_missing_root_is_not_found_naming_the_file_to_create(tmp_path: Path) -> None:
    from shared.adapters.local.secrets import LocalSecretStore

    store = LocalSecretStore(tmp_path / "nowhere")

    with pytest.raises(NotFound, match=r"slack-webhook.*nowhere/slack-webhook"):
        store.get("slack-webhook")


# -- gcp only ---------------------------------------------------------------------------
def test_gcp_sends_full_version_names() -> None:
    with gcp_secret_stack() as (store, fake):
        fake.add_version(f"projects/{PROJECT}/secrets/hook", secret_value())
        fake.add_version("projects/other-project/secrets/hook", secret_value())

        store.get("hook")
        store.get("projects/other-project/secrets/hook")

        assert fake.access_requests() == [
            f"projects/{PROJECT}/secrets/hook/versions/latest",
            "projects/other-project/secrets/hook/versions/latest",
        ]


def test_gcp_unavailable_is_retried_by_the_client_then_answers() -> None:
    with gcp_secret_stack() as (store, fake):
        value = secret_value()
        fake.add_version(f"projects/{PROJECT}/secrets/hook", value)
        fake.fail_next(1, grpc.StatusCode.UNAVAILABLE)

        assert store.get("hook") == value
        assert [code for _, code in fake.calls] == [
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.OK,
        ]
        assert store.requests == 1  # one call of ours; the retry was the client's


def test_gcp_unavailable_past_the_retry_deadline_is_transient() -> None:
    with gcp_secret_stack(retry_deadline=0.5) as (store, fake):
        fake.add_version(f"projects/{PROJECT}/secrets/hook", secret_value())
        fake.fail_next(10_000, grpc.StatusCode.UNAVAILABLE)

        with pytest.raises(TransientError, match="hook"):
            store.get("hook")
        assert len(fake.calls) >= 2


def test_gcp_a_crc32c_mismatch_is_transient_and_not_cached() -> None:
    with gcp_secret_stack() as (store, fake):
        value = secret_value()
        fake.add_version(f"projects/{PROJECT}/secrets/hook", value)
        fake.corrupt_next(1)

        with pytest.raises(TransientError, match="CRC32C") as caught:
            store.get("hook")
        assert value not in str(caught.value)

        assert store.get("hook") == value
        assert len(fake.access_requests()) == 2


def test_gcp_a_payload_without_a_checksum_is_accepted() -> None:
    with gcp_secret_stack() as (store, fake):
        value = secret_value()
        fake.add_version(f"projects/{PROJECT}/secrets/hook", value, checksum=False)

        assert store.get("hook") == value


def test_gcp_a_disabled_version_is_permanent_naming_it() -> None:
    with gcp_secret_stack() as (store, fake):
        secret = f"projects/{PROJECT}/secrets/hook"
        fake.add_version(secret, secret_value())
        fake.set_state(secret, 1, "DISABLED")

        with pytest.raises(PermanentError, match="DISABLED") as caught:
            store.get("hook")
        assert not isinstance(caught.value, TransientError | NotFound)


def test_gcp_a_value_that_is_not_utf8_is_permanent() -> None:
    with gcp_secret_stack() as (store, fake):
        fake.add_version(f"projects/{PROJECT}/secrets/hook", b"\xff\xfe")

        with pytest.raises(PermanentError, match="UTF-8"):
            store.get("hook")


def test_gcp_the_ttl_is_per_name() -> None:
    clock = ManualClock()
    with gcp_secret_stack(clock, ttl_seconds=10) as (store, fake):
        a, b = secret_value("a"), secret_value("b")
        fake.add_version(f"projects/{PROJECT}/secrets/a", a)
        fake.add_version(f"projects/{PROJECT}/secrets/b", b)
        store.get("a")
        clock.advance(5)
        store.get("b")
        clock.advance(6)  # a expired, b not

        assert (store.get("a"), store.get("b")) == (a, b)
        assert fake.access_requests()[-1].endswith("/a/versions/latest")
        assert len(fake.access_requests()) == 3


# -- redaction --------------------------------------------------------------------------
class _Holder:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"Holder({self.text})"


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records reach a handler set up as :func:`configure_logging` does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(shared_log.JsonFormatter())
    handler.addFilter(shared_log.RedactionFilter())
    parent = logging.getLogger(f"opsuite-redaction-{uuid.uuid4().hex}")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False
    try:
        yield parent.getChild("adapter"), stream  # a child: the record propagates up
    finally:
        parent.removeHandler(handler)


def test_a_secret_in_message_and_nested_fields_never_reaches_the_line(
    backend: SecretBackend, json_log: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = json_log
    name, value = secret_id(), secret_value()
    backend.add_version(name, value)
    secret = backend.store.get(name)

    try:
        raise ConnectionError(f"POST {secret} failed")
    except ConnectionError:
        logger.exception(
            "delivery to %s failed",
            secret,
            extra={
                "fields": {
                    "receiver": "slack",
                    "request": {"url": secret, "headers": [("Authorization", f"Bearer {secret}")]},
                    secret: "as a key",
                    "holder": _Holder(secret),
                    "attempt": 3,
                }
            },
        )

    line = stream.getvalue()
    assert value not in line
    assert json.dumps(value)[1:-1] not in line  # nor its JSON-escaped form
    entry = json.loads(line)
    assert entry["message"] == "delivery to [redacted] failed"
    assert entry["request"] == {
        "url": "[redacted]",
        "headers": [["Authorization", "Bearer [redacted]"]],
    }
    assert entry["[redacted]"] == "as a key"
    assert entry["holder"] == "Holder([redacted])"
    assert (entry["receiver"], entry["attempt"], entry["error_type"]) == (
        "slack",
        3,
        "ConnectionError",
    )


def test_the_filter_redacts_the_record_for_every_later_handler() -> None:
    secret = secret_value()
    shared_log.redact(secret)
    try:
        raise ValueError(f"bad key {secret}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "key %s", (secret,), sys.exc_info()
        )
    record.fields = {"nested": {"list": [secret, 1]}}

    assert shared_log.RedactionFilter().filter(record) is True

    text = logging.Formatter("%(message)s %(fields)s").format(record)
    assert secret not in text
    assert record.getMessage() == "key [redacted]"
    assert getattr(record, "fields", None) == {"nested": {"list": ["[redacted]", 1]}}
    assert record.exc_text and "bad key [redacted]" in record.exc_text


def test_values_too_short_to_be_secrets_are_not_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shared_log, "_REDACTIONS", shared_log._Redactions())
    shared_log.redact("")
    shared_log.redact("v" * (shared_log.MIN_REDACTED_LENGTH - 1))
    assert shared_log.redacted("delivery vvvvvvv") == "delivery vvvvvvv"

    shared_log.redact("v" * shared_log.MIN_REDACTED_LENGTH)
    assert shared_log.redacted("x vvvvvvvv y") == "x [redacted] y"


def test_with_nothing_registered_the_filter_leaves_records_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shared_log, "_REDACTIONS", shared_log._Redactions())
    fields = {"a": ["b"]}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m %s", ("arg",), None)
    record.fields = fields

    assert shared_log.RedactionFilter().filter(record) is True

    assert (record.msg, record.args) == ("m %s", ("arg",))
    assert getattr(record, "fields", None) is fields
    assert shared_log.redacted("anything") == "anything"


def test_configure_logging_installs_the_filter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    shared_log.configure_logging()
    try:
        secret = secret_value()
        shared_log.redact(secret)
        logging.getLogger("opsuite.test.redaction").warning(
            "token", extra={"fields": {"token": secret}}
        )
        out = capsys.readouterr().out
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)

    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {"message": "token", "token": "[redacted]"}.items() <= lines[-1].items()
    installed = [h for h in root.handlers if isinstance(h, shared_log._StdoutHandler)]
    for handler in installed:  # already there before this test: the filter was added to it
        assert any(isinstance(f, shared_log.RedactionFilter) for f in handler.filters)


def test_gcp_strips_one_trailing_newline_and_redacts_what_receivers_use() -> None:
    """``gcloud secrets versions add --data-file`` keeps the file's newline; the value is
    the line (as the local store reads its files), and the form a receiver uses is
    redacted too."""
    with gcp_backend() as backend:
        name, value = secret_id(), secret_value()
        backend.add_version(name, value + "\n")

        assert backend.store.get(name) == value
        assert shared_log.redacted(f"url={value.strip()}") == "url=[redacted]"
