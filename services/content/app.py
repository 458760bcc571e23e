"""Composition root of the content service."""

from services.content.store import metadata
from shared.runtime import Runtime

runtime = Runtime("content", metadata)
runtime.commands()
app = runtime.app("Lectern content")
