"""The environment and paths ``evpm-emulator start`` hands to the LocalStack runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from evpm_localstack import ctl


def test_host_safe_settings(tmp_path: Path) -> None:
    env = ctl.emulator_env(tmp_path, 4599, base={"PATH": "/bin"})
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert env["OVERRIDE_IN_DOCKER"] == "0" and env["GATEWAY_SERVER"] == "twisted"
    assert env["DNS_ADDRESS"] == "0" and env["LOCALSTACK_CLI"] == "0"
    assert env["PROVIDER_OVERRIDE_DYNAMODB"] == "moto"
    assert env["PROVIDER_OVERRIDE_KINESIS"] == "moto"
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "hostprocess"
    assert env["FILESYSTEM_ROOT"] == str(tmp_path / "localstack")
    assert env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["EVPM_STATE_DIR"] == str(tmp_path)
    assert "kinesis" in env["SERVICES"].split(",") and env["PATH"] == "/bin"


def test_the_gateway_server_can_be_switched_back_to_hypercorn(tmp_path: Path) -> None:
    env = ctl.emulator_env(tmp_path, 4599, base={"EVPM_GATEWAY_SERVER": "hypercorn"})
    assert env["GATEWAY_SERVER"] == "hypercorn"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"


def test_user_lambda_and_localstack_variables_win(tmp_path: Path) -> None:
    base = {"LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.01",
            "LOCALSTACK_FOO": "bar", "GATEWAY_LISTEN": "0.0.0.0:1"}
    env = ctl.emulator_env(tmp_path, 4566, base=base)
    assert env["LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"] == "0.01"
    assert env["LOCALSTACK_FOO"] == "bar"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4566"  # never bind all interfaces


def test_state_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVPM_STATE_DIR", raising=False)
    assert ctl.resolve_state_dir(None) == ctl.REPO / ".state"
    assert ctl.REPO.joinpath("localstack", "pyproject.toml").is_file()
    monkeypatch.setenv("EVPM_STATE_DIR", str(tmp_path / "env"))
    assert ctl.resolve_state_dir(None) == tmp_path / "env"
    assert ctl.resolve_state_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("start", "stop", "status"):
        with pytest.raises(SystemExit) as exit_info:
            ctl.main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--state-dir" in capsys.readouterr().out
