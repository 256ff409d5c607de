"""The configuration check: structure, and the refusal of unbounded dimensions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cloudwatch_exporter import ConfigError, load_config
from cloudwatch_exporter.__main__ import main
from tests.unit.cloudwatch_exporter.conftest import SHIPPED

ALLOWED = {"evpm": ["service", "route", "status_class", "outcome"]}


def write(tmp_path: Path, **document: Any) -> Path:
    path = tmp_path / "exporter.yaml"
    path.write_text(yaml.safe_dump({"allowed_dimensions": ALLOWED, **document}))
    return path


def job(**changes: Any) -> dict[str, Any]:
    return {
        "name": "scorer",
        "namespace": "evpm",
        "dimensions": ["service"],
        "metrics": [{"name": "RecordsReceived", "counter": True}],
        **changes,
    }


def test_the_shipped_config_is_valid() -> None:
    config = load_config(SHIPPED)
    assert config.allowed_dimensions["evpm"]
    assert {job.name for job in config.jobs} >= {"evpm-service", "lambda", "sqs"}


def test_jobs_take_the_file_defaults_unless_they_set_their_own(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            period=120,
            length=600,
            jobs=[job(), job(name="other", metrics=[{"name": "X"}], length=240, period=60)],
        )
    )
    assert (config.jobs[0].period, config.jobs[0].length) == (120, 600)
    assert (config.jobs[1].period, config.jobs[1].length) == (60, 240)


def test_a_delay_given_at_start_replaces_the_files_and_every_jobs(tmp_path: Path) -> None:
    other = job(name="other", metrics=[{"name": "X"}], delay=120)
    path = write(tmp_path, delay=60, jobs=[job(), other])
    assert [j.delay for j in load_config(path).jobs] == [60, 120]
    assert [j.delay for j in load_config(path, delay=10).jobs] == [10, 10]
    assert [j.delay for j in load_config(path, delay=0).jobs] == [0, 0]


def test_the_command_takes_a_delay_and_refuses_a_negative_one(tmp_path: Path) -> None:
    path = write(tmp_path, jobs=[job()])
    result = CliRunner().invoke(main, ["--config", str(path), "--delay", "-5", "--once"])
    assert result.exit_code == 2
    assert "--delay" in result.output


def test_a_vehicle_id_dimension_is_refused_even_when_allowed(tmp_path: Path) -> None:
    # GIVEN someone who adds vehicle_id to the allow-list and to a job
    path = tmp_path / "exporter.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "allowed_dimensions": {"evpm": ["service", "vehicle_id"]},
                "jobs": [job(dimensions=["service", "vehicle_id"])],
            }
        )
    )
    # WHEN the config is loaded
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    # THEN it is refused as unbounded, both in the allow-list and in the job
    assert refused.value.kinds == ["unbounded_dimension"]
    text = "\n".join(refused.value.problems)
    assert "allowed_dimensions['evpm'] names 'vehicle_id', an unbounded dimension" in text
    assert "job scorer: dimension 'vehicle_id' of namespace 'evpm' is unbounded" in text


@pytest.mark.parametrize("name", ["VehicleId", "request_id", "TraceId", "path", "sequence-number"])
def test_entity_dimensions_are_unbounded_whatever_their_spelling(tmp_path: Path, name: str) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(
        yaml.safe_dump({"allowed_dimensions": {"evpm": ["service", name]}, "jobs": [job()]})
    )
    with pytest.raises(ConfigError, match="unbounded"):
        load_config(path)


def test_a_dimension_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, jobs=[job(dimensions=["service", "region"])]))
    assert refused.value.kinds == ["unbounded_dimension"]
    assert (
        "dimension 'region' is not in allowed_dimensions['evpm'] "
        "(service, route, status_class, outcome)"
    ) in refused.value.problems[0]


def test_a_namespace_without_an_allow_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="namespace 'AWS/EC2' has no entry in allowed"):
        load_config(write(tmp_path, jobs=[job(namespace="AWS/EC2", dimensions=["InstanceId"])]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"metrics": [{"name": "X", "statistics": ["Average"], "counter": True}]},
            "counter: true needs the Sum statistic",
        ),
        ({"metrics": [{"name": "X", "statistics": ["Median"]}]}, "statistic 'Median' is not"),
        ({"metrics": [{"name": "X", "unit": "Hours"}]}, "unit 'Hours' is not a CloudWatch unit"),
        ({"metrics": []}, "name at least one metric"),
        ({"period": 45}, "period 45 s: CloudWatch takes 1, 5, 10, 30 or a multiple of 60"),
        ({"length": 90}, "length 90 s must be a multiple of period 60 s"),
        ({"dimension_select": {"route": ["/predict"]}}, "selects on 'route'"),
        ({"dimension_select_regex": {"service": "("}}, "dimension_select_regex service"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_structural_mistakes_are_named(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, jobs=[job(**changes)]))
    assert message in "\n".join(refused.value.problems)


def test_two_jobs_may_not_produce_the_same_metric(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="evpm_records_received_total comes from both"):
        load_config(write(tmp_path, jobs=[job(), job(name="again")]))


def test_check_lists_the_metrics_and_exits_0() -> None:
    result = CliRunner().invoke(main, ["--check", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert "counter evpm_records_received_total{service}" in result.output
    assert "gauge   aws_lambda_iterator_age_maximum_seconds{function_name}" in result.output


def test_check_refuses_an_unbounded_dimension_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, jobs=[job(dimensions=["service", "vehicle_id"])])
    result = CliRunner().invoke(main, ["--check", str(path)])
    assert result.exit_code == 2
    assert f"{path}: refused" in result.output
    assert "dimension 'vehicle_id' of namespace 'evpm' is unbounded" in result.output


def test_check_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "--check CONFIG" in result.output
