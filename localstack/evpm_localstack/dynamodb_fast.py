"""Make moto's DynamoDB ``Query`` on a table's own key read one partition, not the whole table.

moto's ``Table.query`` (without an index) builds ``all_items()`` — every item of the table,
sorted — and keeps those whose hash key matches: each query costs O(N log N) in the table size.
The predictions table grows by every scored record (hundreds of thousands of items after a few
minutes of streaming), so one ``GET /vehicles/{id}/predictions`` or one progress query took
seconds of the emulator's only core. While ``Table.query`` runs for a table query, a
thread-local hint makes ``all_items()`` return just that partition, already in range-key order
(the only order ``query`` relies on: it filters by hash key and sorts by range key itself).
Index queries and every other caller of ``all_items()`` are unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

_PATCHED_FLAG = "_evpm_partition_query"
_hint = threading.local()


def partition_items(table: Any, hash_key: Any) -> list[Any]:
    """The items of one partition, sorted by range key (what ``all_items()`` holds for it)."""
    partition = table.items.get(hash_key)  # .get: never create an entry in the defaultdict
    if partition is None:
        return []
    if not table.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)


def install() -> None:
    """Patch ``moto.dynamodb.models.table.Table`` once per process (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table, _PATCHED_FLAG, False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name:
            return original_query(self, hash_key, *args, **kwargs)
        previous = getattr(_hint, "partition", None)
        _hint.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _hint.partition = previous

    def all_items(self: Any) -> list[Any]:
        hint = getattr(_hint, "partition", None)
        if hint is not None and hint[0] is self:
            return partition_items(self, hint[1])
        return original_all_items(self)

    Table.query = query
    Table.all_items = all_items
    setattr(Table, _PATCHED_FLAG, True)
