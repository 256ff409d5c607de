"""Issue 20: a mistake ends `evpm` with one line on stderr and an exit code, never a traceback.

Exit 2 is a wrong command line (click finds it while parsing, before the system is asked);
exit 1 an operation that failed (the system not up, AWS or the API refusing, an input file
missing or not JSON, a key revoked already). Each bad invocation below runs through click's
CliRunner against moto (API Gateway, Step Functions) with the stacks' outputs faked, so no
emulator is needed; two also run as `python -m evpm_cli.main`, the way a user runs them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from evpm.telemetry import TelemetryRecord
from evpm_aws.model_admin import ModelAdmin
from evpm_cli import aws, endpoints, keys, lifecycle, main
from evpm_cli.errors import DEBUG_VARIABLE
from evpm_cli.fleet_stream import WARMUP
from evpm_cli.params import ModelName
from tests.unit.registry_fake import FakeRegistry

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@dataclass
class FakeSystem:
    """What the commands find: moto's AWS, these stack outputs, this registry and pins."""

    outputs: dict[str, str]
    registry: FakeRegistry = field(default_factory=FakeRegistry)
    pins: dict[str, int] = field(default_factory=dict)

    def read(self) -> dict[str, int]:
        return dict(self.pins)

    def write(self, pins: dict[str, int]) -> None:
        self.pins = dict(pins)


def _moto_client(cfg: Any, service: str, **kwargs: Any) -> Any:
    return boto3.client(service, **kwargs)


