"""evpm-scoring: the scorer, its layers, its Kinesis mapping and its permissions."""

from __future__ import annotations

import json

from infra import constants as c
from tests.infra.helpers import actions, export_name_of, only, policy_statements

STACK = c.SCORING_STACK


def test_scorer_function_shape(template) -> None:
    tpl = template(STACK)
    _, fn = only(tpl, "AWS::Lambda::Function")
    props = fn["Properties"]
    assert props["FunctionName"] == "evpm-scorer"
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "app.handler"
    assert props["MemorySize"] == 1024
    assert props["Timeout"] == 60
    assert props["TracingConfig"] == {"Mode": "Active"}
    # Both layers of this stack. (Their order is CDK's: the recognizeLayerVersion flag sorts
    # them, which is harmless only because deps and core share no top-level module.)
    layers = tpl.find_resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    assert sorted(ref["Ref"] for ref in props["Layers"]) == sorted(layers)
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "evpm-scorer"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "evpm"
    assert env["LOG_LEVEL"] == "INFO"
    assert env["ALERT_WINDOW_SECONDS"] == "3600"
    assert set(env) == {
        "PREDICTIONS_TABLE",
        "DLQ_URL",
        "ALERT_BUS_NAME",
        "ALERT_DEDUP_TABLE",
        "ALERT_WINDOW_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
        "PINS_PARAMETER",
        "MLFLOW_URI_PARAMETER",
        "MODELS_TTL_SECONDS",
        "CAPTURE_BUCKET",
        "CAPTURE_PREFIX",
        "CAPTURE_SAMPLING",
    }
    assert env["CAPTURE_PREFIX"] == "capture/" and env["CAPTURE_SAMPLING"] == "1.0"


def test_capture_is_put_only_under_its_prefix(template) -> None:
    # GIVEN the scorer's policies WHEN read THEN its one right on the raw bucket is PutObject
    # on capture/*
    tpl = template(STACK)
    statements = [
        st
        for _, policy in tpl.find_resources("AWS::IAM::Policy").items()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "RawTelemetry" in json.dumps(st["Resource"])
    ]
    assert len(statements) == 1 and statements[0]["Action"] == "s3:PutObject"
    assert statements[0]["Resource"]["Fn::Join"][1][-1] == "/capture/*"


def test_mapping_reports_partial_failures_retries_and_parks_in_the_dlq(template) -> None:
    # GIVEN the DLQ and stream ARNs the ingestion stack exports
    ingestion = template(c.INGESTION_STACK)
    dlq_id, _ = only(ingestion, "AWS::SQS::Queue")
    stream_id, _ = only(ingestion, "AWS::Kinesis::Stream")
    dlq_arn_export = export_name_of(ingestion, {"Fn::GetAtt": [dlq_id, "Arn"]})
    stream_arn_export = export_name_of(ingestion, {"Fn::GetAtt": [stream_id, "Arn"]})
    # WHEN the scoring stack maps the stream to the scorer
    _, esm = only(template(STACK), "AWS::Lambda::EventSourceMapping")
    props = esm["Properties"]
    # THEN it reads that stream and sends exhausted batches to that DLQ
    assert props["EventSourceArn"] == {"Fn::ImportValue": stream_arn_export}
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::ImportValue": dlq_arn_export}}
    }
    assert props["BatchSize"] == 500
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["MaximumRetryAttempts"] == 3
    assert props["BisectBatchOnFunctionError"] is False
    assert 0 < props["MaximumBatchingWindowInSeconds"] <= 5


def test_scorer_role_is_least_privilege(template) -> None:
    statements = policy_statements(template(STACK))
    granted = {a for s in statements for a in actions(s)}
    # It can write predictions, park records and read the stream ...
    assert {"dynamodb:PutItem", "dynamodb:BatchWriteItem"} <= granted
    assert "sqs:SendMessage" in granted
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator"} <= granted
    # ... query a vehicle's stored readings back (a history miss), in a statement of its own
    # on the predictions table ...
    queries = [s for s in statements if "dynamodb:Query" in actions(s)]
    assert len(queries) == 1 and actions(queries[0]) == ["dynamodb:Query"], queries
    assert "GetAttPredictions" in json.dumps(queries[0]["Resource"]), queries[0]["Resource"]
    # ... and cannot scan or get predictions, or touch anything else.
    assert not {"dynamodb:Scan", "dynamodb:GetItem"} & granted
    # Models: it reads the pins, the registry's address and model files, and writes none;
    # its one S3 write is the data capture (test_capture_is_put_only_under_its_prefix).
    assert {"ssm:GetParameter", "s3:GetObject"} <= granted
    puts = [s for s in statements if "s3:PutObject" in actions(s)]
    assert len(puts) == 1 and "/capture/*" in json.dumps(puts[0]["Resource"])
    assert not {a for a in granted if a.startswith(("ssm:Put", "s3:Delete", "s3:List"))}
    assert not {a for a in granted if a.startswith("s3:Put")} - {"s3:PutObject"}
    assert {a.split(":")[0] for a in granted} <= {
        "s3",
        "ssm",
        "dynamodb",
        "sqs",
        "kinesis",
        "logs",
        "xray",
        "events",
    }
