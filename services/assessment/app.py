"""Composition root of the assessment service."""

from services.assessment.store import metadata
from shared.runtime import Runtime

runtime = Runtime("assessment", metadata)
runtime.commands()
app = runtime.app("Lectern assessment")
