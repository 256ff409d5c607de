"""Expire DynamoDB items by their TTL attribute, which moto stores but never acts on.

Kept apart from the provider (which imports LocalStack) so that it can be unit-tested with moto
alone; the provider calls :func:`sweep_expired_items` from its sweeper thread.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def sweep_expired_items(now: float) -> int:
    """Delete items whose TTL attribute is a number ≤ ``now`` in tables with TTL enabled."""
    from moto.dynamodb.models import dynamodb_backends

    removed = 0
    deadline = Decimal(str(now))
    for account_backends in list(dynamodb_backends.values()):
        for backend in list(account_backends.values()):
            for table in list(getattr(backend, "tables", {}).values()):
                ttl = getattr(table, "ttl", None) or {}
                if ttl.get("TimeToLiveStatus") != "ENABLED" or not ttl.get("AttributeName"):
                    continue
                attribute = ttl["AttributeName"]
                expired = []
                for item in _unsorted_items(table):
                    value = item.attrs.get(attribute)
                    if value is None or value.type != "N":
                        continue
                    try:
                        if Decimal(value.value) <= deadline:
                            expired.append(item)
                    except ArithmeticError:
                        continue
                for item in expired:
                    range_key = item.range_key if table.range_key_attr else None
                    if table.delete_item(item.hash_key, range_key) is not None:
                        removed += 1
    return removed


def _unsorted_items(table: Any) -> list[Any]:
    """Every item of a moto table, in no particular order.

    ``Table.all_items()`` sorts the whole table by key (DynamoType comparisons in Python),
    which the sweep does not need: on a predictions table of a few hundred thousand items that
    sort was most of the sweep's cost, every minute, on the emulator's one core.
    """
    partitions = list(table.items.values())
    if not table.range_key_attr:
        return partitions
    return [item for partition in partitions for item in list(partition.values())]
