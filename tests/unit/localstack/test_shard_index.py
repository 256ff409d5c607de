"""The Kinesis shard index: moto-compatible mapping semantics, fast paths, thread safety."""

from __future__ import annotations

import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import pytest

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


def _fork_and_pickle(records: list[IndexedRecords], out: str) -> int:
    """Fork; the child pickles ``records`` into ``out`` (exit 0) or gives up on a lock (3)."""
    import os

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if not all(r.lock.acquire(timeout=2) for r in records):
                code = 3
            else:
                with open(out, "wb") as handle:
                    pickle.dump(records, handle)
                code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process
def test_a_lock_held_by_another_thread_at_fork_stays_held_in_the_child(tmp_path) -> None:
    # the failure all_locks_held exists for: the holder does not exist in the child
    records = filled(10)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with records.lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        assert _fork_and_pickle([records], str(tmp_path / "x.pkl")) == 3
    finally:
        release.set()
        thread.join()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_forked_under_all_locks_held_the_child_pickles_consistent_containers(tmp_path) -> None:
    from evpm_localstack.shard_index import all_locks_held

    shards = [filled(1_000) for _ in range(3)]
    stop = threading.Event()

    def writer() -> None:  # appends all the time, taking each shard's lock in turn
        while not stop.is_set():
            for shard in shards:
                shard.append_next(lambda seq: Rec(seq, float(seq)))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        with all_locks_held() as count:
            assert count >= len(shards)
            lengths = [len(shard) for shard in shards]
            code = _fork_and_pickle(shards, str(tmp_path / "shards.pkl"))
        # released again: the writer went on
        time.sleep(0.05)
        assert all(len(shard) > n for shard, n in zip(shards, lengths, strict=True))
    finally:
        stop.set()
        thread.join()
    assert code == 0
    with open(tmp_path / "shards.pkl", "rb") as handle:
        copies = pickle.load(handle)
    # the image of the moment of the fork: no shard half-written
    assert [len(copy) for copy in copies] == lengths
    for copy in copies:
        keys = list(copy)
        assert keys == list(range(1, len(keys) + 1))
        assert [r.sequence_number for r in copy.values()] == keys
