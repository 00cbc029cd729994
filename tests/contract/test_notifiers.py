"""The receivers against real HTTP servers on loopback (pytest-httpserver).

What each receiver puts on the wire, how its answers are treated (200/202, 429 with
Retry-After, 500, a slow answer, 400, a redirect), the SSRF guard (refused before any
connection), and that no secret (webhook URL, routing key, HMAC key) reaches an
exception or a log line.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.adapters.notify import (
    SLACK_HOSTS,
    DeliveryRefused,
    DeliveryTransient,
    HttpClient,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
    deliver_with_retries,
)
from shared.adapters.notify.pagerduty import pagerduty_event
from shared.adapters.notify.slack import slack_message
from shared.adapters.notify.webhook import signature, webhook_payload
from shared.alerting_config import PagerDutyConfig, SlackConfig, WebhookConfig
from shared.errors import NotFound, TransientError
from shared.models import Alert, DeliveryResult, Notification
from shared.retry import Clock

SLACK_PATH = "/services/T0000/B0000/SLACKTOKEN0123456789"
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"
HMAC_KEY = "HMACKEY-0123456789-secret"
WEBHOOK_PATH = "/hooks/opsuite/WEBHOOKTOKEN987654321"
SECRETS_IN_PLAY = ("SLACKTOKEN0123456789", ROUTING_KEY, HMAC_KEY, "WEBHOOKTOKEN987654321")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class DictSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str:
        if name not in self.values:
            raise NotFound(f"secret {name} not found")
        return self.values[name]


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep, jitter=lambda: 0.5)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def alert(fingerprint: str = "fp-1", status: str = "firing", summary: str = "stale") -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
        severity="P1",
        labels={"alertname": "DataStale", "table": "games"},
        annotations={"summary": summary},
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1) if status == "resolved" else None,
        source="slo",
        source_id="evt-1",
    )


def notification(*alerts: Alert) -> Notification:
    return Notification(
        receiver="oncall",
        group_key="g1",
        group_labels={"alertname": "DataStale"},
        alerts=alerts or (alert(),),
    )


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver_ipv4
    httpserver_ipv4.clear()


@pytest.fixture
def http() -> HttpClient:
    """The client the tests give the loopback allowance (production never does)."""
    return HttpClient(allow_loopback=True, connect_timeout=2, read_timeout=2)


def slack(server: HTTPServer, http: HttpClient, path: str = SLACK_PATH) -> SlackNotifier:
    secrets = DictSecrets({"slack-hook": server.url_for(path) + "\n"})
    return SlackNotifier(SlackConfig(webhook_url_secret="slack-hook"), secrets, http)


def pagerduty(server: HTTPServer, http: HttpClient) -> PagerDutyNotifier:
    return PagerDutyNotifier(
        PagerDutyConfig(routing_key_secret="pd-key"),
        DictSecrets({"pd-key": ROUTING_KEY}),
        http,
        url=server.url_for("/v2/enqueue"),
    )


def webhook(server: HTTPServer, http: HttpClient, **config: Any) -> WebhookNotifier:
    secrets = DictSecrets({"hook-url": server.url_for(WEBHOOK_PATH), "hook-key": HMAC_KEY})
    return WebhookNotifier(
        WebhookConfig(url_secret="hook-url", hmac_key_secret="hook-key", **config),
        secrets,
        http,
        allowed_hosts=["hooks.example.com"],
        now=lambda: 1_700_000_000.0,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS_IN_PLAY:
            assert secret not in text, f"secret leaked into: {text[:200]}"


def exception_texts(exc: BaseException) -> list[str]:
    """The message of ``exc`` and of every exception chained to it."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


