"""A record container for one Kinesis shard whose look-ups do not grow with the stream.

moto keeps a shard's records in an ``OrderedDict`` and answers ``get_records``, "max sequence
number" and "records at timestamp" by walking it from the start (``list(records.keys())[-1]``
on every put), so a stream slows down as it fills, and a reader iterating the dict while a
writer appends raised "OrderedDict mutated during iteration". ``IndexedRecords`` keeps the
sequence numbers in a sorted list beside the values, so appends are O(1), range reads are a
bisect plus a slice, and every access happens under one lock.

Pure Python without moto or LocalStack imports, so it is unit-testable from any interpreter.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

# Every live container, so that a snapshot can hold all their locks across a fork (a mapping
# cannot go in a WeakSet: Mapping makes it unhashable).
_LIVE: weakref.WeakValueDictionary[int, IndexedRecords] = weakref.WeakValueDictionary()


class _Timestamped(Protocol):
    created_at: float


class IndexedRecords(MutableMapping[int, Any]):
    """Mapping ``sequence number -> record`` ordered by sequence number.

    Behaves like the ``OrderedDict`` moto expects (``items()``, ``values()``, ``reversed()``,
    ``records[seq]``), and adds the constant-time/bisect helpers the patched shard uses.
    Iteration works on a snapshot taken under the lock, so concurrent writers never break a
    reader.
    """

    def __init__(self, initial: Any = None) -> None:
        self._lock = threading.RLock()
        self._keys: list[int] = []
        self._values: list[Any] = []
        self._by_key: dict[int, Any] = {}
        _LIVE[id(self)] = self
        if initial:
            items = initial.items() if hasattr(initial, "items") else initial
            for key, value in items:
                self[key] = value

    # -- pickling: locks are process-local, recreate them on load ----------------------------
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": list(self._keys), "values": list(self._values)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.RLock()
        self._keys = list(state["keys"])
        self._values = list(state["values"])
        self._by_key = dict(zip(self._keys, self._values, strict=True))
        _LIVE[id(self)] = self

    def __reduce__(self) -> tuple[Any, ...]:
        # dill would otherwise walk the MutableMapping protocol and re-add item by item
        return (_restore_indexed_records, (self.__getstate__(),))

    # -- MutableMapping ------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The lock writers hold to make "read last sequence number, then append" atomic."""
        return self._lock

    def __getitem__(self, key: int) -> Any:
        return self._by_key[key]

    def __setitem__(self, key: int, value: Any) -> None:
        with self._lock:
            if key in self._by_key:
                self._values[bisect_left(self._keys, key)] = value
            elif not self._keys or key > self._keys[-1]:
                self._keys.append(key)
                self._values.append(value)
            else:
                index = bisect_left(self._keys, key)
                insort(self._keys, key)
                self._values.insert(index, value)
            self._by_key[key] = value

    def __delitem__(self, key: int) -> None:
        with self._lock:
            del self._by_key[key]
            index = bisect_left(self._keys, key)
            del self._keys[index]
            del self._values[index]

    def __iter__(self) -> Iterator[int]:
        with self._lock:
            snapshot = list(self._keys)
        return iter(snapshot)

    def __reversed__(self) -> Iterator[int]:
        with self._lock:
            snapshot = list(self._keys)
        return reversed(snapshot)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __bool__(self) -> bool:
        return bool(self._keys)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._values.clear()
            self._by_key.clear()

    # -- fast paths --------------------------------------------------------------------------
    def first_key(self) -> int:
        """Smallest sequence number, 0 when empty (moto's convention)."""
        with self._lock:
            return self._keys[0] if self._keys else 0

    def last_key(self) -> int:
        """Largest sequence number, 0 when empty (moto's convention)."""
        with self._lock:
            return self._keys[-1] if self._keys else 0

    def last_value(self) -> Any | None:
        with self._lock:
            return self._values[-1] if self._values else None

    def append_next(self, make: Any) -> int:
        """Store ``make(next_sequence_number)`` under the next sequence number, atomically."""
        with self._lock:
            sequence = (self._keys[-1] if self._keys else 0) + 1
            self[sequence] = make(sequence)
            return sequence

    def after(self, sequence: int, limit: int | None) -> list[Any]:
        """Values whose sequence number is greater than ``sequence``, oldest first, at most
        ``limit`` of them (all when ``limit`` is falsy)."""
        with self._lock:
            start = bisect_right(self._keys, sequence)
            end = len(self._keys) if not limit else min(len(self._keys), start + limit)
            return self._values[start:end]

    def last_before_timestamp(self, timestamp: float) -> int:
        """Sequence number of the last record created strictly before ``timestamp``; 0 if the
        first record is at or after it. Assumes ``created_at`` grows with the sequence number,
        which holds for records appended by ``put_record``."""
        with self._lock:
            if not self._values or timestamp <= self._values[0].created_at:
                return 0
            index = bisect_left(self._values, timestamp, key=_created_at)
            return self._keys[index - 1]


@contextlib.contextmanager
def all_locks_held() -> Iterator[int]:
    """Hold the lock of every live container (yields how many), for a consistent ``fork``.

    Why: a child forked while another thread holds a container's lock would wait for it for
    ever (that thread does not exist in the child). Forked while *this* thread holds them all,
    the child owns them (the locks are re-entrant and the forking thread keeps its identity), so
    pickling there takes them again freely, and no container is half-written in the image.
    Writers hold one container's lock at a time, so taking them all cannot deadlock.
    """
    held: list[threading.RLock] = []
    try:
        for records in list(_LIVE.values()):
            records._lock.acquire()
            held.append(records._lock)
        yield len(held)
    finally:
        for lock in reversed(held):
            lock.release()


def _created_at(record: _Timestamped) -> float:
    return record.created_at


def _restore_indexed_records(state: dict[str, Any]) -> IndexedRecords:
    records = IndexedRecords.__new__(IndexedRecords)
    records.__setstate__(state)
    return records
