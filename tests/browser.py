"""Headless Chromium for tests: open a local HTML file offline and look at what it did.

Playwright (pinned in requirements-dev.lock) drives Debian's `chromium` package. `playwright
install` is never run: its browser download is not reachable here, and the system binary is
what `make browser` (and `.ci/run`, before `make test`) installs with apt-get.

    with open_page(path, wait_for="svg .mark-rect", screenshot=tmp_path / "page.png") as page:
        assert page.requests == [] and page.console_errors == [] and page.page_errors == []
        labels = page.attributes("svg .mark-rect path", "aria-label")

- Only `file:` URLs load. Every other request the page makes (http, https, ws, ...) is aborted
  and its URL recorded in `requests`, so a test is offline and can say what would have left
  the machine. Host names don't resolve either (`--host-resolver-rules`), for anything the
  route does not see (DNS prefetch, preconnect). `data:` and `blob:` URLs never reach the
  network and are not recorded.
- `console_errors` holds the console messages of type error and warning (an aborted request
  logs one too: "Failed to load resource: net::ERR_FAILED"), `page_errors` the uncaught
  exceptions.
- The browser stays open inside the `with` block (DOM queries need it) and is closed after.

When chromium is missing, `require_chromium()` skips the test only where it can't be had (not
root, or no apt-get). Where `make browser` could install it, the test fails instead and says
so: a machine that can run the browser tests must not skip them quietly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Route, WebSocketRoute

#: Debian's real binary; /usr/bin/chromium is a shell wrapper around it.
SYSTEM_CHROMIUM = "/usr/lib/chromium/chromium"
INSTALL_HINT = "make browser (as root: apt-get install -y --no-install-recommends chromium)"

#: Offline, headless, no GPU: no background calls to Google hosts, nothing resolves.
CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
VIEWPORT = {"width": 1200, "height": 900}


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def chromium_path() -> str | None:
    """The Chromium binary to launch: Debian's real one, else `chromium` on PATH, else None."""
    if os.access(SYSTEM_CHROMIUM, os.X_OK):
        return SYSTEM_CHROMIUM
    return shutil.which("chromium")


def chromium_installable() -> bool:
    """Whether `make browser` could install chromium here (root with apt-get)."""
    return _is_root() and shutil.which("apt-get") is not None


def require_chromium() -> str:
    """The Chromium binary; skips the test where none can be had, fails where one could."""
    path = chromium_path()
    if path is not None:
        return path
    if chromium_installable():
        pytest.fail(
            f"chromium is not installed ({SYSTEM_CHROMIUM} missing, none on PATH) but can be "
            f"here: run {INSTALL_HINT}. .ci/run does this before make test."
        )
    why = "not running as root" if not _is_root() else "no apt-get"
    pytest.skip(
        f"chromium is not installed ({SYSTEM_CHROMIUM} missing, none on PATH) and can't be "
        f"installed here ({why}): install Debian's chromium package to run the browser tests"
    )


class PageTimeout(AssertionError):
    """`wait_for` did not appear in time; the message carries what the page reported."""


@dataclass
class PageResult:
    """What one page did, and its live DOM until the `open_page` block ends."""

    url: str
    page: Page
    #: URLs of the non-file requests, each aborted, in the order the page made them.
    requests: list[str] = field(default_factory=list)
    #: Console messages of type error or warning, as "type: text".
    console_errors: list[str] = field(default_factory=list)
    #: Uncaught exceptions (`pageerror`), as their messages.
    page_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    def texts(self, selector: str) -> list[str]:
        """The text content of every element matching the CSS `selector`, stripped."""
        texts: list[str] = self.page.eval_on_selector_all(
            selector, "els => els.map(e => (e.textContent || '').trim())"
        )
        return texts

    def attribute(self, selector: str, name: str) -> str | None:
        """Attribute `name` of the first element matching `selector` (None: absent)."""
        handle = self.page.query_selector(selector)
        if handle is None:
            raise AssertionError(f"no element matches {selector!r} in {self.url}")
        return handle.get_attribute(name)

    def attributes(self, selector: str, name: str) -> list[str | None]:
        """Attribute `name` of every element matching `selector` (None where absent)."""
        values: list[str | None] = self.page.eval_on_selector_all(
            selector, "(els, name) => els.map(e => e.getAttribute(name))", name
        )
        return values

    def count(self, selector: str) -> int:
        """How many elements match `selector`."""
        return len(self.page.query_selector_all(selector))

    def evaluate(self, js: str, arg: Any = None) -> Any:
        """The JSON-able value of the JavaScript expression or function `js` in the page."""
        return self.page.evaluate(js, arg)

    def problems(self) -> list[str]:
        """Everything that would make an offline, error-free page fail, one line each."""
        return (
            [f"request: {url}" for url in self.requests]
            + [f"console {text}" for text in self.console_errors]
            + [f"pageerror: {text}" for text in self.page_errors]
        )


@contextmanager
def open_page(
    path: Path,
    *,
    screenshot: Path | None = None,
    wait_for: str | None = None,
    timeout_ms: int = 20000,
) -> Iterator[PageResult]:
    """Open the local HTML file `path` in headless Chromium, offline; see the module docstring.

    Waits for the load event, then for an element matching the CSS selector `wait_for` (if
    given) to be in the DOM, then writes a full-page PNG to `screenshot` (if given).
    """
    executable = require_chromium()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # it is in requirements-dev.lock
        pytest.fail(f"playwright is not installed in this environment: run make install ({exc})")

    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if _is_root() else [])]
    url = Path(path).resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=args, timeout=timeout_ms
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            result = PageResult(url=url, page=page)

            def on_route(route: Route) -> None:
                request_url = route.request.url
                if request_url.startswith("file:"):
                    route.continue_()
                else:
                    result.requests.append(request_url)
                    route.abort()

            def on_websocket(ws: WebSocketRoute) -> None:
                # never connected to a server: recorded and closed
                result.requests.append(ws.url)
                ws.close()

            def on_console(message: ConsoleMessage) -> None:
                if message.type in ("error", "warning"):
                    result.console_errors.append(f"{message.type}: {message.text}")

            context.route("**/*", on_route)
            context.route_web_socket("**/*", on_websocket)
            page.on("console", on_console)
            page.on("pageerror", lambda error: result.page_errors.append(str(error)))

            page.goto(url, wait_until="load", timeout=timeout_ms)
            if wait_for is not None:
                try:
                    page.wait_for_selector(wait_for, state="attached", timeout=timeout_ms)
                except PlaywrightError as exc:
                    reported = "\n  ".join(result.problems()) or "(nothing reported)"
                    raise PageTimeout(
                        f"{wait_for!r} did not appear in {url} within {timeout_ms} ms; "
                        f"the page reported:\n  {reported}"
                    ) from exc
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
                result.screenshot = screenshot
            yield result
        finally:
            browser.close()
