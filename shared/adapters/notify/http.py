"""The guarded HTTP client every receiver posts through, and the delivery policy.

:class:`HttpClient` (stdlib ``http.client``: no library logs a URL at DEBUG, nothing
follows redirects behind our back) posts JSON only where a receiver may go:

* ``https`` only; the one exception is the test-only ``allow_loopback`` given to the
  constructor (off by default), which admits ``127.0.0.1`` / ``::1`` / ``localhost`` over
  http or https, whatever the allowed set;
* the host must be in the caller's allowed set (:data:`SLACK_HOSTS`,
  :data:`PAGERDUTY_HOSTS`, ``alerting.allowed_webhook_hosts``) and be a DNS name: IP
  literals (``10.0.0.1``, ``[::1]``, ``2130706433``), user info (``user@host``) and the
  metadata server (``metadata.google.internal``, ``169.254.169.254``) are refused even if
  listed;
* the name is resolved once and refused if *any* address is not public (private,
  loopback, link-local, CGNAT, multicast, reserved); the connection then goes to the
  address that was checked (TLS still verifies the name), so a DNS answer can't change
  between the check and the connection;
* no redirects (a 3xx is a :class:`DeliveryRefused`), the answer read up to
  ``max_response_bytes`` (64 KiB), the request at most ``max_request_bytes`` (512 KiB,
  PagerDuty's limit), short timeouts (connect 5 s, read 10 s).

A refused URL is a :class:`DeliveryRefused` naming the host, never the URL: webhook URLs
carry their token in the path.

The policy (:func:`outcome`): 2xx → :class:`DeliveryResult`; 429, 408, 5xx, timeouts and
connection failures → :class:`DeliveryTransient` (with ``retry_after_seconds`` from
``Retry-After``, seconds or an HTTP date); any other status → :class:`DeliveryRefused`
with the status and the first 300 characters of the answer, secrets blanked out.
:func:`deliver_with_retries` retries transient failures with backoff and jitter inside a
deadline, never sooner than ``Retry-After``.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from shared.errors import PermanentError, TransientError
from shared.models import Alert, DeliveryResult, Notification
from shared.ports import Notifier
from shared.retry import Clock

log = logging.getLogger(__name__)

#: Slack incoming webhooks
SLACK_HOSTS = frozenset({"hooks.slack.com"})
#: PagerDuty Events API v2 (US and EU service regions)
PAGERDUTY_HOSTS = frozenset({"events.pagerduty.com", "events.eu.pagerduty.com"})
#: never a receiver, whatever the allowed set says
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "169.254.169.254",
        "fd00:ec2::254",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_DNS_NAME = re.compile(r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 512 * 1024
#: how much of a receiver's answer goes into an error / the ledger
ANSWER_CHARS = 300
#: ``DeliveryResult.status_code`` when nothing was sent (resolved, ``send_resolved: false``)
NOT_SENT = 0
USER_AGENT = "opsuite-alert-router/1"

#: (host, port) → the addresses it resolves to (IP strings)
Resolver = Callable[[str, int], Sequence[str]]


class DeliveryTransient(TransientError):
    """A delivery that may succeed if retried (429, 5xx, timeout, connection failure)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_seconds = retry_after_seconds


class DeliveryRefused(PermanentError):
    """A delivery that retrying won't fix: a refused URL, a redirect, a 4xx answer."""

    def __init__(
        self, message: str, *, host: str | None = None, status: int | None = None, answer: str = ""
    ) -> None:
        super().__init__(message)
        self.host = host
        self.status = status
        self.answer = answer


class HttpResponse(NamedTuple):
    status: int
    #: header names lower-cased
    headers: Mapping[str, str]
    #: the body, at most ``max_response_bytes`` of it, decoded as UTF-8 (errors replaced)
    text: str


@dataclass(frozen=True, repr=False)
class Target:
    """A URL that passed :meth:`HttpClient.check_url`. Its repr leaves the path out: a
    webhook URL's path is its token."""

    scheme: str
    host: str
    port: int
    path: str
    #: a loopback host admitted by the test-only allowance
    loopback: bool

    def __repr__(self) -> str:
        return f"Target({self.scheme}://{self.host_header}/…)"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address. IPv6 forms that carry an IPv4 address (mapped, 6to4,
    NAT64, the deprecated IPv4-compatible ``::a.b.c.d``) are judged by that address:
    Python's ``is_global`` calls ``64:ff9b::a9fe:a9fe`` (the metadata server behind NAT64)
    global."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif any(ip in net for net in _NAT64) or ip in _IPV4_COMPATIBLE:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection over a socket we connected (to a checked address) ourselves."""

    def __init__(self, host: str, port: int, sock: socket.socket) -> None:
        super().__init__(host, port)
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._pinned


