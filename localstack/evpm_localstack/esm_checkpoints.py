"""Checkpoints for Kinesis event source mappings, so a restart resumes where processing stopped.

Why: LocalStack keeps a mapping's shard position only in memory; after a restart the mapping
starts again from its ``StartingPosition`` and, with ``TRIM_HORIZON``, hands every record
already processed to the function a second time. AWS keeps that position for the mapping. Here
the poller records, after each batch it has finished with (processed, or given up on and sent
to the on-failure destination), the batch's last sequence number per shard; on start it asks for
an ``AFTER_SEQUENCE_NUMBER`` iterator where a checkpoint exists. Writes are throttled and atomic,
so a crash can replay at most the last moments — at-least-once, as on AWS.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 0.5


class CheckpointStore:
    """``{esm_uuid: {shard_id: sequence_number}}`` in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, str]] = {}
        self._dirty = False
        self._last_flush = 0.0
        if path.exists():
            try:
                self._data = json.loads(path.read_text())
            except (OSError, ValueError):
                LOG.warning("unreadable ESM checkpoints at %s; starting without", path)

    def get(self, esm_uuid: str | None) -> dict[str, str]:
        with self._lock:
            return dict(self._data.get(esm_uuid or "", {}))

    def record(self, esm_uuid: str | None, shard_id: str, sequence_number: str) -> None:
        if not esm_uuid:
            return
        with self._lock:
            self._data.setdefault(esm_uuid, {})[shard_id] = sequence_number
            self._dirty = True
            if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, sort_keys=True))
        os.replace(tmp, self.path)
        self._dirty = False
        self._last_flush = time.monotonic()


_store: CheckpointStore | None = None


def store() -> CheckpointStore | None:
    return _store


def install(state_dir: Path) -> None:
    """Patch LocalStack's Kinesis poller to keep and use checkpoints (idempotent)."""
    global _store
    from localstack.services.lambda_.event_source_mapping.pollers.kinesis_poller import (
        KinesisPoller,
    )

    _store = CheckpointStore(state_dir / "esm-checkpoints.json")
    if getattr(KinesisPoller, "_evpm_checkpoints", False):
        return
    original_init_shards = KinesisPoller.initialize_shards
    original_forward = KinesisPoller.forward_events_to_target

    def initialize_shards(self: Any) -> dict[str, str]:
        shards = original_init_shards(self)
        saved = _store.get(self.esm_uuid) if _store else {}
        for shard_id, sequence_number in saved.items():
            if shard_id not in shards:
                continue
            try:
                shards[shard_id] = self.source_client.get_shard_iterator(
                    StreamARN=self.source_arn, ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    StartingSequenceNumber=sequence_number,
                )["ShardIterator"]
                LOG.info(json.dumps({"event": "esm_resumed", "esm": self.esm_uuid,
                                     "shard": shard_id, "after": sequence_number}))
            except Exception:  # a trimmed or recreated stream: keep the mapping's own start
                LOG.warning("cannot resume %s/%s after %s", self.esm_uuid, shard_id,
                            sequence_number, exc_info=True)
        return shards

    def forward_events_to_target(self: Any, shard_id: str, records: list[dict]) -> None:
        original_forward(self, shard_id, records)
        if records and _store and not self._is_shutdown.is_set():
            _store.record(self.esm_uuid, shard_id, records[-1]["SequenceNumber"])

    KinesisPoller.initialize_shards = initialize_shards
    KinesisPoller.forward_events_to_target = forward_events_to_target
    KinesisPoller._evpm_checkpoints = True
