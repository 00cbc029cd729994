"""Runs backup_export in a child process that a test kills midway (SIGKILL).

After the first shard of ``player_game_summary`` is written it touches
``<ready-file>`` and hangs, so the parent can kill it with half a table exported.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cloudevents.conversion import to_structured  # noqa: E402
from cloudevents.http import CloudEvent  # noqa: E402
from functions_framework import create_app  # noqa: E402

import shared.adapters.local.warehouse as warehouse_module  # noqa: E402
from tests.helpers import pubsub_event  # noqa: E402

ready = Path(sys.argv[1])
original = warehouse_module.LocalWarehouse._shard_path


def hang_after_first_shard(self: object, pattern: Path, shard: int) -> Path:
    if shard >= 1 and "player_game_summary" in str(pattern):
        ready.touch()
        time.sleep(600)
    return original(self, pattern, shard)  # type: ignore[arg-type]


warehouse_module.LocalWarehouse._shard_path = hang_after_first_shard  # type: ignore[method-assign]
client = create_app(
    "backup_export", str(ROOT / "functions/backup_export/main.py"), "cloudevent"
).test_client()
event = pubsub_event()
headers, body = to_structured(
    CloudEvent({k: v for k, v in event.items() if k != "data"}, event["data"])
)
client.post("/", headers=headers, data=body)
