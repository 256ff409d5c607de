"""EMF log lines -> metric data: parsing, CloudWatch's validation, and what the emulator
publishes from them (with the metrics sink replaced by a list; no LocalStack needed)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from evpm_localstack import emf, lambda_metrics, metrics_sink
from evpm_localstack.emf import EmfError

NOW = 1_800_000_000.0
NOW_MS = int(NOW * 1000)


def document(**overrides: Any) -> dict[str, Any]:
    """A valid document with one directive: namespace evpm, dimension set [service]."""
    doc: dict[str, Any] = {
        "_aws": {"Timestamp": NOW_MS, "CloudWatchMetrics": [{
            "Namespace": "evpm", "Dimensions": [["service"]],
            "Metrics": [{"Name": "RecordsReceived", "Unit": "Count"}]}]},
        "service": "scorer",
        "RecordsReceived": 3,
    }
    doc.update(overrides)
    return doc


def line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def directive(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["_aws"]["CloudWatchMetrics"][0]


def rejected(doc_or_line: dict[str, Any] | str) -> EmfError:
    text = doc_or_line if isinstance(doc_or_line, str) else line(doc_or_line)
    with pytest.raises(EmfError) as caught:
        emf.parse_line(text, now=NOW)
    return caught.value


# -- documents that are EMF -----------------------------------------------------------------
def test_what_powertools_prints_becomes_its_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    powertools = pytest.importorskip("aws_lambda_powertools")
    from aws_lambda_powertools.metrics import MetricResolution, MetricUnit

    # GIVEN what powertools Metrics prints at the end of an invocation
    metrics = powertools.Metrics(namespace="evpm", service="scorer")
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=3)
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=2)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=1.5,
                       resolution=MetricResolution.High)
    metrics.add_dimension(name="model", value="ev-anomaly")
    metrics.add_metadata("shard_id", "shardId-000000000000")
    metrics.flush_metrics()
    printed = capsys.readouterr().out.strip()

    # WHEN the line is parsed
    parsed = emf.parse_line(printed)

    # THEN each metric is one datum per dimension set, array values are several samples
    assert parsed is not None
    by_name = {m.datum["MetricName"]: m for m in parsed}
    assert set(by_name) == {"RecordsReceived", "Latency"}
    records = by_name["RecordsReceived"]
    assert records.namespace == "evpm"
    assert records.datum["Values"] == [3.0, 2.0]
    assert records.datum["Unit"] == "Count"
    assert sorted(d["Name"] for d in records.datum["Dimensions"]) == ["model", "service"]
    assert {d["Name"]: d["Value"] for d in records.datum["Dimensions"]} == {
        "model": "ev-anomaly", "service": "scorer"}
    assert "StorageResolution" not in records.datum
    assert by_name["Latency"].datum["StorageResolution"] == 1
    assert abs(records.datum["Timestamp"] - time.time()) < 60


def test_every_dimension_set_and_directive_is_published() -> None:
    doc = document(model="ev-anomaly", Latency=[1, 2.5])
    directive(doc)["Dimensions"] = [["service"], ["service", "model"], []]
    directive(doc)["Metrics"].append({"Name": "Latency", "Unit": "Milliseconds"})
    doc["_aws"]["CloudWatchMetrics"].append({
        "Namespace": "evpm/other", "Dimensions": [["model"]],
        "Metrics": [{"Name": "Latency"}]})

    parsed = emf.parse_line(line(doc), now=NOW)

    assert parsed is not None
    assert len(parsed) == 2 * 3 + 1
    dimension_sets = [[d["Name"] for d in m.datum["Dimensions"]] for m in parsed
                      if m.datum["MetricName"] == "RecordsReceived"]
    assert dimension_sets == [["service"], ["service", "model"], []]
    other = [m for m in parsed if m.namespace == "evpm/other"]
    assert len(other) == 1
    assert other[0].datum["Unit"] == "None"  # no Unit: CloudWatch's "None"
    assert other[0].datum["Values"] == [1.0, 2.5]
    assert all(m.datum["Timestamp"] == NOW for m in parsed)


def test_no_dimension_sets_publishes_without_dimensions() -> None:
    doc = document()
    directive(doc)["Dimensions"] = []
    parsed = emf.parse_line(line(doc), now=NOW)
    assert parsed is not None and parsed[0].datum["Dimensions"] == []


def test_an_empty_directive_list_is_no_metric_and_no_error() -> None:
    doc = document()
    doc["_aws"]["CloudWatchMetrics"] = []
    assert emf.parse_line(line(doc), now=NOW) == []


@pytest.mark.parametrize("text", [
    "START RequestId: 1 Version: $LATEST",
    "[INFO]\t2026-01-01\t" + line(document()),  # a logger's line: not a whole JSON event
    '{"message": "hello", "level": "INFO"}',
    '{"message": "{\\"_aws\\": {}}"}',  # an EMF document logged as a message string
    '{"nested": {"_aws": {"CloudWatchMetrics": []}}}',  # "_aws" not at the root
    "",
])
def test_other_lines_are_not_emf(text: str) -> None:
    assert emf.parse_line(text, now=NOW) is None
    assert emf.extract([text], now=NOW).metrics == []
    assert emf.extract([text], now=NOW).errors == []


# -- documents that claim to be EMF and are not valid ----------------------------------------
def test_bad_json_claiming_emf_is_a_parsing_error() -> None:
    error = rejected('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [')
    assert error.kind == "parsing"
    assert "not valid JSON" in error.reason


def _without_namespace(doc: dict[str, Any]) -> None:
    del directive(doc)["Namespace"]


def _no_value(doc: dict[str, Any]) -> None:
    del doc["RecordsReceived"]


def _too_many_dimensions(doc: dict[str, Any]) -> None:
    names = [f"d{i}" for i in range(31)]
    doc.update({name: "x" for name in names})
    directive(doc)["Dimensions"] = [names]


def _set(key: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        doc[key] = value
    return change


def _meta(key: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        if value is KeyError:
            del doc["_aws"][key]
        else:
            doc["_aws"][key] = value
    return change


def _directive(key: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        directive(doc)[key] = value
    return change


def _definition(**fields: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        directive(doc)["Metrics"][0].update(fields)
    return change


@pytest.mark.parametrize(("change", "reason"), [
    (_without_namespace, "Namespace is missing"),
    (_directive("Namespace", ""), "Namespace is missing"),
    (_directive("Namespace", "AWS/Lambda"), "reserved"),
    (_directive("Namespace", "bad\tname"), "not a valid namespace"),
    (_no_value, "has no value"),
    (_set("RecordsReceived", []), "has no value"),
    (_set("RecordsReceived", None), "has no value"),
    (_set("RecordsReceived", "3"), "non-numeric"),
    (_set("RecordsReceived", True), "non-numeric"),
    (_set("RecordsReceived", [1, "x"]), "non-numeric"),
    (_set("RecordsReceived", {"Max": 1, "Min": 0, "Sum": 1, "Count": 2}), "non-numeric"),
    (_set("RecordsReceived", list(range(101))), "at most 100"),
    (_set("RecordsReceived", 2.0**400), "out of range"),
    (_too_many_dimensions, "31 dimensions"),
    (_set("service", 7), "no string value"),
    (_set("service", ""), "invalid value"),
    (_set("service", "tab\there"), "invalid value"),
    (_directive("Dimensions", ["service"]), "array of arrays"),
    (_directive("Dimensions", None), "Dimensions is missing"),
    (_directive("Metrics", None), "Metrics is missing"),
    (_directive("Metrics", [{"Name": f"m{i}"} for i in range(101)]), "at most 100"),
    (_definition(Unit="Furlongs"), "unknown unit"),
    (_definition(StorageResolution=5), "StorageResolution"),
    (_definition(Name=""), "invalid Name"),
    (_meta("Timestamp", KeyError), "Timestamp is missing"),
    (_meta("Timestamp", "now"), "Timestamp is missing"),
    (_meta("Timestamp", NOW_MS - 15 * 24 * 3600 * 1000), "14 days old"),
    (_meta("Timestamp", NOW_MS + 3 * 3600 * 1000), "2 hours ahead"),
    (_meta("CloudWatchMetrics", KeyError), "CloudWatchMetrics is missing"),
    (_meta("CloudWatchMetrics", {"Namespace": "evpm"}), "CloudWatchMetrics is missing"),
])
def test_invalid_documents_are_validation_errors(change: Any, reason: str) -> None:
    doc = document()
    change(doc)
    error = rejected(doc)
    assert error.kind == "validation"
    assert reason in error.reason


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(token: str) -> None:
    # Python's json (and powertools' json.dumps) write these tokens for float('nan') / inf
    text = line(document()).replace('"RecordsReceived":3', f'"RecordsReceived":[1,{token}]')
    assert token in text
    error = rejected(text)
    assert "NaN and infinity" in error.reason


def test_a_root_that_is_not_an_object_under_aws_is_refused() -> None:
    assert "_aws is not an object" in rejected('{"_aws": [1, 2]}').reason


def test_extract_keeps_good_documents_and_reports_each_bad_one() -> None:
    bad = document()
    del bad["RecordsReceived"]
    lines = ["START RequestId: x", line(document()), line(bad), "{\"_aws\": oops",
             line(document(RecordsReceived=[4, 5]))]
    extracted = emf.extract(lines, now=NOW)
    assert [m.datum["Values"] for m in extracted.metrics] == [[3.0], [4.0, 5.0]]
    assert [e.kind for e in extracted.errors] == ["validation", "parsing"]


# -- what the emulator publishes from a function's lines -------------------------------------
@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, list[dict]]]:
    calls: list[tuple[str, str, str, list[dict]]] = []
    monkeypatch.setattr(metrics_sink, "put", lambda account, region, namespace, datums:
                        calls.append((account, region, namespace, list(datums))))
    return calls


def test_function_lines_become_metric_data_in_the_functions_account(published: list) -> None:
    lines = ["START RequestId: r1", line(document()), "END RequestId: r1"]
    lambda_metrics.publish_emf("evpm-scorer", "111111111111", "eu-west-1", lines, now=NOW)
    assert len(published) == 1
    account, region, namespace, datums = published[0]
    assert (account, region, namespace) == ("111111111111", "eu-west-1", "evpm")
    assert datums[0]["MetricName"] == "RecordsReceived" and datums[0]["Values"] == [3.0]


def test_malformed_emf_is_skipped_with_one_warning_naming_function_and_reason(
        published: list, caplog: pytest.LogCaptureFixture) -> None:
    bad = document(RecordsReceived=float("nan"))
    lines = [line(bad), '{"_aws": {', line(document())]
    with caplog.at_level(logging.WARNING, logger=lambda_metrics.LOG.name):
        extracted = lambda_metrics.publish_emf("evpm-scorer", "000000000000", "us-east-1",
                                               lines, now=NOW)
    warnings = [json.loads(r.getMessage()) for r in caplog.records
                if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per rejected document
    assert all(w["event"] == "emf_rejected" and w["function"] == "evpm-scorer"
               for w in warnings)
    assert "NaN" in warnings[0]["reason"] and warnings[1]["kind"] == "parsing"
    assert len(extracted.metrics) == 1  # the good document still counts
    namespaces = {call[2]: call[3] for call in published}
    assert namespaces["evpm"][0]["Values"] == [3.0]
    errors = {d["MetricName"]: d for d in namespaces["AWS/Logs"]}
    assert errors["EMFValidationErrors"]["Values"] == [1.0]
    assert errors["EMFParsingErrors"]["Values"] == [1.0]
    assert errors["EMFParsingErrors"]["Dimensions"] == [
        {"Name": "LogGroupName", "Value": "/aws/lambda/evpm-scorer"}]


def test_record_invocation_never_raises(monkeypatch: pytest.MonkeyPatch,
                                        published: list) -> None:
    monkeypatch.setattr(lambda_metrics, "_enabled", True)

    class Id:
        function_name, account, region = "fn", "000000000000", "us-east-1"

    class Version:
        id = Id()

    deep = "{\"_aws\": " + "[" * 100_000 + "]" * 100_000 + "}"  # recursion limit
    lambda_metrics.record_invocation(Version(), started_at=NOW, duration_ms=12.5,
                                     is_error=False, log_lines=[deep, "plain"])
    lambda_metrics.record_invocation(object(), started_at=NOW, duration_ms=1.0,
                                     is_error=False, log_lines=[])  # no .id: logged, not raised
    lambda_ns = [datums for _, _, ns, datums in published if ns == "AWS/Lambda"]
    assert {d["MetricName"]: d["Values"] for d in lambda_ns[0]} == {
        "Invocations": [1], "Errors": [0], "Throttles": [0], "Duration": [12.5]}


def test_invocation_metrics_follow_aws() -> None:
    failed = lambda_metrics.invocation_datums("fn", timestamp=NOW, duration_ms=3000.0,
                                              is_error=True)
    assert {d["MetricName"]: (d["Values"], d["Unit"]) for d in failed} == {
        "Invocations": ([1], "Count"), "Errors": ([1], "Count"),
        "Throttles": ([0], "Count"), "Duration": ([3000.0], "Milliseconds")}
    assert all(d["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}] for d in failed)
    throttled = lambda_metrics.invocation_datums("fn", timestamp=NOW, duration_ms=None,
                                                 is_error=False, throttled=True)
    assert [(d["MetricName"], d["Values"]) for d in throttled] == [("Throttles", [1])]


def test_iterator_age_is_measured_from_the_batchs_last_record() -> None:
    batch = [{"eventSource": "aws:kinesis", "kinesis": {"approximateArrivalTimestamp": t}}
             for t in (NOW - 9.0, NOW - 2.5)]
    assert lambda_metrics.iterator_age_ms(batch, NOW) == pytest.approx(2500.0)
    streams = [{"dynamodb": {"ApproximateCreationDateTime": NOW - 1}}]
    assert lambda_metrics.iterator_age_ms(streams, NOW) == pytest.approx(1000.0)
    assert lambda_metrics.iterator_age_ms([{"eventSource": "aws:sqs", "body": "x"}], NOW) is None
    assert lambda_metrics.iterator_age_ms([], NOW) is None


def test_rows_are_what_put_metric_data_stores() -> None:
    rows = metrics_sink.rows_for("000000000000", "us-east-1", "evpm", [
        {"MetricName": "Latency", "Timestamp": NOW + 0.7, "Unit": "Milliseconds",
         "Dimensions": [{"Name": "service", "Value": "scorer"},
                        {"Name": "model", "Value": "ev-anomaly"}],
         "Values": [1.0, 2.0], "StorageResolution": 1},
        {"MetricName": "Plain", "Timestamp": NOW, "Value": 5},
    ])
    assert rows == [
        ("000000000000", "us-east-1", "Latency", "evpm", int(NOW),
         "model=ev-anomaly\tservice=scorer\t", "Milliseconds", 1, 1.0),
        ("000000000000", "us-east-1", "Latency", "evpm", int(NOW),
         "model=ev-anomaly\tservice=scorer\t", "Milliseconds", 1, 2.0),
        ("000000000000", "us-east-1", "Plain", "evpm", int(NOW), None, None, None, 5.0),
    ]
