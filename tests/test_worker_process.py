"""Process-wide settings a worker applies before it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FREEZE_CHECK = """
import gc, weakref
from tuning import freeze_startup_heap

class Node:
    pass

freeze_startup_heap()
assert gc.get_freeze_count() > 0, "nothing was frozen"
cycle = Node(); cycle.self = cycle
alive = weakref.ref(cycle)
del cycle
gc.collect()
assert alive() is None, "an object made after the freeze was not collected"
print("ok")
"""


def test_the_startup_heap_is_frozen_and_later_garbage_still_collected():
    # A process of its own: freezing the test runner's heap would outlive this test.
    run = subprocess.run(
        [sys.executable, "-c", FREEZE_CHECK],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
