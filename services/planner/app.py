"""Composition root of the planner."""

from services.planner import handlers
from services.planner.store import metadata
from shared.runtime import Runtime

runtime = Runtime("planner", metadata)
handlers.register(runtime)
app = runtime.app("Lectern planner")