class HttpClient:
    """Posts JSON to receivers, refusing anything but an allowed public https host."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        allow_loopback: bool = False,
        resolver: Resolver | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes
        self.max_request_bytes = max_request_bytes
        #: TEST ONLY: admit http(s)://127.0.0.1 / [::1] / localhost, whatever the allowed set
        self.allow_loopback = allow_loopback
        self._resolve: Resolver = resolver or _default_resolver
        self._tls = tls_context or ssl.create_default_context()

    # -- the URL policy ------------------------------------------------------------------
    def check_url(self, url: str, allowed_hosts: Collection[str]) -> Target:
        """The URL's target if the policy admits it (no DNS look-up: :meth:`post_json`
        resolves and checks the addresses), else :class:`DeliveryRefused` naming the host.
        Usable at config load to refuse a receiver URL early."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
        except ValueError:
            raise DeliveryRefused("refused a receiver URL that does not parse") from None
        if not host:
            raise DeliveryRefused("refused a receiver URL without a host")

        def refuse(why: str) -> DeliveryRefused:
            return DeliveryRefused(f"refused a receiver URL for host {host!r}: {why}", host=host)

        if any(ch <= " " or ch == "\x7f" for ch in url) or not url.isascii():
            raise refuse("it contains spaces, control or non-ASCII characters")
        if "@" in parts.netloc:
            raise refuse("user info in the URL is not allowed")
        try:
            port = parts.port
        except ValueError:
            raise refuse("the port is not a number in 1-65535") from None
        if host in METADATA_HOSTS:
            raise refuse("the metadata server is never a receiver")
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise refuse(f"scheme {scheme!r} is not https")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query

        loopback = False
        try:
            literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
                host
            )
        except ValueError:
            literal = None
        if literal is not None:
            if not (self.allow_loopback and _loopback(literal)):
                raise refuse("IP literals are not allowed, only allowed host names")
            loopback = True
        elif host in _LOOPBACK_NAMES or host.endswith(".localhost"):
            if not self.allow_loopback:
                raise refuse("loopback hosts are not allowed")
            loopback = True
        elif not _DNS_NAME.fullmatch(host):
            raise refuse("not a DNS host name")

        if scheme != "https" and not loopback:
            raise refuse("plain http is not allowed, only https")
        if not loopback and host not in {h.lower().rstrip(".") for h in allowed_hosts}:
            raise refuse("not an allowed receiver host")
        default_port = 443 if scheme == "https" else 80
        return Target(scheme, host, port or default_port, path, loopback)

    def _addresses(self, target: Target) -> list[str]:
        try:
            literal = ipaddress.ip_address(target.host)
        except ValueError:
            pass
        else:
            return [str(literal)]
        try:
            addresses = list(self._resolve(target.host, target.port))
        except (OSError, UnicodeError) as exc:
            raise DeliveryTransient(f"could not resolve host {target.host!r}") from exc
        if not addresses:
            raise DeliveryTransient(f"host {target.host!r} resolved to no address")
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not (_public(ip) or (self.allow_loopback and _loopback(ip))):
                raise DeliveryRefused(
                    f"refused host {target.host!r}: it resolves to {ip}, not a public address",
                    host=target.host,
                )
        return addresses

    # -- the request ---------------------------------------------------------------------
    def post_json(
        self,
        url: str,
        body: bytes | Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        allowed_hosts: Collection[str],
        timeout: float | None = None,
    ) -> HttpResponse:
        """POST ``body`` (bytes sent as they are, or a mapping encoded as compact JSON) to
        ``url`` if the policy admits it; the answer whatever its status, except a 3xx
        (:class:`DeliveryRefused`: redirects are not followed). ``timeout`` overrides the
        read timeout. Failures to connect or read in time are :class:`DeliveryTransient`."""
        target = self.check_url(url, allowed_hosts)
        data = body if isinstance(body, bytes) else json_bytes(body)
        if len(data) > self.max_request_bytes:
            raise DeliveryRefused(
                f"refused a {len(data)}-byte request to host {target.host!r}: "
                f"more than {self.max_request_bytes} bytes",
                host=target.host,
            )
        addresses = self._addresses(target)
        read_timeout = self.read_timeout if timeout is None else timeout
        started = time.monotonic()
        sock = self._connect(target, addresses)
        request_headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
            **(headers or {}),
            # last: the name that was checked, whatever the caller's headers say
            "Host": target.host_header,
            "Connection": "close",
        }
        conn: _PinnedConnection | None = None
        try:
            sock.settimeout(read_timeout)
            if target.scheme == "https":
                sock = self._tls.wrap_socket(sock, server_hostname=target.host)
            conn = _PinnedConnection(target.host, target.port, sock)
            conn.request("POST", target.path, body=data, headers=request_headers)
            response = conn.getresponse()
            text = self._read(response, started + self.connect_timeout + read_timeout)
            status = response.status
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        except TimeoutError as exc:
            raise DeliveryTransient(
                f"POST to host {target.host!r} timed out (read timeout {read_timeout:g} s)"
            ) from exc
        except http.client.HTTPException as exc:
            # from None: a malformed status line may echo our request line (the URL path)
            raise DeliveryTransient(
                f"POST to host {target.host!r} failed: {type(exc).__name__}"
            ) from None
        except OSError as exc:
            raise DeliveryTransient(
                f"POST to host {target.host!r} failed: {type(exc).__name__}: {exc.strerror or exc}"
            ) from exc
        finally:
            if conn is not None:
                conn.close()
            sock.close()
        log.debug(
            "receiver answered",
            extra={
                "fields": {
                    "host": target.host,
                    "status": status,
                    "elapsed_ms": round((time.monotonic() - started) * 1000),
                }
            },
        )
        if 300 <= status < 400:
            raise DeliveryRefused(
                f"host {target.host!r} answered {status}: redirects are not followed",
                host=target.host,
                status=status,
            )
        return HttpResponse(status, answer_headers, text)

    def _connect(self, target: Target, addresses: Sequence[str]) -> socket.socket:
        failure: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection(
                    (address, target.port), timeout=self.connect_timeout
                )
            except OSError as exc:
                failure = exc
        reason = type(failure).__name__ if failure else "no address"
        raise DeliveryTransient(f"could not connect to host {target.host!r}: {reason}")

    def _read(self, response: http.client.HTTPResponse, deadline: float) -> str:
        chunks: list[bytes] = []
        size = 0
        while size < self.max_response_bytes:
            if time.monotonic() > deadline:
                raise TimeoutError("answer not read in time")
            chunk = response.read(min(16384, self.max_response_bytes - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (the exact bytes sent and, for webhooks, signed)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the delivery policy -----------------------------------------------------------------
def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret blanked out, and for a secret URL its path, query and
    long path segments (tokens) too: a receiver may echo part of what it was sent."""
    pieces: set[str] = set()
    for secret in secrets:
        if len(secret) < 4:
            continue
        pieces.add(secret)
        try:
            parts = urlsplit(secret)
        except ValueError:
            continue
        if parts.scheme and parts.netloc:
            pieces.update(p for p in (parts.path, parts.query) if len(p) > 1)
            pieces.update(s for s in parts.path.split("/") if len(s) >= 8)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "[redacted]")
    return text


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP date; None if
    absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _answer_date(headers: Mapping[str, str]) -> datetime:
    """The receiver's clock (its ``Date``) to read an HTTP-date ``Retry-After`` against,
    so our clock's skew doesn't matter; ours if it sent none."""
    try:
        when = parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def outcome(
    receiver: str, host: str, response: HttpResponse, *, secrets: Iterable[str] = ()
) -> DeliveryResult:
    """Map a receiver's answer: 2xx → :class:`DeliveryResult`; 429, 408, 5xx →
    :class:`DeliveryTransient` (``Retry-After`` honoured); else :class:`DeliveryRefused`.
    The answer kept is the first 300 characters, with ``secrets`` blanked out."""
    answer = redact(response.text, secrets)[:ANSWER_CHARS]
    status = response.status
    if 200 <= status < 300:
        return DeliveryResult(receiver=receiver, status_code=status, response=answer)
    message = f"receiver {receiver!r}: host {host!r} answered {status}: {answer}"
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(
            response.headers.get("retry-after"), now=_answer_date(response.headers)
        )
        raise DeliveryTransient(message, status=status, retry_after_seconds=retry_after)
    raise DeliveryRefused(message, host=host, status=status, answer=answer)


def alerts_to_send(notification: Notification, send_resolved: bool) -> tuple[Alert, ...]:
    """The alerts a receiver is sent, firing first: without ``send_resolved`` the
    resolved ones are left out (as Alertmanager does); empty → send nothing."""
    alerts = sorted(notification.alerts, key=lambda a: a.status != "firing")
    return tuple(a for a in alerts if send_resolved or a.status == "firing")


def not_sent(notification: Notification) -> DeliveryResult:
    return DeliveryResult(
        receiver=notification.receiver,
        status_code=NOT_SENT,
        response="not sent: only resolved alerts and send_resolved is false",
    )


def deliver_with_retries(
    notifier: Notifier,
    notification: Notification,
    *,
    deadline: float,
    clock: Clock,
    first_delay: float = 0.5,
    max_delay: float = 8.0,
) -> DeliveryResult:
    """``notifier.send`` until it succeeds, retrying TransientError with capped
    exponential backoff and jitter, waiting at least the receiver's ``Retry-After``.
    ``deadline`` is on ``clock.monotonic``: a retry that can't start before it isn't
    made, and the last TransientError is raised (Pub/Sub redelivers). PermanentError
    is raised at once. Leave room for one attempt's timeouts before the real deadline."""
    delay = first_delay
    attempt = 1
    while True:
        try:
            return notifier.send(notification)
        except TransientError as exc:
            wait = min(delay * (0.5 + clock.jitter()), max_delay)
            retry_after = getattr(exc, "retry_after_seconds", None)
            if isinstance(retry_after, int | float):
                wait = max(wait, float(retry_after))
            fields = {
                "receiver": notification.receiver,
                "attempt": attempt,
                "error": str(exc),
            }
            if clock.monotonic() + wait >= deadline:
                log.warning(
                    "delivery failed, no time left to retry",
                    extra={"fields": {**fields, "wait_seconds": round(wait, 3)}},
                )
                raise
            log.info(
                "delivery failed, retrying",
                extra={"fields": {**fields, "wait_seconds": round(wait, 3)}},
            )
            clock.sleep(wait)
            delay = min(delay * 2, max_delay)
            attempt += 1
