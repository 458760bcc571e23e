"""What people and scripts see: bars, tables, one JSON document with --json."""

from __future__ import annotations

import io
import json

from lectern_cli.output import Output, bar, progress_text, table


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


PROGRESS = {"done": 3, "total": 6, "lessons_done": 2, "assessments_done": 1, "step": "lesson"}


def test_bar_and_progress_text() -> None:
    assert bar(0, 6, width=6) == "[------]"
    assert bar(3, 6, width=6) == "[###---]"
    assert bar(6, 6, width=6) == "[######]"
    assert bar(1, 0, width=4) == "[----]"
    assert progress_text(PROGRESS) == "3/6 steps  lessons 2/3  assessments 1/3"
    assert progress_text(PROGRESS, modules=3) == "3/6 steps  lessons 2/3  assessments 1/3"


def test_table_aligns_columns() -> None:
    text = table([["c-1", "ready", None], ["c-22", "planning", "SQL"]], ["ID", "STATUS", "TITLE"])
    assert text.splitlines() == [
        "ID    STATUS    TITLE",
        "c-1   ready",
        "c-22  planning  SQL",
    ]


def test_progress_is_plain_lines_off_a_terminal() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(False, stdout, stderr)
    out.progress(PROGRESS)
    out.progress({**PROGRESS, "done": 4, "assessments_done": 2})
    assert stdout.getvalue().splitlines() == [
        "progress 3/6 steps  lessons 2/3  assessments 1/3",
        "progress 4/6 steps  lessons 2/3  assessments 2/3",
    ]
    assert "\r" not in stdout.getvalue()


def test_progress_is_one_bar_redrawn_on_a_terminal() -> None:
    stdout = Tty()
    out = Output(False, stdout, io.StringIO())
    out.progress(PROGRESS)
    out.say("lesson 2 written")  # printed above the bar, which is cleared first
    out.progress({**PROGRESS, "done": 6, "lessons_done": 3, "assessments_done": 3})
    out.finish_progress()
    text = stdout.getvalue()
    assert text.count("\r\033[K") == 3
    assert "[############------------] 3/6" in text
    assert text.endswith("[########################] 6/6 steps  lessons 3/3  assessments 3/3\n")


def test_json_mode_keeps_stdout_for_the_document() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(True, stdout, stderr)
    out.say("Planning ...")
    out.stream_text("## Module 1")
    out.progress(PROGRESS)
    out.result({"course_id": "c-1", "status": "ready"}, "Course ready")
    assert json.loads(stdout.getvalue()) == {"course_id": "c-1", "status": "ready"}
    assert "Planning ..." in stderr.getvalue() and "progress 3/6" in stderr.getvalue()
    assert "Course ready" not in stderr.getvalue() + stdout.getvalue()


def test_errors_go_to_stderr_and_as_json_on_stdout() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    Output(True, stdout, stderr).error("no such course", code=5, kind="NotFound", status=404)
    assert stderr.getvalue() == "lectern: error: no such course\n"
    assert json.loads(stdout.getvalue()) == {
        "error": {"type": "NotFound", "message": "no such course", "exit_code": 5, "status": 404}
    }
    stdout = io.StringIO()
    Output(False, stdout, io.StringIO()).error("x", code=1, kind="LecternError")
    assert stdout.getvalue() == ""
