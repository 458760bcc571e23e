"""Message contracts: one module per producing service, all registered in ``REGISTRY``.

Import this package to populate the registry with every message type.
"""

from shared.contracts import (
    assessment,
    budgets,
    content,
    course,
    jobs,
    planner,
    prompts,
    sources,
)
from shared.contracts.base import (
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    REGISTRY,
    Message,
    Payload,
    new_id,
)

try:  # written alongside: the LLM usage event
    from shared.contracts import llm  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__all__ = [
    "COMMANDS_EXCHANGE",
    "EVENTS_EXCHANGE",
    "REGISTRY",
    "Message",
    "Payload",
    "assessment",
    "budgets",
    "content",
    "course",
    "jobs",
    "new_id",
    "planner",
    "prompts",
    "sources",
]
