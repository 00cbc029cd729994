from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent
from functions_framework import create_app

from shared import runtime
from shared.services.seed import seed_demo
from tests.functional.report_stack import demo, report, report_page  # noqa: F401 (fixtures)
from tests.helpers import ROOT, Stack, make_stack


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s = make_stack(tmp_path)
    seed_demo(s.adapters.warehouse)  # type: ignore[arg-type]
    monkeypatch.setenv("OPSUITE_CONFIG", str(s.config))
    monkeypatch.setenv("OPSUITE_BACKEND", "local")
    runtime.use(s.settings, s.adapters)
    yield s
    s.adapters.close()


def cloud_event_poster(function: str) -> Callable[[dict[str, Any]], Any]:
    """POST structured CloudEvents to ``functions/<function>/main.py`` as deployed."""
    source = ROOT / "functions" / function / "main.py"
    client = create_app(function, str(source), "cloudevent").test_client()

    def post(event: dict[str, Any]) -> Any:
        attributes = {k: v for k, v in event.items() if k != "data"}
        headers, body = to_structured(CloudEvent(attributes, event["data"]))
        return client.post("/", headers=headers, data=body)

    return post


@pytest.fixture
def post_event() -> Callable[[dict[str, Any]], Any]:
    return cloud_event_poster("backup_export")
