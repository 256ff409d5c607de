"""The Kinesis shard index: moto-compatible mapping semantics, fast paths, thread safety."""

from __future__ import annotations

import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from evpm_localstack.shard_index import IndexedRecords


@dataclass
class Rec:
    sequence_number: int
    created_at: float


def filled(n: int) -> IndexedRecords:
    records = IndexedRecords()
    for i in range(1, n + 1):
        records[i] = Rec(i, float(i))
    return records


def test_behaves_like_ordered_dict() -> None:
    records = IndexedRecords(OrderedDict([(1, "a"), (2, "b")]))
    records[5] = "e"
    records[3] = "c"  # out of order insert stays sorted
    assert list(records) == [1, 2, 3, 5]
    assert list(records.items()) == [(1, "a"), (2, "b"), (3, "c"), (5, "e")]
    assert next(reversed(records)) == 5
    assert records[3] == "c" and 4 not in records and len(records) == 4
    records[3] = "C"  # overwrite keeps position
    assert list(records.values()) == ["a", "b", "C", "e"]
    del records[2]
    assert list(records) == [1, 3, 5]
    assert bool(records) and not bool(IndexedRecords())


def test_first_last_and_empty_conventions() -> None:
    empty = IndexedRecords()
    assert (empty.first_key(), empty.last_key(), empty.last_value()) == (0, 0, None)
    records = filled(10)
    assert (records.first_key(), records.last_key()) == (1, 10)
    assert records.last_value().sequence_number == 10


def test_after_returns_slices_in_order() -> None:
    records = filled(100)
    assert [r.sequence_number for r in records.after(0, 3)] == [1, 2, 3]
    assert [r.sequence_number for r in records.after(97, 10)] == [98, 99, 100]
    assert records.after(100, 10) == []
    assert len(records.after(0, None)) == 100
    assert len(records.after(50, 0)) == 50  # falsy limit means "all"


def test_last_before_timestamp() -> None:
    records = filled(10)  # created_at == sequence number
    assert records.last_before_timestamp(0.5) == 0
    assert records.last_before_timestamp(1.0) == 0
    assert records.last_before_timestamp(5.5) == 5
    assert records.last_before_timestamp(5.0) == 4
    assert records.last_before_timestamp(99) == 10


def test_append_next_is_atomic_under_concurrency() -> None:
    records = IndexedRecords()
    per_thread, threads = 2_000, 8

    def writer() -> None:
        for _ in range(per_thread):
            records.append_next(lambda seq: Rec(seq, time.time()))

    def reader(stop: threading.Event) -> None:
        while not stop.is_set():  # iterating while writers append must never raise
            for _key in records:
                pass
            records.after(records.last_key() // 2, 100)

    stop = threading.Event()
    readers = [threading.Thread(target=reader, args=(stop,)) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(threads)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert list(records) == list(range(1, per_thread * threads + 1))
    assert all(records[k].sequence_number == k for k in records)


def test_reads_do_not_slow_down_as_the_shard_fills() -> None:
    small, big = filled(1_000), filled(200_000)

    def cost(records: IndexedRecords) -> float:
        start = time.perf_counter()
        for _ in range(2_000):
            records.after(records.last_key() - 10, 10)
            records.last_key()
        return time.perf_counter() - start

    # a linear scan would be ~200x slower on the big shard; allow generous noise
    assert cost(big) < cost(small) * 5 + 0.05


def test_pickle_round_trip_keeps_order_and_gets_a_fresh_lock() -> None:
    records = filled(5)
    with records.lock:  # pickled while held: the copy must still be usable
        clone = pickle.loads(pickle.dumps(records))
    assert [r.sequence_number for r in clone.values()] == [1, 2, 3, 4, 5]
    assert clone.lock.acquire(timeout=1)
    clone.lock.release()
    clone.append_next(lambda seq: Rec(seq, 6.0))
    assert clone.last_key() == 6
