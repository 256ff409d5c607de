"""The emulator's TTL sweep deletes exactly the expired items of tables with TTL enabled."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from evpm_localstack.dynamodb_ttl import sweep_expired_items

NOW = 1_800_000_000.0


def _table(client: Any, name: str, *, range_key: bool, ttl: bool) -> None:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=keys,
                        AttributeDefinitions=attributes)
    if ttl:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})


def _put(client: Any, name: str, case: str, copy: int, range_key: bool) -> None:
    """Three items per case: one partition of three on a ranged table, three partitions else."""
    item: dict[str, Any] = {"pk": {"S": case}, "sk": {"S": str(copy)}} if range_key else {
        "pk": {"S": f"{case}#{copy}"}}
    if (expires := CASES[case]) is not None:
        item["expires_at"] = expires
    client.put_item(TableName=name, Item=item)


CASES: dict[str, dict[str, str] | None] = {
    "past": {"N": str(int(NOW) - 10)},
    "exactly-now": {"N": str(int(NOW))},
    "future": {"N": str(int(NOW) + 10)},
    "string": {"S": "0"},  # not a number: AWS ignores it, so do we
    "missing": None,
}
EXPIRED = {"past", "exactly-now"}


def test_sweep_removes_expired_items_only_where_ttl_is_on(aws_env: Any) -> None:
    with mock_aws():
        client = boto3.client("dynamodb")
        tables = {"ranged": (True, True), "hashed": (False, True), "no-ttl": (True, False)}
        for name, (range_key, ttl) in tables.items():
            _table(client, name, range_key=range_key, ttl=ttl)
            for case in CASES:
                for copy in range(3):
                    _put(client, name, case, copy, range_key)

        removed = sweep_expired_items(NOW)

        def cases_left(name: str) -> dict[str, int]:
            counts: dict[str, int] = {}
            for item in client.scan(TableName=name)["Items"]:
                case = item["pk"]["S"].split("#")[0]
                counts[case] = counts.get(case, 0) + 1
            return counts

        kept = {case: 3 for case in CASES if case not in EXPIRED}
        assert removed == 2 * 3 * len(EXPIRED)
        assert cases_left("ranged") == kept
        assert cases_left("hashed") == kept
        assert cases_left("no-ttl") == {case: 3 for case in CASES}
        assert sweep_expired_items(NOW) == 0  # nothing left to expire
