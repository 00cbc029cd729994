"""The headless-browser harness (tests/browser.py) on tiny pages written to tmp_path.

- A clean page: nothing requested, no console or page error, its text readable.
- `console.error` and an uncaught exception are reported.
- An `<img>` on https, a `fetch()` to http and a WebSocket are each recorded and aborted (the
  test is offline).
- The vendored Vega-Lite runtime renders a bar chart to SVG, and a bar's aria-label carries its
  data value, with nothing requested.
- The screenshot is a PNG.
- chromium_path() finds the binary; without one, a test skips only where it can't be installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.report_assets import vega_scripts
from tests import browser
from tests.browser import PageTimeout, chromium_path, open_page, require_chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>t</title></head>'
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def test_clean_page_has_no_requests_or_errors_and_its_text_is_readable(tmp_path: Path) -> None:
    path = _page(
        tmp_path,
        '<h1 id="title">Ops report</h1><ul><li class="item">one</li><li class="item"> two </li></ul>'
        "<script>document.body.dataset.ready = String(1 + 1 === 2)</script>",
    )
    with open_page(path, wait_for='[data-ready="true"]') as page:
        assert page.problems() == []
        assert page.texts("#title") == ["Ops report"]
        assert page.texts("li.item") == ["one", "two"]
        assert page.attribute("body", "data-ready") == "true"
        assert page.attribute("body", "data-missing") is None
        assert page.count("li") == 2
        assert page.evaluate("() => document.title") == "t"
        assert page.evaluate("n => n * 2", 21) == 42


def test_console_errors_warnings_and_uncaught_exceptions_are_reported(tmp_path: Path) -> None:
    path = _page(
        tmp_path,
        "<script>console.log('fine'); console.info('fine too'); console.error('boom');"
        "console.warn('careful')</script>"
        "<script>undefinedFn()</script>"
        "<script>document.body.dataset.ready = 'true'</script>",
    )
    with open_page(path, wait_for='[data-ready="true"]') as page:
        assert page.console_errors == ["error: boom", "warning: careful"]
        assert len(page.page_errors) == 1
        assert "undefinedFn is not defined" in page.page_errors[0]
        assert page.requests == []


def test_network_requests_are_recorded_and_blocked(tmp_path: Path) -> None:
    # each settles (error / rejection) only because it is aborted: nothing leaves the machine
    path = _page(
        tmp_path,
        '<img id="i" src="https://example.com/x.png">'
        "<script>"
        "const img = new Promise(ok => { const i = document.getElementById('i');"
        "  i.complete ? ok(i.naturalWidth ? 'loaded' : 'failed')"
        "    : (i.onerror = () => ok('failed'), i.onload = () => ok('loaded')); });"
        "const net = fetch('http://example.com').then(() => 'fetched', e => 'blocked: ' + e.name);"
        "const ws = new Promise(ok => { const s = new WebSocket('ws://example.org/feed');"
        "  s.onopen = () => ok('open'); s.onclose = () => ok('closed'); });"
        "Promise.all([img, net, ws]).then(([a, b, c]) => {"
        "  document.body.dataset.img = a; document.body.dataset.fetch = b;"
        "  document.body.dataset.ws = c; document.body.dataset.ready = 'true'; });"
        "</script>",
    )
    with open_page(path, wait_for='[data-ready="true"]') as page:
        assert sorted(page.requests) == [
            "http://example.com/",
            "https://example.com/x.png",
            "ws://example.org/feed",
        ]
        assert page.attribute("body", "data-img") == "failed"
        assert page.attribute("body", "data-fetch") == "blocked: TypeError"
        assert page.attribute("body", "data-ws") == "closed"
        # Chromium logs each aborted load; nothing was thrown
        assert page.console_errors
        assert all("net::ERR_FAILED" in e for e in page.console_errors), page.console_errors
        assert page.page_errors == []


def test_vega_lite_bar_chart_renders_to_svg_offline(tmp_path: Path) -> None:
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "data": {"values": [{"slo": "freshness", "n": 3}, {"slo": "backups", "n": 17}]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "slo", "type": "nominal"},
            "y": {"field": "n", "type": "quantitative"},
        },
    }
    path = _page(
        tmp_path,
        f'<div id="c"></div>{vega_scripts()}'
        f"<script>vegaEmbed('#c', {json.dumps(spec)}, {{renderer: 'svg', actions: false}})"
        ".then(() => { document.body.dataset.ready = 'true'; })"
        ".catch(e => console.error('vegaEmbed: ' + e));</script>",
        name="chart.html",
    )
    png = tmp_path / "shots" / "chart.png"
    with open_page(path, wait_for="svg .mark-rect path", screenshot=png) as page:
        assert page.problems() == []
        assert page.attribute("body", "data-ready") == "true"
        assert page.count("#c svg") == 1
        # one bar per row, each labelled with its field values
        labels = page.attributes("svg .mark-rect path", "aria-label")
        assert sorted(labels, key=str) == ["slo: backups; n: 17", "slo: freshness; n: 3"]
        assert {"freshness", "backups"} <= set(page.texts("svg .role-axis-label text"))
    assert page.screenshot == png
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 1000


def test_screenshot_is_a_png(tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    path = _page(tmp_path, "<p style='height: 2000px'>tall</p>")
    with open_page(path, screenshot=png) as page:
        assert page.texts("p") == ["tall"]
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    # full page: the IHDR height is the document's, not the 900 px viewport's
    assert int.from_bytes(data[20:24], "big") > 2000


def test_waiting_for_a_missing_element_times_out_with_what_the_page_reported(
    tmp_path: Path,
) -> None:
    path = _page(tmp_path, "<script>console.error('never ready')</script>")
    with pytest.raises(PageTimeout, match=r"(?s)'#never' did not appear.*never ready"):
        with open_page(path, wait_for="#never", timeout_ms=1500):
            pass


def test_chromium_path_finds_the_binary() -> None:
    path = require_chromium()
    assert path == chromium_path()
    assert Path(path).is_file()


def test_no_chromium_skips_only_where_it_cannot_be_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(browser, "chromium_path", lambda: None)
    monkeypatch.setattr(browser, "_is_root", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="can't be installed here"):
        browser.require_chromium()
    monkeypatch.setattr(browser, "_is_root", lambda: True)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(pytest.fail.Exception, match="make browser"):
        browser.require_chromium()
