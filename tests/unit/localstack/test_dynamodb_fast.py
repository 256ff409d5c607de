"""The partition-only ``Query`` patch for moto's DynamoDB gives the same answers as moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from evpm_localstack import dynamodb_fast

QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": {"S": "V7"}}},
    {"KeyConditionExpression": "v = :v AND ts > :t", "ScanIndexForward": False, "Limit": 7,
     "ExpressionAttributeValues": {":v": {"S": "V7"}, ":t": {"S": "00000500"}}},
    {"KeyConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": {"S": "none"}}},
    {"KeyConditionExpression": "v = :v", "FilterExpression": "x > :n",
     "ExpressionAttributeValues": {":v": {"S": "V3"}, ":n": {"N": "900"}}},
    {"KeyConditionExpression": "v = :v", "Select": "COUNT",
     "ExpressionAttributeValues": {":v": {"S": "V1"}}},
    {"IndexName": "by-x", "KeyConditionExpression": "v = :v",
     "ExpressionAttributeValues": {":v": {"S": "V2"}}},
]


@pytest.fixture
def table(aws_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto.dynamodb.models.table import Table

    # undo the class patch after the test, whatever it did
    for name in ("query", "all_items"):
        monkeypatch.setattr(Table, name, getattr(Table, name))
    monkeypatch.setattr(Table, "_evpm_partition_query", False, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "v", "KeyType": "HASH"},
                       {"AttributeName": "ts", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "v", "AttributeType": "S"},
                                  {"AttributeName": "ts", "AttributeType": "S"},
                                  {"AttributeName": "x", "AttributeType": "N"}],
            LocalSecondaryIndexes=[{"IndexName": "by-x", "Projection": {"ProjectionType": "ALL"},
                                    "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"},
                                                  {"AttributeName": "x", "KeyType": "RANGE"}]}])
        client.create_table(
            TableName="h", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
        for i in range(1000):  # shuffled sort keys, so ordering is really exercised
            client.put_item(TableName="t", Item={
                "v": {"S": f"V{i % 10}"}, "ts": {"S": f"{i * 7919 % 1000:08d}"},
                "x": {"N": str(i)}})
        for i in range(20):
            client.put_item(TableName="h", Item={"k": {"S": f"K{i}"}, "n": {"N": str(i)}})
        yield client


def _answers(client: Any) -> list[Any]:
    out = []
    for query in QUERIES:
        kwargs, pages = dict(query), []
        while True:
            page = client.query(TableName="t", **kwargs)
            pages.append((page["Count"], page.get("Items"), page.get("LastEvaluatedKey")))
            if "LastEvaluatedKey" not in page or "Limit" in query:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out.append(pages)
    out.append(client.query(TableName="h", KeyConditionExpression="k = :k",
                            ExpressionAttributeValues={":k": {"S": "K5"}})["Items"])
    out.append(client.scan(TableName="t")["Count"])
    return out


def test_patched_query_answers_exactly_as_moto(table: Any) -> None:
    before = _answers(table)
    dynamodb_fast.install()
    dynamodb_fast.install()  # idempotent
    assert _answers(table) == before
    assert before[0][0][0] == 100 and before[-3] != []  # the data was really there


def test_a_table_query_no_longer_sorts_the_whole_table(table: Any) -> None:
    from moto.dynamodb.models.table import Table

    dynamodb_fast.install()
    seen: list[int] = []
    patched = Table.all_items

    def counting(self: Any) -> list[Any]:
        items = patched(self)
        seen.append(len(items))
        return items

    Table.all_items = counting
    table.query(TableName="t", KeyConditionExpression="v = :v",
                ExpressionAttributeValues={":v": {"S": "V7"}})
    assert seen == [100]  # one partition, not 1,000 items
