"""Every `evpm` command exists, both as the installed script and as `python -m evpm_cli.main`
(the integration tests and the Makefile use the module form), and each has --help."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from evpm_cli.main import cli

COMMANDS = {
    "drift",
    "up",
    "down",
    "status",
    "send",
    "predict",
    "keys",
    "lifecycle",
    "rollback",
    "alerts",
    "logs",
}


def test_the_group_has_every_command() -> None:
    assert set(cli.commands) == COMMANDS
    assert set(cli.commands["lifecycle"].commands) == {"run", "status", "history"}
    assert set(cli.commands["drift"].commands) == {"run", "status", "triggers", "report"}


def test_module_form_sees_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "evpm_cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in COMMANDS:
        assert f"  {name} " in out, name


@pytest.mark.parametrize(
    "args",
    [[c, "--help"] for c in sorted(COMMANDS)]
    + [["lifecycle", s, "--help"] for s in ("run", "status", "history")],
)
def test_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output
