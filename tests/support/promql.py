"""What a PromQL expression reads: metric names and the labels it matches or groups by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import promql_parser


@dataclass
class Reads:
    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)  # matched on or grouped by


def reads(expr: str) -> Reads:
    """Parse ``expr`` (raises ValueError when it is not valid PromQL) and walk it."""
    out = Reads()
    _walk(promql_parser.parse(expr), out)
    return out


def _walk(node: Any, out: Reads) -> None:
    kind = type(node).__name__
    if kind == "VectorSelector":
        if node.name:
            out.metrics.add(node.name)
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__":
                out.metrics.add(matcher.value)
            else:
                out.labels.add(matcher.name)
    elif kind == "MatrixSelector":
        _walk(node.vector_selector, out)
    elif kind == "AggregateExpr":
        if node.modifier is not None:
            out.labels.update(node.modifier.labels)
        _walk(node.expr, out)
        if node.param is not None:
            _walk(node.param, out)
    elif kind == "BinaryExpr":
        _walk(node.lhs, out)
        _walk(node.rhs, out)
        matching = getattr(node.modifier, "matching", None)
        out.labels.update(getattr(matching, "labels", None) or [])
    elif kind == "Call":
        for arg in node.args:
            _walk(arg, out)
    elif kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        _walk(node.expr, out)
