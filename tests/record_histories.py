"""Record the replay histories: ``python -m tests.record_histories [SCENARIO ...]``.

Histories go to ``tests/histories/<CURRENT>/``. After a deliberate, patched change to the
workflow, raise ``CURRENT`` (a new folder) and record every scenario: the replay test replays
every folder, so histories written by the earlier versions go on proving that refunds they
started still replay on the new code.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path

from storage.certificates import CertificateStore
from storage.database import open_database
from tests.harness import REVIEWERS, Harness, channel_settings, local_channels, start_environment
from tests.scenarios import SCENARIOS

HISTORIES = Path(__file__).with_name("histories")
CURRENT = "v6"
"""The folder the running code records into (v1: before ``local-load-final-state-at-close``,
v2: before ``operator-proof``, v3: before ``signed-actions``, v4: before
``review-queue-memo``, v5: before ``system-of-record-authorizes``)."""


async def record(names: list[str]) -> None:
    folder = HISTORIES / CURRENT
    folder.mkdir(parents=True, exist_ok=True)
    env = await start_environment()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for name in names:
                url = f"sqlite:///{scratch}/{name}.db"
                engine = open_database(url)
                local = channel_settings(url, Path(scratch) / name)
                async with local_channels(local, env.client) as world:
                    settings = world.settings.model_copy(
                        update={
                            "reviewers": REVIEWERS,
                            "calendar_file": Path(scratch) / f"{name}.toml",
                        }
                    )
                    task_queue = f"record-{uuid.uuid4().hex[:8]}"
                    store = CertificateStore(engine)
                    harness = Harness.create(env, task_queue, settings, store, world)
                    async with harness.worker():
                        handle = await SCENARIOS[name](harness)
                        status = await harness.result(handle)
                history = await handle.fetch_history()
                path = folder / f"{name}.json"
                path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"{name}: {status.state.value}, {len(history.events)} events -> {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(SCENARIOS)))
