"""A worker's startup heap is frozen: later full collections walk only what requests make.

Run in a child process, as a service runs (``python -m services.<name>`` turns the
collector off while importing), so pytest's own heap is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import gc, json
gc.disable()
import services.planner.app  # what `python -m services.planner` imports before serving
from shared.runtime import freeze_startup_heap
frozen = freeze_startup_heap()
print(json.dumps({"enabled": gc.isenabled(), "frozen": frozen, "walked": len(gc.get_objects())}))
"""


def test_startup_heap_is_frozen_and_collection_resumes() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    heap = json.loads(done.stdout.strip().splitlines()[-1])
    assert heap["enabled"], "the collector must run again once started"
    assert heap["frozen"] > 50_000, heap  # modules, classes, functions of the imports
    assert heap["walked"] < heap["frozen"] / 20, heap  # a full collection skips them


def test_every_service_turns_the_collector_off_before_importing() -> None:
    for main in sorted(ROOT.glob("services/*/__main__.py")):
        code = [line for line in main.read_text().splitlines() if line and line[0] != "#"]
        assert code[:2] == ["import gc", "gc.disable()  # nothing to collect while importing; "
                            "Runtime re-enables it once started"], main  # fmt: skip
