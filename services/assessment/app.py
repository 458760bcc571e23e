"""Composition root of the assessment service."""

from services.assessment import handlers
from services.assessment.store import metadata
from shared.runtime import Runtime

runtime = Runtime("assessment", metadata)
handlers.register(runtime)
app = runtime.app("Lectern assessment")
