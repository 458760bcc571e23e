"""The clients and the CLI load without the LLM stack (litellm takes seconds to import)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ROOT


def test_cli_and_clients_do_not_import_litellm() -> None:
    code = (
        "import sys, lectern_cli.main, lectern_cli.generate, lectern_cli.commands, "
        "shared.client.http, shared.client.broker; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'litellm', 'faststream'}))"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
    assert "litellm" not in result.stderr  # -X importtime lists every module imported
