"""docs/report.png (the README's screenshot): a report opened in headless Chromium.

``python -m tools.report_screenshot REPORT.html OUT.png`` (``make report-screenshot``)
opens the page through the tests' browser harness (offline: every request is blocked),
waits for its charts, refuses a page that drew an error, fetched anything or logged a
console error, and writes a PNG of the whole page: as tall as the page is, whatever the
report holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser import PageTimeout, chromium_path, open_page


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tools.report_screenshot REPORT.html OUT.png", file=sys.stderr)
        return 64
    report, out = Path(argv[0]), Path(argv[1])
    if not report.is_file():
        print(f"{report}: no such report (run `make demo` first)", file=sys.stderr)
        return 66
    if chromium_path() is None:
        print(
            "chromium is not installed: run `make browser` (it installs Debian's)", file=sys.stderr
        )
        return 69
    # shot beside the target and moved over it only when the page is one to keep: a
    # broken page leaves the committed screenshot as it was
    shot = out.with_name(f".{out.name}.tmp.png")
    try:
        with open_page(
            report, screenshot=shot, wait_for="body[data-ready], body[data-error]"
        ) as page:
            error = page.attribute("body", "data-error")
            problems = [*([f"a chart failed: {error}"] if error else []), *page.problems()]
            problems += [f"request: {url}" for url in page.requests]
            size = page.evaluate("() => [document.body.scrollWidth, document.body.scrollHeight]")
        if problems:
            print(
                f"{report}: not a screenshot to keep:\n  " + "\n  ".join(problems), file=sys.stderr
            )
            return 1
        shot.replace(out)
    except PageTimeout as exc:
        print(f"{report}: not a screenshot to keep: {exc}", file=sys.stderr)
        return 1
    finally:
        shot.unlink(missing_ok=True)
    print(f"{out}: {size[0]}×{size[1]} px page ({out.stat().st_size / 1e3:,.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
