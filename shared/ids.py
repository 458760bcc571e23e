"""Stable ids derived from other ids: a redelivered message computes the same ones.

Effects of a message (stored rows, events it announces, commands it sends) take ids
derived from its ``message_id``, so handling it twice cannot create two of anything.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("4d3c1b7e-2a8f-4f6e-9c1d-0e5b7a9f3c21")


def derived_id(*parts: str) -> str:
    """A UUID (as text) that depends only on ``parts``."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))
