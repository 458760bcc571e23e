"""The installed ``lectern`` command, run as a subprocess against the real services."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import TEST_VHOST
from tests.support.processes import Cluster, free_port

pytestmark = pytest.mark.e2e

LECTERN = Path(sys.executable).parent / "lectern"


def lectern(
    *args: str,
    config: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run ``lectern`` with its own config directory (no stored tokens shared)."""
    if not LECTERN.exists():
        pytest.fail(f"{LECTERN} is missing: install the project (make install)")
    base = {k: v for k, v in os.environ.items() if not k.startswith("LECTERN_")}
    return subprocess.run(
        [str(LECTERN), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, "XDG_CONFIG_HOME": str(config), **(env or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config"


def test_generate_auto_then_courses_and_export(
    cluster: Cluster, config: Path, tmp_path: Path
) -> None:
    gw = cluster.gateway
    result = ok(
        lectern(
            "generate",
            "Python for data analysis",
            "--level",
            "beginner",
            "--hours",
            "4",
            "--auto",
            "--url",
            gw,
            config=config,
        )
    )
    out = result.stdout
    assert "Planning \u201cPython for data analysis\u201d" in out
    # the plan streamed in, then progress as plain lines (not a terminal)
    assert "## " in out
    progress = re.findall(r"^progress (\d+)/(\d+) steps", out, flags=re.M)
    assert progress, out
    done = [int(d) for d, _ in progress]
    assert done == sorted(done) and done[-1] == int(progress[-1][1]), "ends at total/total"
    assert re.search(r"^lesson 1 written: ", out, flags=re.M)
    assert "\r" not in out
    course_id = re.search(r"course id: (\S+)", out).group(1)  # type: ignore[union-attr]
    assert f"open:      {gw}/courses/{course_id}" in out
    assert f"lectern export {course_id} --format html -o course.html" in out
    # the guest token was kept: the same user lists the course
    creds = json.loads((config / "lectern" / "credentials.json").read_text())
    assert creds["servers"][gw]["is_guest"] is True

    listed = json.loads(ok(lectern("courses", "--json", "--url", gw, config=config)).stdout)
    assert [(c["course_id"], c["status"]) for c in listed] == [(course_id, "ready")]
    assert course_id in ok(lectern("courses", "--url", gw, config=config)).stdout

    md = tmp_path / "course.md"
    exported = ok(
        lectern(
            "export",
            course_id,
            "--format",
            "markdown",
            "-o",
            str(md),
            "--json",
            "--url",
            gw,
            config=config,
        )
    )
    info = json.loads(exported.stdout)
    assert info["path"] == str(md) and info["bytes"] == md.stat().st_size > 0
    assert listed[0]["title"] in md.read_text()
    scorm = tmp_path / "course.zip"
    ok(
        lectern(
            "export", course_id, "--format", "scorm", "-o", str(scorm), "--url", gw, config=config
        )
    )
    assert "imsmanifest.xml" in zipfile.ZipFile(scorm).namelist()
    gift = ok(
        lectern("export", course_id, "--format", "gift", "-o", "-", "--url", gw, config=config)
    )
    assert "::" in gift.stdout and "{" in gift.stdout


def test_generate_json_interactive_refine_then_accept(cluster: Cluster, config: Path) -> None:
    result = ok(
        lectern(
            "generate",
            "Negotiation skills",
            "--hours",
            "4",
            "--json",
            "--url",
            cluster.gateway,
            config=config,
            stdin="r\nAdd a role-play module\na\n",
        )
    )
    summary = json.loads(result.stdout)  # stdout is the JSON document alone
    assert summary["status"] == "ready"
    assert len(summary["jobs"]) == 3, "plan, refinement, finalisation"
    assert len(summary["modules"]) >= 3
    assert summary["url"] == f"{cluster.gateway}/courses/{summary['course_id']}"
    # the person's text went to stderr: two plans, the questions, progress
    assert result.stderr.count("Accept this plan?") == 2
    assert "What should change?" in result.stderr
    assert "progress " in result.stderr


def test_generate_over_the_broker_for_the_logged_in_user(
    cluster: Cluster, infra: dict[str, str], config: Path
) -> None:
    gw = cluster.gateway
    ok(lectern("courses", "--url", gw, config=config))  # a guest, remembered
    result = ok(
        lectern(
            "generate",
            "Team leadership",
            "--hours",
            "4",
            "--auto",
            "--amqp",
            infra["AMQP_URL"],
            "--json",
            "--url",
            gw,
            config=config,
        )
    )
    summary = json.loads(result.stdout)
    assert summary["status"] == "ready" and summary["where"].startswith("amqp://guest@")
    assert "progress " in result.stderr
    # the course belongs to the stored user, so the gateway lists it
    listed = json.loads(ok(lectern("courses", "--json", "--url", gw, config=config)).stdout)
    assert summary["course_id"] in [c["course_id"] for c in listed]


def test_unreachable_gateway_exits_3_and_says_how_to_start_it(config: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = lectern("courses", "--url", url, config=config)
    assert result.returncode == 3
    assert url in result.stderr and "make run" in result.stderr
    as_json = lectern("generate", "SQL", "--auto", "--json", "--url", url, config=config)
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["error"]["type"] == "ServiceDown"


def test_bad_token_exits_4_and_suggests_login(cluster: Cluster, config: Path) -> None:
    result = lectern(
        "courses", "--url", cluster.gateway, config=config, env={"LECTERN_TOKEN": "not.a.token"}
    )
    assert result.returncode == 4
    assert "lectern login" in result.stderr


def test_not_found_and_invalid_input(cluster: Cluster, config: Path) -> None:
    gw = cluster.gateway
    missing = lectern("export", "no-such-course", "--url", gw, "--json", config=config)
    assert missing.returncode == 5
    assert "no-such-course" in json.loads(missing.stdout)["error"]["message"]
    invalid = lectern("generate", "x", "--auto", "--url", gw, config=config)
    assert invalid.returncode == 2
    assert "topic" in invalid.stderr


def test_accounts_and_prompt_administration(cluster: Cluster, config: Path) -> None:
    gw = cluster.gateway
    # a guest may not administer prompts
    ok(lectern("courses", "--url", gw, config=config))
    assert lectern("prompts", "list", "--url", gw, config=config).returncode == 4
    # the admin account (listed in the cluster's LECTERN_ADMIN_EMAILS); another test may
    # have registered it already
    account = ["--email", "admin@lectern.test", "--password-stdin", "--url", gw, "--json"]
    registered = lectern("register", *account, config=config, stdin="correct horse\n")
    if registered.returncode != 0:
        assert "exists" in registered.stderr
        registered = ok(lectern("login", *account, config=config, stdin="correct horse\n"))
    assert json.loads(registered.stdout)["role"] == "admin"
    assert (
        json.loads(ok(lectern("whoami", "--url", gw, "--json", config=config)).stdout)["email"]
        == "admin@lectern.test"
    )

    templates = json.loads(
        ok(lectern("prompts", "list", "--json", "--url", gw, config=config)).stdout
    )
    names = {t["name"] for t in templates}
    assert "planner.welcome_plan" in names
    text = ok(lectern("prompts", "list", "--url", gw, config=config)).stdout
    assert "planner.welcome_plan" in text and "production=" in text
    shown = json.loads(
        ok(
            lectern("prompts", "show", "planner.welcome_plan", "--json", "--url", gw, config=config)
        ).stdout
    )
    assert shown["name"] == "planner.welcome_plan" and shown["versions"]
    diff = json.loads(
        ok(
            lectern(
                "prompts",
                "diff",
                "planner.welcome_plan",
                "1",
                "1",
                "--json",
                "--url",
                gw,
                config=config,
            )
        ).stdout
    )
    assert diff["identical"] is True
    moved = ok(
        lectern(
            "prompts", "label", "planner.welcome_plan", "1", "cli-test", "--url", gw, config=config
        )
    )
    assert "cli-test now points at version 1" in moved.stdout
    missing = lectern("prompts", "show", "no.such.prompt", "--url", gw, config=config)
    assert missing.returncode == 5
    # logout forgets the token: prompts need a login again
    ok(lectern("logout", "--url", gw, config=config))
    assert lectern("prompts", "list", "--url", gw, config=config).returncode == 4


def _declared_queues() -> set[str]:
    ctl = shutil.which("rabbitmqctl")
    assert ctl, "rabbitmqctl is needed to list the queues"
    rows = subprocess.run(
        [ctl, "-q", "list_queues", "-p", TEST_VHOST, "--no-table-headers", "name", "exclusive"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = set()
    services = ("gateway.", "planner.", "content.", "assessment.", "prompts.")
    for row in rows:
        name, exclusive = row.split("\t")
        # exclusive queues are per process (live fan-out, prompt caches); other tests of
        # the session declare queues of their own services (flaky.*, strict.*)
        if exclusive.strip() != "true" and name.startswith(services):
            names.add(name)
    return names


def test_status_lists_every_queue_with_consumers(
    cluster: Cluster, infra: dict[str, str], config: Path
) -> None:
    result = ok(
        lectern(
            "status", "--json", "--url", cluster.gateway, "--amqp", infra["AMQP_URL"], config=config
        )
    )
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0
    assert report["gateway"]["ready"] is True and report["broker"]["reachable"] is True
    assert set(report["services"]) == {"gateway", "planner", "content", "assessment", "prompts"}
    assert all(s["up"] and s["consumers"] >= 1 for s in report["services"].values())
    queues = {q["name"]: q for q in report["queues"]}
    assert all(q["exists"] for q in queues.values())
    assert queues["planner.commands"]["consumers"] >= 1
    assert queues["gateway.event-log"]["consumers"] >= 1
    assert queues["planner.commands.dlq"]["kind"] == "dlq"
    # the catalogue is what the running services declared: no queue missing or unknown
    assert set(queues) == _declared_queues()

    text = ok(
        lectern("status", "--url", cluster.gateway, "--amqp", infra["AMQP_URL"], config=config)
    ).stdout
    assert re.search(r"^planner\s+up\s+\d+ on planner.commands", text, flags=re.M)
    assert re.search(r"^planner.commands\s+commands\s+\d+\s+[1-9]", text, flags=re.M)
    assert "planner.commands.dlq" in text


def test_status_with_the_broker_unreachable_exits_3(cluster: Cluster, config: Path) -> None:
    amqp = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = lectern("status", "--url", cluster.gateway, "--amqp", amqp, "--json", config=config)
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["gateway"]["ready"] is True and report["broker"]["reachable"] is False
    assert "guest:guest" not in result.stdout, "the password is not printed"
