"""``lectern``'s arguments: options before or after the command, the profile, usage errors."""

from __future__ import annotations

import pytest

from lectern_cli import config
from lectern_cli.generate import profile_from
from lectern_cli.main import build_parser, main


def test_global_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--url", "http://gw:1", "courses"])
    after = parser.parse_args(["courses", "--json", "--url", "http://gw:1"])
    for args in (before, after):
        assert args.json is True and args.url == "http://gw:1" and args.command == "courses"


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTERN_URL", "http://lectern.example:8080")
    monkeypatch.setenv("LECTERN_AMQP_URL", "amqp://u:p@mq:5672/v")
    args = build_parser().parse_args(["status"])
    assert args.url == "http://lectern.example:8080"
    assert args.amqp == "amqp://u:p@mq:5672/v"
    monkeypatch.delenv("LECTERN_URL")
    monkeypatch.delenv("LECTERN_AMQP_URL")
    monkeypatch.setenv("AMQP_URL", "amqp://services@mq/")
    args = build_parser().parse_args(["status"])
    assert args.url == config.DEFAULT_URL and args.amqp == "amqp://services@mq/"


def test_generate_turns_options_into_the_learner_profile() -> None:
    args = build_parser().parse_args(
        [
            "generate",
            "Python for data analysis",
            "--level",
            "beginner",
            "--hours",
            "20",
            "--goal",
            "corporate",
            "--auto",
        ]
    )
    assert args.auto is True and args.amqp is None
    assert profile_from(args) == {
        "topic": "Python for data analysis",
        "level": "beginner",
        "duration_hours": 20.0,
        "goal_context": "corporate",
    }


def test_prompts_actions_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(["prompts", "diff", "planner.welcome_plan", "1", "2", "--json"])
    assert (args.prompts_command, args.name, args.v1, args.v2, args.json) == (
        "diff",
        "planner.welcome_plan",
        1,
        2,
        True,
    )
    args = parser.parse_args(["prompts", "label", "planner.welcome_plan", "3", "staging"])
    assert (args.name, args.version, args.label) == ("planner.welcome_plan", 3, "staging")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["generate"],
        ["generate", "SQL", "--level", "expert"],
        ["export", "c-1", "--format", "pdf"],
        ["prompts", "diff", "x", "one", "2"],
        ["prompts"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: lectern" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "4", "5", "6", "7"):
        assert f"\n  {code} " in text
