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


@pytest.fixture(autouse=True)
def unpatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from moto as shipped and undoes the class patches afterwards."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    for name in ("query", "all_items"):
        monkeypatch.setattr(Table, name, getattr(Table, name))
    monkeypatch.setattr(Table, "_evpm_partition_query", False, raising=False)
    monkeypatch.setattr(Item, "__init__", Item.__init__)
    monkeypatch.setattr(Item, "_evpm_linear_item_size", False, raising=False)
    yield
    for name in ("__new__", "_evpm_untracked"):  # untrack() sets them on Item itself
        if name in Item.__dict__:
            delattr(Item, name)


@pytest.fixture
def table(aws_env) -> Iterator[Any]:
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


@pytest.fixture
def plain_item() -> Any:
    from moto.dynamodb.models.dynamo_type import Item

    return Item


def _wire_item(attributes: int, pad: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = {f"a{i:02d}": {"N": str(i * 1.5)} for i in range(attributes)}
    item["probs"] = {"M": {f"class_{i}": {"N": f"0.{i}"} for i in range(6)}}
    item["list"] = {"L": [{"S": "x" * 3}, {"BOOL": True}, {"NULL": True}]}
    item["pad"] = {"S": "p" * pad}
    return item


def _build(item_cls: Any, attrs: dict[str, Any]) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        return item_cls(DynamoType({"S": "V1"}), DynamoType({"S": "t"}), attrs)
    except Exception as error:  # the size error is what is compared
        return type(error).__name__


def test_items_are_built_exactly_as_moto_builds_them(plain_item: Any) -> None:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    small = _wire_item(30)
    # the limit sits between these two pads: one byte under and one byte over
    base = _build(plain_item, _wire_item(30)).size()
    at_limit = _wire_item(30, pad=dynamodb_fast.ITEM_SIZE_LIMIT - base)
    over = _wire_item(30, pad=dynamodb_fast.ITEM_SIZE_LIMIT - base + 1)
    before = [_build(plain_item, attrs) for attrs in (small, at_limit, over)]
    dynamodb_fast.install()
    after = [_build(plain_item, attrs) for attrs in (small, at_limit, over)]
    assert before[2] == after[2] == "ItemSizeTooLarge"
    for old, new in zip(before[:2], after[:2], strict=True):
        assert new == old and new.to_json() == old.to_json() and new.size() == old.size()
        assert type(new.attrs) is LimitedSizeDict and list(new.attrs) == list(old.attrs)


def test_building_an_item_measures_each_attribute_once(
        plain_item: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    calls = [0]
    size = DynamoType.size

    def counting(self: Any) -> int:
        calls[0] += 1
        return size(self)

    monkeypatch.setattr(DynamoType, "size", counting)
    item = _build(plain_item, _wire_item(60))
    quadratic, calls[0] = calls[0], 0
    item.size()  # measures every attribute (and what it holds) exactly once
    once, calls[0] = calls[0], 0
    dynamodb_fast.install()
    _build(plain_item, _wire_item(60))
    assert calls[0] == once
    assert quadratic > 20 * once  # what moto did: every stored attribute again per attribute


def _put_items(n: int) -> tuple[Any, int]:
    """Overwrite one item ``n`` times; the item, and how many Items moto then tracks."""
    from moto.dynamodb.models.dynamo_type import Item

    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="p", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
        for i in range(n):  # every put overwrites the same key
            client.put_item(TableName="p", Item={"k": {"S": "same"}, "n": {"N": str(i)}})
        tracked = len(Item.instances_tracked)  # read before the mock's reset clears it
        return client.get_item(TableName="p", Key={"k": {"S": "same"}})["Item"], tracked


def test_moto_as_shipped_keeps_every_item_ever_made(aws_env: Any) -> None:
    _, tracked = _put_items(50)
    assert tracked >= 50  # the leak the patch removes: 49 of them overwritten long ago


def test_patched_items_are_not_remembered_and_still_store_and_pickle(aws_env: Any) -> None:
    import pickle

    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    Item.instances_tracked.append(object())  # install() also drops what was kept so far
    dynamodb_fast.install()
    assert Item.instances_tracked == []
    assert _put_items(50) == ({"k": {"S": "same"}, "n": {"N": "49"}}, 0)
    item = Item(DynamoType({"S": "a"}), None, {"k": {"S": "a"}, "m": {"M": {"x": {"N": "1"}}}})
    clone = pickle.loads(pickle.dumps(item))
    assert clone == item and clone.to_json() == item.to_json()
