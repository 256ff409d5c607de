"""Shard affinity of parallel Kinesis polling: the pure parts (no LocalStack needed)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from evpm_localstack.esm_shards import (
    EnvironmentOwners,
    ShardPool,
    current_affinity,
    order_candidates,
    shard_affinity,
)


@dataclass
class Env:
    id: str


def test_a_shard_gets_its_own_environment_first_and_never_another_shards() -> None:
    envs = [Env("b-owned"), Env("free-1"), Env("mine"), Env("free-2")]
    ordered = order_candidates(envs, preferred="mine", others={"b-owned"})
    assert [e.id for e in ordered] == ["mine", "free-1", "free-2"]
    # a shard seen for the first time takes a free one, never another shard's
    assert [e.id for e in order_candidates(envs, None, {"b-owned", "mine"})] == [
        "free-1", "free-2"]
    # and with none free it gets none: the caller starts an environment for it
    assert order_candidates([Env("b-owned")], None, {"b-owned"}) == []


def test_owners_remember_the_last_environment_per_shard_and_version() -> None:
    owners = EnvironmentOwners()
    a, b = ("esm", "shard-0"), ("esm", "shard-1")
    assert owners.record("v1", a, "env-1")
    assert owners.record("v1", b, "env-2")
    assert not owners.record("v1", a, "env-1")  # same again: no change
    owners.record("v2", a, "env-9")
    assert owners.preferred("v1", a) == "env-1" and owners.preferred("v1", b) == "env-2"
    assert owners.others("v1", a) == {"env-2"}
    owners.record("v1", a, "env-3")  # its environment was stopped: a new one is remembered
    assert owners.preferred("v1", a) == "env-3" and owners.others("v1", b) == {"env-3"}
    assert owners.preferred("v2", b) is None


def test_affinity_is_per_thread_and_restored_after_the_block() -> None:
    seen: dict[str, object] = {}

    def other() -> None:
        seen["other"] = current_affinity()

    assert current_affinity() is None
    with shard_affinity(("esm", "shard-0")):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert current_affinity() == ("esm", "shard-0")
        with shard_affinity(("esm", "shard-1")):
            assert current_affinity() == ("esm", "shard-1")
        assert current_affinity() == ("esm", "shard-0")
    assert current_affinity() is None and seen["other"] is None


def test_a_closed_mapping_leaves_no_polling_thread_behind() -> None:
    def polling() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("esm-shards-test")}

    pool = ShardPool("esm-shards-test")
    first = pool.executor(2)
    assert [f.result() for f in [first.submit(lambda: 1), first.submit(lambda: 2)]] == [1, 2]
    assert pool.executor(2) is first  # the same threads poll again
    wider = pool.executor(3)  # a resharded stream: more threads, the narrow pool let go
    assert wider is not first and wider.submit(lambda: 3).result() == 3
    assert polling()
    pool.close()
    assert not polling()
    assert pool.executor(1).submit(lambda: 4).result() == 4  # re-enabled: polls again
    pool.close()
