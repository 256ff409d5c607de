"""Kinesis event source mappings process their shards in parallel, each shard on its own
execution environment.

Why: LocalStack's Kinesis poller reads one shard per poll, round-robin, and invokes the function
synchronously ("a workaround for not handling shards in parallel", its source says), so a
two-shard stream is processed one batch at a time: the emulator's one core sat about a third
idle while the scorer waited on its writes and the poller waited on the scorer. On AWS each
shard has its own poller and up to one batch per shard (``ParallelizationFactor`` 1) is in
flight at a time.

What:
* ``poll_events`` polls every shard at once, one thread per shard, and returns when all are
  done (the mapping worker's loop, its backoff and its shutdown stay as they are); the
  threads end when LocalStack closes the poller (mapping disabled or deleted);
* a synchronous invocation made from a shard's thread goes to the execution environment that
  shard used last, never to one another shard uses, and starts one if none is free.
  The scorer keeps each vehicle's recent readings in memory (``functions/scorer/app.py``): a
  vehicle is one partition key, hence one shard, hence - with this - one environment.

Single-shard streams are polled exactly as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LOG = logging.getLogger(__name__)

_affinity = threading.local()  # .key: (mapping uuid, shard id) of the polling thread


@contextlib.contextmanager
def shard_affinity(key: tuple[str, str]) -> Iterator[None]:
    """Invocations made by this thread inside the block go to ``key``'s environment."""
    previous = getattr(_affinity, "key", None)
    _affinity.key = key
    try:
        yield
    finally:
        _affinity.key = previous


def current_affinity() -> tuple[str, str] | None:
    return getattr(_affinity, "key", None)


class EnvironmentOwners:
    """Which execution environment each shard key used last, per function version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)

    def preferred(self, version: str, key: tuple[str, str]) -> str | None:
        with self._lock:
            return self._owner[version].get(key)

    def others(self, version: str, key: tuple[str, str]) -> set[str]:
        with self._lock:
            return {env for k, env in self._owner[version].items() if k != key}

    def record(self, version: str, key: tuple[str, str], env_id: str) -> bool:
        """Remember ``env_id`` for ``key``; True if that changed (a first or a new one)."""
        with self._lock:
            changed = self._owner[version].get(key) != env_id
            self._owner[version][key] = env_id
            return changed


def order_candidates(envs: list[Any], preferred: str | None, others: set[str]) -> list[Any]:
    """The shard's own environment first, then unowned ones; never another shard's."""
    return sorted((e for e in envs if e.id not in others), key=lambda e: e.id != preferred)


class ShardPool:
    """A mapping's shard-polling threads: as many as it has shards, gone when it closes.

    Why its own class: LocalStack closes a poller when its mapping is disabled or deleted;
    without :meth:`close` each deleted mapping left its idle threads behind for the life of
    the emulator."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    def executor(self, shards: int) -> ThreadPoolExecutor:
        """A pool with at least ``shards`` threads (a wider one replaces a narrower one)."""
        if self._pool is None or self._pool._max_workers < shards:
            if self._pool is not None:
                self._pool.shutdown(wait=True)  # idle: every batch was awaited
            self._pool = ThreadPoolExecutor(shards, thread_name_prefix=self._name)
        return self._pool

    def close(self) -> None:
        """Let the threads end once idle; a later :meth:`executor` call starts a new pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def install() -> None:
    """Patch LocalStack's Kinesis poller and Lambda assignment service (idempotent)."""
    from localstack.services.lambda_.event_source_mapping.event_processor import (
        PipeInternalError,
    )
    from localstack.services.lambda_.event_source_mapping.pollers.kinesis_poller import (
        KinesisPoller,
    )
    from localstack.services.lambda_.invocation.assignment import AssignmentService
    from localstack.services.lambda_.invocation.execution_environment import (
        InvalidStatusException,
    )
    from localstack.services.lambda_.invocation.lambda_models import InitializationType

    if getattr(KinesisPoller, "_evpm_parallel_shards", False):
        return
    original_poll_events = KinesisPoller.poll_events
    original_close = KinesisPoller.close
    original_get_environment = AssignmentService.get_environment
    owners = EnvironmentOwners()

    def poll_shard(self: Any, shard_id: str, iterator: str) -> None:
        # a PipeInternalError is ignored as the original does: retried at the next poll
        with shard_affinity((self.esm_uuid or "", shard_id)), contextlib.suppress(
                PipeInternalError):
            self.poll_events_from_shard(shard_id, iterator)

    def poll_events(self: Any) -> None:
        if not self.shards:
            self.shards = self.initialize_shards()
        if len(self.shards) <= 1:
            original_poll_events(self)
            return
        for shard_id in self.shard_batcher.keys() - self.shards.keys():
            self.shard_batcher.pop(shard_id, None)
        shard_pool = getattr(self, "_evpm_shard_pool", None)
        if shard_pool is None:
            shard_pool = self._evpm_shard_pool = ShardPool(
                f"esm-shards-{(self.esm_uuid or '')[:8]}")
        pool = shard_pool.executor(len(self.shards))
        futures = [pool.submit(poll_shard, self, shard_id, iterator)
                   for shard_id, iterator in list(self.shards.items())]
        for future in futures:
            future.result()

    @contextlib.contextmanager
    def get_environment(self: Any, version_manager_id: str, function_version: Any,
                        provisioning_type: Any) -> Iterator[Any]:
        key = current_affinity()
        if key is None or provisioning_type != InitializationType.on_demand:
            with original_get_environment(self, version_manager_id, function_version,
                                          provisioning_type) as env:
                yield env
            return
        # a shard without a free environment of its own starts one
        candidates = order_candidates(
            [e for e in list(self.environments[version_manager_id].values())
             if e.initialization_type == provisioning_type],
            owners.preferred(version_manager_id, key), owners.others(version_manager_id, key))
        env = None
        for candidate in candidates:
            try:
                candidate.reserve()
                env = candidate
                break
            except InvalidStatusException:
                pass
        if env is None:
            with self.on_demand_start_semaphore:
                env = self.start_environment(version_manager_id, function_version)
            self.environments[version_manager_id][env.id] = env
            env.reserve()
        if owners.record(version_manager_id, key, env.id):
            LOG.info(json.dumps({"event": "esm_shard_environment", "esm": key[0],
                                 "shard": key[1], "environment": env.id}))
        # from here as LocalStack's own get_environment
        try:
            yield env
            env.release()
        except InvalidStatusException as invalid:
            LOG.error("InvalidStatusException: %s", invalid)
        except Exception:
            self.stop_environment(env)
            raise

    def close(self: Any) -> None:
        # the mapping's worker calls this after its polling loop has ended (disable, delete)
        original_close(self)
        shard_pool = getattr(self, "_evpm_shard_pool", None)
        if shard_pool is not None:
            shard_pool.close()

    KinesisPoller.poll_events = poll_events
    KinesisPoller.close = close
    AssignmentService.get_environment = get_environment
    KinesisPoller._evpm_parallel_shards = True