# -- payloads on the wire ------------------------------------------------------------------
def test_slack_posts_block_kit_to_the_webhook_and_accepts_200(
    server: HTTPServer, http: HttpClient
) -> None:
    server.expect_request(SLACK_PATH, method="POST").respond_with_data("ok", status=200)
    note = notification(alert(summary="<!channel> <https://evil|click>"))
    result = slack(server, http).send(note)
    assert result == DeliveryResult("oncall", 200, "ok")
    ((request, _),) = server.log
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(request.get_data())
    assert body == slack_message(note, note.alerts)
    assert "<!channel>" not in request.get_data(as_text=True)
    assert "&lt;!channel&gt; &lt;https://evil|click&gt;" in body["blocks"][1]["text"]["text"]


def test_pagerduty_sends_one_event_per_alert_and_accepts_202(
    server: HTTPServer, http: HttpClient
) -> None:
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "x"}, status=202
    )
    note = notification(alert("fp-open"), alert("fp-closed", status="resolved"))
    result = pagerduty(server, http).send(note)
    assert result.status_code == 202
    assert result.response.startswith("2 event(s) accepted")
    bodies = [json.loads(request.get_data()) for request, _ in server.log]
    assert bodies == [
        pagerduty_event(note.alerts[0], ROUTING_KEY, client_url=None),
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "fp-closed"},
    ]
    assert bodies[0]["event_action"] == "trigger" and bodies[0]["dedup_key"] == "fp-open"


def test_webhook_posts_alertmanager_v4_signed_over_the_exact_body(
    server: HTTPServer, http: HttpClient
) -> None:
    server.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("", status=204)
    alerts = [alert(f"fp-{i}") for i in range(3)]
    result = webhook(server, http, max_alerts=2).send(notification(*alerts))
    assert result.status_code == 204
    ((request, _),) = server.log
    raw = request.get_data()
    assert json.loads(raw) == webhook_payload(notification(*alerts), alerts, max_alerts=2)
    assert json.loads(raw)["truncatedAlerts"] == 1
    timestamp = request.headers["X-Opsuite-Timestamp"]
    assert timestamp == "1700000000"
    expected = (
        "sha256="
        + hmac.new(HMAC_KEY.encode(), timestamp.encode() + b"." + raw, "sha256").hexdigest()
    )
    assert request.headers["X-Opsuite-Signature"] == expected
    assert signature(HMAC_KEY.encode(), timestamp, raw) == expected


