"""Composition root of the prompt registry."""

from services.prompts import handlers
from services.prompts.store import metadata
from shared.runtime import Runtime

runtime = Runtime("prompts", metadata)
handlers.register(runtime)
app = runtime.app("Lectern prompts")
