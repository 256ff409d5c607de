"""Make moto's Kinesis shards constant-time, so a stream does not slow down as it fills.

moto's ``Shard`` finds the last sequence number with ``list(self.records.keys())[-1]`` on
every put and serves ``get_records`` by scanning from the first record, so cost grows with
the stream length (quadratic over a burst). We swap the shard's record store for
:class:`~evpm_localstack.shard_index.IndexedRecords` through a class-level property (so every
shard, including ones moto creates on resharding or that come back from a snapshot, gets it)
and replace the methods that scanned.
"""

from __future__ import annotations

from typing import Any

from evpm_localstack.shard_index import IndexedRecords
from evpm_localstack.untracked import untrack

_PATCHED_FLAG = "_evpm_fast_shards"


def _get_records_store(self: Any) -> IndexedRecords:
    store = self.__dict__.get("_evpm_records")
    if store is None:
        # a Shard pickled before the patch (or built by moto's __init__) kept a plain dict
        legacy = self.__dict__.pop("records", None)
        store = IndexedRecords(legacy)
        self.__dict__["_evpm_records"] = store
    return store


def _set_records_store(self: Any, value: Any) -> None:
    # moto's split_shard assigns a fresh OrderedDict(); keep our index type
    store = value if isinstance(value, IndexedRecords) else IndexedRecords(value)
    self.__dict__["_evpm_records"] = store


def _get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    records = self.records
    last_sequence = int(last_sequence_id)
    results = records.after(last_sequence, limit)
    if not results:
        return results, last_sequence, 0
    newest = records.last_value()
    millis_behind = int((newest.created_at - results[-1].created_at) * 1000) if newest else 0
    return results, results[-1].sequence_number, millis_behind


def install() -> None:
    """Patch ``moto.kinesis.models.Shard`` once per process (idempotent)."""
    from moto.kinesis import models

    shard_cls = models.Shard
    untrack(models.Record)  # one per record put: moto would keep every one ever made
    if getattr(shard_cls, _PATCHED_FLAG, False):
        return
    record_cls = models.Record

    def put_record(self: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
        sequence = self.records.append_next(
            lambda seq: record_cls(partition_key, data, seq, explicit_hash_key)
        )
        return str(sequence)

    shard_cls.records = property(_get_records_store, _set_records_store)
    shard_cls.get_records = _get_records
    shard_cls.put_record = put_record
    shard_cls.get_min_sequence_number = lambda self: self.records.first_key()
    shard_cls.get_max_sequence_number = lambda self: self.records.last_key()
    shard_cls.get_sequence_number_at = lambda self, ts: self.records.last_before_timestamp(ts)
    setattr(shard_cls, _PATCHED_FLAG, True)
