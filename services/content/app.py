"""Composition root of the content service."""

from services.content import handlers
from services.content.store import metadata
from shared.runtime import Runtime

runtime = Runtime("content", metadata)
handlers.register(runtime)
app = runtime.app("Lectern content")
