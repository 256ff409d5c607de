"""Two patches of moto's DynamoDB for a table that grows by every scored record.

**Query.** Make ``Query`` on a table's own key read one partition, not the whole table.

moto's ``Table.query`` (without an index) builds ``all_items()`` — every item of the table,
sorted — and keeps those whose hash key matches: each query costs O(N log N) in the table size.
The predictions table grows by every scored record (hundreds of thousands of items after a few
minutes of streaming), so one ``GET /vehicles/{id}/predictions`` or one progress query took
seconds of the emulator's only core. While ``Table.query`` runs for a table query, a
thread-local hint makes ``all_items()`` return just that partition, already in range-key order
(the only order ``query`` relies on: it filters by hash key and sorts by range key itself).
Index queries and every other caller of ``all_items()`` are unchanged.

**Item construction.** moto's ``Item.__init__`` stores attributes one by one in a
``LimitedSizeDict``, whose ``__setitem__`` re-measures every attribute already stored (the item
size limit), so building an item costs O(attributes²) size computations: for a 30-attribute
prediction, about 85 % of a ``BatchWriteItem``'s time in the emulator. The patched constructor
measures each attribute once and raises the same ``ItemSizeTooLarge`` at the same limit (sizes
are never negative, so the running sum passes the limit at some step exactly when the total
does). Later single-attribute writes (update expressions) still go through ``__setitem__``.
"""

from __future__ import annotations

import threading
from typing import Any

from evpm_localstack.untracked import untrack

_PATCHED_FLAG = "_evpm_partition_query"
_ITEM_PATCHED_FLAG = "_evpm_linear_item_size"
ITEM_SIZE_LIMIT = 405_000  # moto's own limit (LimitedSizeDict), between AWS's measured 409 and 410 KB
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
    """Patch moto's ``Table`` and ``Item`` once per process (idempotent)."""
    _install_item_init()
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


def _install_item_init() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    untrack(Item)  # one per put: moto would keep every one ever made (evpm_localstack.untracked)
    if getattr(Item, _ITEM_PATCHED_FLAG, False):
        return

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        size = sum(bytesize(key) + value.size() for key, value in values.items())
        if size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        stored = LimitedSizeDict()
        dict.update(stored, values)  # already measured: skip the per-key re-measuring
        self.attrs = stored

    Item.__init__ = __init__
    setattr(Item, _ITEM_PATCHED_FLAG, True)