# -- answers -------------------------------------------------------------------------------
class Recording:
    """Wraps a notifier, keeping what each send raised."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.errors: list[Exception] = []

    def send(self, note: Notification) -> DeliveryResult:
        try:
            result: DeliveryResult = self.inner.send(note)
        except Exception as exc:
            self.errors.append(exc)
            raise
        return result


def test_429_with_retry_after_seconds_waits_at_least_that_then_succeeds(
    server: HTTPServer, http: HttpClient
) -> None:
    server.expect_ordered_request(SLACK_PATH).respond_with_data(
        "rate_limited", status=429, headers={"Retry-After": "7"}
    )
    server.expect_ordered_request(SLACK_PATH).respond_with_data("ok", status=200)
    clock = FakeClock()
    result = deliver_with_retries(slack(server, http), notification(), deadline=60, clock=clock)
    assert result.status_code == 200
    assert len(server.log) == 2
    assert clock.sleeps == [7.0]


def test_429_with_retry_after_http_date_waits_at_least_that_then_succeeds(
    server: HTTPServer, http: HttpClient
) -> None:
    def rate_limited(request: Request) -> Response:
        later = datetime.now(UTC) + timedelta(seconds=5)
        return Response(
            '{"status":"throttle"}',
            status=429,
            headers={"Retry-After": format_datetime(later, usegmt=True)},
        )

    server.expect_ordered_request("/v2/enqueue").respond_with_handler(rate_limited)
    server.expect_ordered_request("/v2/enqueue").respond_with_data("{}", status=202)
    clock = FakeClock()
    notifier = Recording(pagerduty(server, http))
    result = deliver_with_retries(notifier, notification(), deadline=60, clock=clock)
    assert result.status_code == 202
    (error,) = notifier.errors
    assert isinstance(error, DeliveryTransient) and error.status == 429
    # the date was read (not ignored): about 5 s against the server's Date header
    assert error.retry_after_seconds is not None and 3 < error.retry_after_seconds <= 6
    assert clock.sleeps[0] >= error.retry_after_seconds


def test_500_then_success_is_retried(server: HTTPServer, http: HttpClient) -> None:
    server.expect_ordered_request(WEBHOOK_PATH).respond_with_data("oops", status=500)
    server.expect_ordered_request(WEBHOOK_PATH).respond_with_data("ok", status=200)
    clock = FakeClock()
    result = deliver_with_retries(webhook(server, http), notification(), deadline=60, clock=clock)
    assert result == DeliveryResult("oncall", 200, "ok")
    assert len(server.log) == 2 and clock.sleeps == [0.5]


def test_an_answer_slower_than_the_read_timeout_is_transient(server: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response("ok")

    server.expect_request(SLACK_PATH).respond_with_handler(slow)
    client = HttpClient(allow_loopback=True, connect_timeout=1, read_timeout=0.2)
    with pytest.raises(DeliveryTransient, match="timed out") as raised:
        slack(server, client).send(notification())
    assert_no_secret(*exception_texts(raised.value))
    # let the server finish the slow answer so it doesn't land in the next test's log
    for _ in range(100):
        if server.log:
            break
        time.sleep(0.05)


def test_nothing_listening_is_transient(http: HttpClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secrets = DictSecrets({"slack-hook": f"http://127.0.0.1:{port}{SLACK_PATH}"})
    notifier = SlackNotifier(SlackConfig(webhook_url_secret="slack-hook"), secrets, http)
    with pytest.raises(DeliveryTransient, match=re.escape("could not connect to host '127.0.0.1'")):
        notifier.send(notification())


def test_400_is_permanent_with_the_receivers_answer_and_not_retried(
    server: HTTPServer, http: HttpClient
) -> None:
    server.expect_request(SLACK_PATH).respond_with_data("invalid_payload", status=400)
    clock = FakeClock()
    with pytest.raises(DeliveryRefused) as raised:
        deliver_with_retries(slack(server, http), notification(), deadline=60, clock=clock)
    assert raised.value.status == 400 and raised.value.answer == "invalid_payload"
    assert "answered 400: invalid_payload" in str(raised.value)
    assert len(server.log) == 1 and clock.sleeps == []


def test_a_redirect_is_permanent_and_not_followed(server: HTTPServer, http: HttpClient) -> None:
    server.expect_request(SLACK_PATH).respond_with_data(
        "", status=302, headers={"Location": server.url_for("/elsewhere")}
    )
    server.expect_request("/elsewhere").respond_with_data("ok")
    with pytest.raises(DeliveryRefused, match="answered 302: redirects are not followed"):
        slack(server, http).send(notification())
    assert [request.path for request, _ in server.log] == [SLACK_PATH]


def test_the_answer_read_is_capped(server: HTTPServer, http: HttpClient) -> None:
    server.expect_request("/big").respond_with_data("x" * (1024 * 1024))
    response = http.post_json(server.url_for("/big"), {"a": 1}, allowed_hosts=())
    assert response.status == 200 and len(response.text) == 64 * 1024


# -- SSRF: refused before any connection --------------------------------------------------
class NoResolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        raise AssertionError(f"resolved {host}: the URL should have been refused first")


@pytest.mark.parametrize(
    ("url", "host", "why"),
    [
        (
            "http://hooks.slack.com/services/T/B/SLACKTOKEN0123456789",
            "hooks.slack.com",
            "plain http",
        ),
        (
            "https://metadata.google.internal/computeMetadata/v1/SLACKTOKEN0123456789",
            "metadata.google.internal",
            "metadata",
        ),
        ("https://169.254.169.254/latest/SLACKTOKEN0123456789", "169.254.169.254", "metadata"),
        ("https://10.0.0.7/services/SLACKTOKEN0123456789", "10.0.0.7", "IP literal"),
        ("https://[::1]/services/SLACKTOKEN0123456789", "::1", "IP literal"),
        ("https://127.0.0.1/services/SLACKTOKEN0123456789", "127.0.0.1", "IP literal"),
        ("https://2130706433/services/SLACKTOKEN0123456789", "2130706433", "not a DNS host name"),
        ("https://localhost/services/SLACKTOKEN0123456789", "localhost", "loopback"),
        (
            "https://evil.example.com/services/SLACKTOKEN0123456789",
            "evil.example.com",
            "not an allowed",
        ),
        (
            "https://hooks.slack.com.evil.example/x/SLACKTOKEN0123456789",
            "hooks.slack.com.evil.example",
            "not an allowed",
        ),
        ("https://user:SLACKTOKEN0123456789@hooks.slack.com/x", "hooks.slack.com", "user info"),
        ("https://hooks.slack.com/x/SLACKTOKEN0123456789 /y", "hooks.slack.com", "spaces"),
    ],
)
def test_a_url_outside_the_policy_is_refused_naming_only_the_host(
    url: str, host: str, why: str
) -> None:
    resolver = NoResolver()
    client = HttpClient(resolver=resolver)
    allowed = {*SLACK_HOSTS, "metadata.google.internal", "169.254.169.254", "10.0.0.7"}
    with pytest.raises(DeliveryRefused, match=why) as raised:
        client.post_json(url, {"text": "hi"}, allowed_hosts=allowed)
    assert f"host {host!r}" in str(raised.value)
    assert raised.value.host == host
    assert_no_secret(*exception_texts(raised.value))
    assert resolver.asked == []


def test_the_loopback_allowance_is_off_by_default(server: HTTPServer) -> None:
    server.expect_request("/x").respond_with_data("ok")
    with pytest.raises(DeliveryRefused, match="IP literals"):
        HttpClient().post_json(server.url_for("/x"), {}, allowed_hosts={"127.0.0.1"})
    assert server.log == []


def test_the_metadata_server_is_refused_even_with_the_loopback_allowance() -> None:
    client = HttpClient(allow_loopback=True, resolver=NoResolver())
    with pytest.raises(DeliveryRefused, match="metadata"):
        client.post_json("http://169.254.169.254/x", {}, allowed_hosts={"169.254.169.254"})


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["93.184.216.34", "192.168.0.10"],
        ["::ffff:127.0.0.1"],
        ["100.64.0.1"],
        ["169.254.169.254"],
    ],
)
def test_a_name_resolving_to_a_non_public_address_is_refused_before_connecting(
    server: HTTPServer, addresses: list[str]
) -> None:
    server.expect_request(WEBHOOK_PATH).respond_with_data("ok")
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return addresses

    url = f"https://hooks.example.com:{server.port}{WEBHOOK_PATH}"
    with pytest.raises(DeliveryRefused, match="not a public address") as raised:
        HttpClient(resolver=resolver).post_json(url, {}, allowed_hosts={"hooks.example.com"})
    assert asked == [("hooks.example.com", server.port)]
    assert server.log == []
    assert_no_secret(*exception_texts(raised.value))


def test_a_notifier_refuses_a_secret_url_on_another_host_without_echoing_it(
    server: HTTPServer,
) -> None:
    secrets = DictSecrets(
        {"slack-hook": "https://evil.example.com/services/T/B/SLACKTOKEN0123456789"}
    )
    notifier = SlackNotifier(
        SlackConfig(webhook_url_secret="slack-hook"), secrets, HttpClient(resolver=NoResolver())
    )
    with pytest.raises(DeliveryRefused, match=re.escape("'evil.example.com'")) as raised:
        notifier.send(notification())
    assert_no_secret(*exception_texts(raised.value))


# -- secrets never in errors or logs -------------------------------------------------------
def test_no_secret_in_any_error_or_log_line_of_failing_deliveries(
    server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # the receivers echo what they were sent (path, body) in their answers
    echo = lambda request: Response(  # noqa: E731
        f"{request.full_path} {request.get_data(as_text=True)} {request.headers}", status=400
    )
    server.expect_request(SLACK_PATH).respond_with_handler(echo)
    server.expect_request("/v2/enqueue").respond_with_handler(echo)
    server.expect_request(WEBHOOK_PATH).respond_with_data(WEBHOOK_PATH, status=503)
    http = HttpClient(allow_loopback=True, connect_timeout=1, read_timeout=1)
    errors: list[BaseException] = []
    for notifier in (slack(server, http), pagerduty(server, http), webhook(server, http)):
        with pytest.raises((DeliveryRefused, DeliveryTransient)) as raised:
            deliver_with_retries(notifier, notification(), deadline=5, clock=FakeClock())
        errors.append(raised.value)
    refused_http = HttpClient(resolver=NoResolver())
    with pytest.raises(DeliveryRefused) as raised_url:
        slack(server, refused_http).send(notification())
    errors.append(raised_url.value)

    assert len(server.log) >= 3  # the deliveries did reach the receivers
    assert any(isinstance(e, TransientError) for e in errors)
    for error in errors:
        assert_no_secret(*exception_texts(error))
    # every log line on our side (werkzeug's are the test receiver's own access log)
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any("delivery failed" in r.getMessage() for r in ours)
    assert any(r.name == "shared.adapters.notify.http" and r.levelno == logging.DEBUG for r in ours)
    for record in ours:
        assert_no_secret(
            caplog.handler.format(record),
            json.dumps(getattr(record, "fields", {}), default=str),
            repr(record.args),
        )


# -- TLS: the production path (https to a name, connected to the checked address) ---------
def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, ssl.SSLContext]]:
    """An https receiver on 127.0.0.1 whose certificate names hooks.example.com, and a
    client TLS context that trusts only that certificate."""
    cert, key = self_signed(tmp_path, "hooks.example.com")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    server.start()
    client_context = ssl.create_default_context(cafile=str(cert))
    try:
        yield server, client_context
    finally:
        server.clear()
        server.stop()


def test_https_to_an_allowed_name_goes_to_the_checked_address_with_tls_verified(
    tls_server: tuple[HTTPServer, ssl.SSLContext],
) -> None:
    server, context = tls_server
    server.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    client = HttpClient(allow_loopback=True, resolver=resolver, tls_context=context)
    url = f"https://hooks.example.com:{server.port}{WEBHOOK_PATH}"
    response = client.post_json(url, {"a": 1}, allowed_hosts={"hooks.example.com"})
    assert response.status == 200 and response.text == "ok"
    assert asked == ["hooks.example.com"]
    ((request, _),) = server.log
    assert request.headers["Host"] == f"hooks.example.com:{server.port}"
    assert request.get_data() == b'{"a":1}'


def test_a_certificate_for_another_name_fails_before_anything_is_sent(
    tls_server: tuple[HTTPServer, ssl.SSLContext],
) -> None:
    server, context = tls_server
    server.expect_request(WEBHOOK_PATH).respond_with_data("ok")
    client = HttpClient(
        allow_loopback=True, resolver=lambda host, port: ["127.0.0.1"], tls_context=context
    )
    url = f"https://hooks.other.example:{server.port}{WEBHOOK_PATH}"
    with pytest.raises(DeliveryTransient, match="SSLCertVerificationError") as raised:
        client.post_json(url, {}, allowed_hosts={"hooks.other.example"})
    assert server.log == []
    assert_no_secret(*exception_texts(raised.value))
