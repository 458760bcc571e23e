"""What ``lectern`` prints: text for people, one JSON document for scripts (``--json``).

With ``--json`` stdout carries exactly one JSON document (the result, or
``{"error": ...}``) and everything meant for a person (streamed plan text, progress)
goes to stderr. Progress is a bar redrawn in place on a terminal, plain lines otherwise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def bar(done: int, total: int, width: int = 24) -> str:
    """``[#########---------------]``: ``done`` of ``total`` as a bar of ``width`` cells."""
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_text(payload: dict[str, Any], modules: int | None = None) -> str:
    """``6/12 steps  lessons 3/6  assessments 3/6`` from a ``course.progress`` payload."""
    done, total = int(payload.get("done", 0)), int(payload.get("total", 0))
    per_kind = modules if modules else total // 2
    lessons, assessed = payload.get("lessons_done", 0), payload.get("assessments_done", 0)
    return f"{done}/{total} steps  lessons {lessons}/{per_kind}  assessments {assessed}/{per_kind}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Left-aligned columns, two spaces apart, headers first."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


class Output:
    """Where a command's text, progress and result go."""

    def __init__(
        self, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        # text for a person: stdout, unless stdout is reserved for the JSON document
        self.stream = self.stderr if json_mode else self.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar_shown = False
        self._line_open = False

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False

    def say(self, text: str = "") -> None:
        """A line for a person."""
        self._clear_bar()
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def stream_text(self, text: str) -> None:
        """Text as it arrives (a plan being written), no newline added."""
        self._clear_bar()
        self.stream.write(text)
        self.stream.flush()
        self._line_open = bool(text) and not text.endswith("\n")

    def line_ended(self) -> None:
        """The person ended the open line (typed an answer and Enter)."""
        self._line_open = False

    def progress(self, payload: dict[str, Any], modules: int | None = None) -> None:
        """A ``course.progress``: the bar redrawn on a terminal, a line otherwise."""
        text = progress_text(payload, modules)
        if self.tty:
            if self._line_open:
                self.stream.write("\n")
                self._line_open = False
            done, total = int(payload.get("done", 0)), int(payload.get("total", 0))
            self.stream.write(f"\r\033[K{bar(done, total)} {text}")
            self.stream.flush()
            self._bar_shown = True
        else:
            self.say(f"progress {text}")

    def finish_progress(self) -> None:
        """Leave the bar on screen as it is and move to the next line."""
        if self._bar_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_shown = False

    def result(self, data: Any, text: str | None = None) -> None:
        """The command's result: ``data`` as JSON with ``--json``, else ``text``."""
        if self.json_mode:
            self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
            self.stdout.flush()
        elif text is not None:
            self.say(text)

    def error(self, message: str, *, code: int, kind: str, status: int | None = None) -> None:
        """An error: on stderr for a person; also as the JSON document with ``--json``."""
        self.finish_progress()
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stderr.write(f"lectern: error: {message}\n")
        self.stderr.flush()
        if self.json_mode:
            error = {"type": kind, "message": message, "exit_code": code, "status": status}
            self.stdout.write(json.dumps({"error": error}, indent=2) + "\n")
            self.stdout.flush()
