"""moto-backed DynamoDB and Kinesis providers: API coverage, CloudFormation, Kinesis speed."""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.integration.emulator.conftest import Emulator

pytestmark = pytest.mark.integration


def wait_stack(cfn, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    raise TimeoutError(name)


def test_dynamodb_api_surface(emulator: Emulator) -> None:
    ddb = emulator.client("dynamodb")
    ddb.create_table(
        TableName="prov-t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        Tags=[{"Key": "team", "Value": "evpm"}],
    )
    table = ddb.describe_table(TableName="prov-t")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    ddb.put_item(TableName="prov-t", Item={"pk": {"S": "v1"}, "sk": {"N": "0"}, "n": {"N": "1"}})
    ddb.batch_write_item(RequestItems={"prov-t": [
        {"PutRequest": {"Item": {"pk": {"S": "v1"}, "sk": {"N": str(i)}}}} for i in range(1, 25)
    ]})
    query = ddb.query(TableName="prov-t", KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": "v1"}})
    assert query["Count"] == 25
    assert ddb.scan(TableName="prov-t")["Count"] == 25
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName="prov-t", Item={"pk": {"S": "v1"}, "sk": {"N": "0"}},
                     ConditionExpression="attribute_not_exists(pk)")
    ddb.update_item(TableName="prov-t", Key={"pk": {"S": "v1"}, "sk": {"N": "0"}},
                    UpdateExpression="SET n = n + :one",
                    ExpressionAttributeValues={":one": {"N": "1"}})
    item = ddb.get_item(TableName="prov-t", Key={"pk": {"S": "v1"}, "sk": {"N": "0"}})["Item"]
    assert item["n"] == {"N": "2"}
    ddb.update_time_to_live(TableName="prov-t", TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    ttl = ddb.describe_time_to_live(TableName="prov-t")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    tags = ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {"Key": "team", "Value": "evpm"} in tags


def test_cloudformation_deploys_table_and_stream(emulator: Emulator) -> None:
    cfn = emulator.client("cloudformation")
    template = {"Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "cfn-predictions", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "Tags": [{"Key": "app", "Value": "evpm"}]}},
        "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {
            "Name": "cfn-telemetry", "ShardCount": 2}}},
        "Outputs": {"TableArn": {"Value": {"Fn::GetAtt": ["Table", "Arn"]}},
                    "StreamArn": {"Value": {"Fn::GetAtt": ["Stream", "Arn"]}}}}
    cfn.create_stack(StackName="prov-stack", TemplateBody=json.dumps(template))
    stack = wait_stack(cfn, "prov-stack")
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["TableArn"].endswith(":table/cfn-predictions")
    ddb = emulator.client("dynamodb")
    assert ddb.describe_table(TableName="cfn-predictions")["Table"]["TableStatus"] == "ACTIVE"
    assert ddb.describe_time_to_live(TableName="cfn-predictions")[
        "TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    shards = emulator.client("kinesis").list_shards(StreamName="cfn-telemetry")["Shards"]
    assert len(shards) == 2


def test_kinesis_20k_records_flat_put_rate_and_ordered_reads(emulator: Emulator) -> None:
    kinesis = emulator.client("kinesis")
    kinesis.create_stream(StreamName="bench-20k", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="bench-20k",
                                            WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    total, batch = 20_000, 500
    rates = []
    started = time.perf_counter()
    for b in range(total // batch):
        t0 = time.perf_counter()
        response = kinesis.put_records(StreamName="bench-20k", Records=[
            {"Data": str(b * batch + i).encode(), "PartitionKey": "vehicle"}
            for i in range(batch)])
        assert response["FailedRecordCount"] == 0
        rates.append(batch / (time.perf_counter() - t0))
    put_seconds = time.perf_counter() - started

    shard_id = kinesis.list_shards(StreamName="bench-20k")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="bench-20k", ShardId=shard_id,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen: list[int] = []
    started = time.perf_counter()
    while len(seen) < total:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        if not page["Records"]:
            break
        seen.extend(int(r["Data"]) for r in page["Records"])
        iterator = page["NextShardIterator"]
    get_seconds = time.perf_counter() - started

    early, late = sum(rates[:5]) / 5, sum(rates[-5:]) / 5
    sys.stderr.write(
        f"\n[kinesis] put {total} in {put_seconds:.2f}s ({total / put_seconds:.0f} rec/s; "
        f"first batches {early:.0f}/s, last {late:.0f}/s); get {len(seen)} in "
        f"{get_seconds:.2f}s ({len(seen) / get_seconds:.0f} rec/s)\n")
    assert seen == list(range(total)), "records lost, duplicated or out of order"
    assert late > early * 0.5, f"put rate fell from {early:.0f}/s to {late:.0f}/s"
    # LATEST/AT_SEQUENCE_NUMBER iterators work on a full shard too
    at = kinesis.get_shard_iterator(StreamName="bench-20k", ShardId=shard_id,
                                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    StartingSequenceNumber="19990")["ShardIterator"]
    tail = kinesis.get_records(ShardIterator=at, Limit=5)["Records"]
    assert [int(r["Data"]) for r in tail] == [19989, 19990, 19991, 19992, 19993]
    latest = kinesis.get_shard_iterator(StreamName="bench-20k", ShardId=shard_id,
                                        ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