@pytest.fixture
def system(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeSystem]:
    """A deployed system in moto: the usage plan, one development key per role (as the
    serving stack makes them) and the lifecycle state machine."""
    monkeypatch.setenv("EVPM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    with mock_aws():
        apigw = boto3.client("apigateway")
        plan = apigw.create_usage_plan(name=keys.USAGE_PLAN)["id"]
        for role in keys.ROLES:
            key = apigw.create_api_key(name=f"evpm-dev-{role}", enabled=True, tags={})
            apigw.create_usage_plan_key(usagePlanId=plan, keyId=key["id"], keyType="API_KEY")
        machine = boto3.client("stepfunctions").create_state_machine(
            name="evpm-model-lifecycle",
            definition=DEFINITION,
            roleArn="arn:aws:iam::123456789012:role/lifecycle",
        )["stateMachineArn"]
        fake = FakeSystem(outputs={"StateMachineArn": machine, "ApiId": "abc1", "ApiStage": "v1"})
        for module in (main, keys, lifecycle, endpoints):
            monkeypatch.setattr(module, "client", _moto_client)
        for module in (endpoints, lifecycle):
            monkeypatch.setattr(module, "stack_outputs", lambda cfg: fake.outputs)
        monkeypatch.setattr(lifecycle, "admin", lambda cfg: ModelAdmin(fake.registry, fake))
        yield fake


def run(*args: str) -> Result:
    return CliRunner().invoke(main.cli, list(args))


# --- what the bad invocations need besides their arguments -------------------------------


def _files(tmp_path: Path) -> None:
    """Input files, good and bad, in the test's folder (the table's ``{tmp}``)."""
    (tmp_path / "malformed.json").write_text('{"vehicle_id": "EV-1", "SoC": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\xfa")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "good.jsonl").write_text('{"vehicle_id": "EV-1"}\n')
    (tmp_path / "folder").mkdir()


def _revoked_once(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    keys.create(main.settings(), role="viewer", name="dashboard")
    keys.revoke(main.settings(), "dashboard")


def _dashboard_exists(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    keys.create(main.settings(), role="viewer", name="dashboard")


def _no_lifecycle_stack(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    system.outputs.pop("StateMachineArn")


def _no_serving_stack(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    system.outputs.pop("ApiId")


def _no_viewer_key(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    apigw = boto3.client("apigateway")
    [key] = [k for k in apigw.get_api_keys()["items"] if k["name"] == "evpm-dev-viewer"]
    apigw.delete_api_key(apiKey=key["id"])


def _api_refuses(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = httpx.Response(403, json={"detail": "role viewer may not predict"})
    monkeypatch.setattr(main.httpx, "post", lambda url, **kw: answer)


def _api_unreachable(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, **kwargs: Any) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(main.httpx, "get", refuse)


def _api_answers_text(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = httpx.Response(502, text="Bad Gateway\n<html>upstream</html>")
    monkeypatch.setattr(main.httpx, "get", lambda url, **kw: answer)


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _system_down(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real clients, pointed at a port where no emulator runs."""
    monkeypatch.setenv("EVPM_EMULATOR_PORT", str(_closed_port()))
    for module in (main, keys, lifecycle, endpoints):
        monkeypatch.setattr(module, "client", aws.client)


def _one_registered_version(system: FakeSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    system.registry.create_version("ev-rul", "s3://v1", run_id=None, tags={})
    system.registry.set_alias("ev-rul", "champion", 1)


Setup = Callable[[FakeSystem, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Bad:
    """One bad invocation: its arguments, the exit code, what its error line must name."""

    args: tuple[str, ...]
    code: int
    names: tuple[str, ...]
    setup: Setup | None = None


USAGE, FAILED = 2, 1

BAD: dict[str, Bad] = {
    # a wrong command line: exit 2, the system is never asked
    "unknown role (predict)": Bad(("predict", "--role", "nosuch"), USAGE, ("--role", "nosuch")),
    "unknown role (alerts)": Bad(("alerts", "--role", "root"), USAGE, ("--role", "root")),
    "unknown function (logs)": Bad(("logs", "nosuch"), USAGE, ("FUNCTION", "nosuch", "scorer")),
    "bad duration (logs)": Bad(("logs", "scorer", "--since", "5x"), USAGE, ("--since", "5x")),
    "unknown role (keys create)": Bad(
        ("keys", "create", "--role", "admin", "--name", "x"), USAGE, ("--role", "admin")
    ),
    "missing --name": Bad(("keys", "create", "--role", "viewer"), USAGE, ("--name",)),
    "empty --name": Bad(("keys", "create", "--role", "viewer", "--name", " "), USAGE, ("--name",)),
    "missing key to revoke": Bad(("keys", "revoke"), USAGE, ("NAME_OR_ID",)),
    "zero vehicles": Bad(("send", "--vehicles", "0"), USAGE, ("nothing to send", "--vehicles")),
    "negative vehicles": Bad(("send", "--vehicles", "-3"), USAGE, ("--vehicles", "-3")),
    "zero vehicles (load)": Bad(
        ("send", "--source", "load", "--vehicles", "0"), USAGE, ("--vehicles", "--source load")
    ),
    "zero count": Bad(("send", "--source", "load", "--count", "0"), USAGE, ("--count",)),
    "negative count": Bad(("send", "--count", "-5"), USAGE, ("--count", "-5")),
    "more malformed than records": Bad(
        ("send", "--source", "load", "--count", "5", "--malformed", "6"), USAGE, ("--malformed",)
    ),
    "negative degraded": Bad(("send", "--degraded", "-1"), USAGE, ("--degraded",)),
    "too few hours": Bad(("send", "--hours", "5"), USAGE, ("hours must exceed",)),
    "too many hours": Bad(("send", "--hours", "2001"), USAGE, ("--hours", "2000")),
    "too many vehicles": Bad(("send", "--vehicles", "5001"), USAGE, ("--vehicles", "5000")),
    "negative seed": Bad(("send", "--seed", "-1"), USAGE, ("--seed",)),
    "bad prefix": Bad(("send", "--prefix", "bad prefix"), USAGE, ("--prefix",)),
    "unknown failure mode": Bad(("send", "--mode", "rust"), USAGE, ("--mode", "rust")),
    "negative timeout": Bad(("send", "--timeout", "-1"), USAGE, ("--timeout",)),
    "bad timestamp": Bad(("send", "--start", "yesterday"), USAGE, ("--start", "ISO 8601")),
    "timestamp out of range": Bad(
        ("send", "--source", "load", "--start", "2200-01-01"), USAGE, ("--start", "2100")
    ),
    "start with the wall clock": Bad(
        ("send", "--clock", "wall", "--start", "2026-01-01T00:00:00Z"),
        USAGE,
        ("--start", "--clock wall"),
    ),
    "start with a file": Bad(
        ("send", "--file", "{tmp}/good.jsonl", "--start", "2026-01-01"),
        USAGE,
        ("--start", "--file"),
    ),
    "unknown model (lifecycle run)": Bad(
        ("lifecycle", "run", "--model", "ev-nosuch"), USAGE, ("--model", "ev-nosuch", "ev-rul")
    ),
    "trigger unfit for a name": Bad(
        ("lifecycle", "run", "--trigger", "a b"), USAGE, ("--trigger",)
    ),
    "zero history limit": Bad(("lifecycle", "history", "--limit", "0"), USAGE, ("--limit",)),
    "unknown model (rollback)": Bad(("rollback", "rull"), USAGE, ("MODEL", "rull")),
    "version zero": Bad(("rollback", "rul", "--to", "0"), USAGE, ("--to",)),
    "zero alert hours": Bad(("alerts", "--hours", "0"), USAGE, ("--hours",)),
    "unknown command": Bad(("nosuch",), USAGE, ("nosuch",)),
    "unknown option": Bad(("status", "--bogus"), USAGE, ("--bogus",)),
    # a failed operation: exit 1
    "missing file (predict)": Bad(
        ("predict", "--file", "{tmp}/missing.json"), FAILED, ("--file", "No such file")
    ),
    "missing file (send)": Bad(
        ("send", "--file", "{tmp}/missing.jsonl"), FAILED, ("--file", "No such file")
    ),
    "a folder for a file": Bad(("predict", "--file", "{tmp}/folder"), FAILED, ("--file",)),
    "malformed JSON": Bad(
        ("predict", "--file", "{tmp}/malformed.json"), FAILED, ("--file", "not JSON", "line 1")
    ),
    "binary file": Bad(("predict", "--file", "{tmp}/binary.json"), FAILED, ("--file", "JSON")),
    "JSON but not a record": Bad(
        ("predict", "--file", "{tmp}/list.json"), FAILED, ("--file", "list", "object")
    ),
    "empty JSON-lines file": Bad(
        ("send", "--file", "{tmp}/empty.jsonl"), FAILED, ("--file", "no records")
    ),
    "revoking a key twice": Bad(
        ("keys", "revoke", "dashboard"), FAILED, ("dashboard", "revoked already"), _revoked_once
    ),
    "revoking an unknown key": Bad(("keys", "revoke", "nobody"), FAILED, ("nobody",)),
    "a key name taken": Bad(
        ("keys", "create", "--role", "viewer", "--name", "dashboard"),
        FAILED,
        ("dashboard", "exists"),
        _dashboard_exists,
    ),
    "unknown execution name": Bad(
        ("lifecycle", "status", "manual-nosuch"), FAILED, ("manual-nosuch", "history")
    ),
    "unknown execution ARN": Bad(
        ("lifecycle", "status", "arn:aws:states:us-east-1:123456789012:execution:x:y"),
        FAILED,
        ("no lifecycle execution",),
    ),
    "lifecycle not deployed": Bad(
        ("lifecycle", "run", "--model", "rul"), FAILED, ("lifecycle stack",), _no_lifecycle_stack
    ),
    "serving not deployed": Bad(("predict",), FAILED, ("serving stack",), _no_serving_stack),
    "no key of the role": Bad(
        ("alerts", "--role", "viewer"), FAILED, ("role 'viewer'",), _no_viewer_key
    ),
    "the API refuses": Bad(("predict",), FAILED, ("403", "may not predict"), _api_refuses),
    "the API does not answer": Bad(("alerts",), FAILED, ("does not answer",), _api_unreachable),
    "the API answers HTML": Bad(("alerts",), FAILED, ("502", "Bad Gateway"), _api_answers_text),
    "the system is down": Bad(("keys", "list"), FAILED, ("is the system up",), _system_down),
    "AWS refuses (no such stream)": Bad(
        ("send", "--source", "load", "--count", "3", "--stream-name", "nosuch"),
        FAILED,
        ("PutRecords", "ResourceNotFound"),
    ),
    "rollback with no previous version": Bad(
        ("rollback", "ev-rul"), FAILED, ("rollback refused", "ev-rul"), _one_registered_version
    ),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_a_bad_invocation_is_one_line_and_an_exit_code(
    case: Bad, system: FakeSystem, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _files(tmp_path)
    if case.setup is not None:
        case.setup(system, monkeypatch)
    result = run(*(arg.replace("{tmp}", str(tmp_path)) for arg in case.args))
    # no exception escaped click (CliRunner would catch it and print no traceback)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.exit_code == case.code, result.output
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert [line for line in lines if line.startswith("Error")] == [lines[-1]], result.stderr
    for name in case.names:
        assert name in lines[-1], (name, lines[-1])
    if case.code == USAGE:  # nothing but the error: not even click's usage block
        assert lines == [lines[-1]]
        assert result.stdout == ""


def test_the_table_has_twenty_bad_invocations_of_each_kind() -> None:
    codes = [case.code for case in BAD.values()]
    assert codes.count(USAGE) >= 20 and codes.count(FAILED) >= 20


def test_an_unexpected_exception_is_one_line_naming_it_and_debug_shows_it(
    system: FakeSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(cfg: Any) -> list[dict[str, Any]]:
        raise KeyError("items")

    monkeypatch.setattr(keys, "list_keys", broken)
    result = run("keys", "list")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: unexpected KeyError: 'items' (set {DEBUG_VARIABLE}=1 for the traceback)"
    ]
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    assert isinstance(run("keys", "list").exception, KeyError)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("predict", "--role", "nosuch"), 2, "'nosuch' is not one of"),
        (("lifecycle", "status", "manual-x"), 1, "is the system up"),
        (("keys", "revoke", "dashboard"), 1, "is the system up"),
    ],
)
def test_the_installed_entry_point_prints_no_traceback(
    args: tuple[str, ...], code: int, needle: str, tmp_path: Path
) -> None:
    env = {"EVPM_EMULATOR_PORT": str(_closed_port()), "EVPM_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "evpm_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == code
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: ") and needle in line


# --- one name for each model, and executions by name -------------------------------------


@pytest.mark.parametrize(
    ("written", "registered"),
    [
        ("rul", "ev-rul"),
        ("ev-rul", "ev-rul"),
        ("EV-RUL", "ev-rul"),
        ("anomaly", "ev-anomaly"),
        ("ev-anomaly", "ev-anomaly"),
        ("classifier", "ev-classifier"),
        ("ev-classifier", "ev-classifier"),
    ],
)
def test_a_model_is_named_either_way(written: str, registered: str) -> None:
    assert lifecycle.canonical_model(written) == registered
    assert ModelName().convert(written, None, None) == registered


def test_rul_and_ev_rul_run_the_same_model_and_history_prints_the_registered_name(
    system: FakeSystem,
) -> None:
    for written in ("rul", "ev-rul"):
        started = run("lifecycle", "run", "--no-wait", "--model", written)
        assert started.exit_code == 0, started.output
    runs = lifecycle.history(main.settings())
    sfn = boto3.client("stepfunctions")
    inputs = [
        json.loads(sfn.describe_execution(executionArn=r["execution"])["input"]) for r in runs
    ]
    assert [i["models"] for i in inputs] == [["rul"], ["rul"]]  # what the training worker reads
    assert [r["models"] for r in runs] == [["ev-rul"], ["ev-rul"]]
    table = run("lifecycle", "history")
    assert table.exit_code == 0
    assert all(" ev-rul " in line for line in table.stdout.splitlines())
    both = run("lifecycle", "run", "--no-wait", "--model", "rul", "--model", "ev-rul")
    latest = lifecycle.describe(main.settings(), both.stdout.strip())
    assert latest["models"] == ["ev-rul"]


def test_rollback_takes_rul_and_ev_rul_for_the_same_model(system: FakeSystem) -> None:
    for version in (1, 2):
        system.registry.create_version("ev-rul", f"s3://v{version}", run_id=None, tags={})
    system.registry.set_alias("ev-rul", "champion", 2)
    system.registry.set_alias("ev-rul", "previous", 1)
    system.pins = {"ev-rul": 2}
    first = run("rollback", "rul", "--to", "1")
    second = run("rollback", "ev-rul", "--to", "2")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert json.loads(first.stdout)["name"] == json.loads(second.stdout)["name"] == "ev-rul"
    assert system.pins == {"ev-rul": 2}


def test_lifecycle_status_takes_the_name_run_prints_or_the_arn(system: FakeSystem) -> None:
    arn = run("lifecycle", "run", "--no-wait", "--model", "anomaly").stdout.strip()
    name = arn.rsplit(":", 1)[-1]
    [listed] = json.loads(run("lifecycle", "history", "--json").stdout)
    assert listed["name"] == name
    by_name, by_arn = run("lifecycle", "status", name), run("lifecycle", "status", arn)
    assert by_name.exit_code == by_arn.exit_code == 0, by_name.output
    assert json.loads(by_name.stdout) == json.loads(by_arn.stdout)
    assert json.loads(by_name.stdout)["execution"] == arn
    assert json.loads(by_name.stdout)["models"] == ["ev-anomaly"]


# --- help that is true, and times that are now ---------------------------------------------


def test_keys_list_never_shows_values_as_its_help_says(system: FakeSystem) -> None:
    assert "never their values, --json included" in " ".join(
        run("keys", "list", "--help").stdout.split()
    )
    keys.create(main.settings(), role="viewer", name="dashboard")
    listed = json.loads(run("keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["dashboard"]
    assert all("value" not in k for k in listed)


def test_a_revoked_name_can_be_used_again_and_revoke_means_the_live_key(
    system: FakeSystem,
) -> None:
    first = keys.create(main.settings(), role="viewer", name="dashboard")
    keys.revoke(main.settings(), "dashboard")
    second = keys.create(main.settings(), role="viewer", name="dashboard")
    assert second["id"] != first["id"]
    revoked = keys.revoke(main.settings(), "dashboard")
    assert revoked["id"] == second["id"]
    named = [k for k in keys.list_keys(main.settings()) if k["name"] == "dashboard"]
    assert sorted(k["enabled"] for k in named) == [False, False]  # both kept, for the record


def test_lifecycle_history_help_promises_the_models_column_it_prints() -> None:
    assert "models" in run("lifecycle", "history", "--help").stdout


def _put_records(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, bytes, bool]]]:
    sent: list[list[tuple[str, bytes, bool]]] = []

    def put(kinesis: Any, stream: str, records: list[tuple[str, bytes, bool]]) -> Any:
        sent.append(records)
        return main.stream.SendReport(sent=len(records), seconds=1.0)

    monkeypatch.setattr(main, "_put_with_progress", put)
    return sent


def _first_time(records: list[tuple[str, bytes, bool]]) -> datetime:
    return TelemetryRecord.model_validate_json(records[0][1]).timestamp


def test_send_load_starts_now_unless_told(
    system: FakeSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _put_records(monkeypatch)
    before = datetime.now(UTC)
    for args in ((), (), ("--start", "2026-03-01T12:00:00+02:00")):
        done = run("send", "--source", "load", "--count", "4", "--stream-name", "s", *args)
        assert done.exit_code == 0, done.output
    first, second, given = (_first_time(records) for records in sent)
    assert before <= first < second <= datetime.now(UTC)  # a second run adds, not overwrites
    assert given == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_predict_sends_a_reading_stamped_now(
    system: FakeSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies: list[dict[str, Any]] = []

    def post(url: str, *, json: dict[str, Any], **kwargs: Any) -> httpx.Response:
        bodies.append(json)
        return httpx.Response(200, json={"status": "ok"})

    monkeypatch.setattr(main.httpx, "post", post)
    done = run("predict")
    assert done.exit_code == 0, done.output
    stamp = TelemetryRecord.model_validate(bodies[0]).timestamp
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


def test_send_fleet_replay_starts_where_told(
    system: FakeSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _put_records(monkeypatch)
    args = ["send", "--vehicles", "1", "--hours", str(WARMUP + 2), "--seed", "3", "--prefix", "X"]
    done = run(*args, "--no-wait", "--stream-name", "s", "--start", "2026-05-01T00:00:00Z")
    assert done.exit_code == 0, done.output
    assert _first_time(sent[0]) == datetime(2026, 5, 1, tzinfo=UTC)
    assert json.loads(done.stdout)["fleet"]["first_reading"] == "2026-05-01T00:00:00.000000Z"
