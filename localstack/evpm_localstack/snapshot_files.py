"""File layout and crash-safe writes for emulator snapshots.

Kept free of LocalStack imports so the naming and atomicity rules are unit-testable from the
project's own interpreter. Layout::

    <state>/snapshots/manifest.json          what was saved/restored, when, how long it took
    <state>/snapshots/<service>/             one folder per service, swapped in atomically
        arb-<service>-<StoreClass>.pkl       an AccountRegionBundle (LocalStack stores)
        moto-<backend service>.pkl           a moto BackendDict
        assets-<name>/                       a copy of an AssetDirectory
        s3-objects/                          S3 object bodies (see persistence.py)

A service folder is written as ``<service>.tmp-<pid>`` and then swapped with ``os.replace``-
style renames, so a crash mid-save leaves either the old or the new snapshot, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured JSON line, so start-up and save reports are machine-readable."""
    logger.log(level, json.dumps({"event": event, **fields}, default=str, sort_keys=True))


def safe_name(name: str) -> str:
    """A file-name-safe version of ``name`` (service names, class names, moto service ids)."""
    cleaned = _SAFE.sub("_", name).strip("._")
    return cleaned or "_"


def container_filename(kind: str, *parts: str) -> str:
    """Deterministic file name for one state container, so a load finds what a save wrote.

    ``kind`` is ``arb`` (AccountRegionBundle), ``moto`` (BackendDict) or ``assets``.
    """
    if kind not in {"arb", "moto", "assets"}:
        raise ValueError(f"unknown container kind {kind!r}")
    stem = "-".join([kind, *(safe_name(p) for p in parts)])
    return stem if kind == "assets" else f"{stem}.pkl"


def snapshots_root(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / "snapshots"


def service_dir(state_dir: str | os.PathLike[str], service: str) -> Path:
    return snapshots_root(state_dir) / safe_name(service)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename (all-or-nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def new_staging_dir(state_dir: str | os.PathLike[str], service: str) -> Path:
    """A fresh, empty folder to write one service's snapshot into before it is swapped in."""
    staging = snapshots_root(state_dir) / f".{safe_name(service)}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def commit_staging_dir(state_dir: str | os.PathLike[str], service: str, staging: Path) -> Path:
    """Swap a completed staging folder in as the service's snapshot.

    Between the two renames the current snapshot exists only as ``.<service>.old``; the loader
    falls back to it, so there is no instant at which a kill loses the last good snapshot.
    """
    target = service_dir(state_dir, service)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return target


def discard_staging_dir(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def find_service_snapshot(state_dir: str | os.PathLike[str], service: str) -> Path | None:
    """The folder to load a service from: the committed one, else a half-swapped ``.old``."""
    target = service_dir(state_dir, service)
    if target.is_dir():
        return target
    old = target.with_name(f".{target.name}.old")
    if old.is_dir():
        return old
    return None


def list_snapshotted_services(state_dir: str | os.PathLike[str]) -> list[str]:
    """Services that have a loadable snapshot (committed or half-swapped)."""
    root = snapshots_root(state_dir)
    if not root.is_dir():
        return []
    names: set[str] = set()
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        if not entry.name.startswith("."):
            names.add(entry.name)
        elif entry.name.endswith(".old"):
            names.add(entry.name[1 : -len(".old")])
    return sorted(names)


def read_manifest(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = snapshots_root(state_dir) / MANIFEST
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        return json.loads(path.read_text())
    return {}


def update_manifest(state_dir: str | os.PathLike[str], section: str, payload: Any) -> None:
    """Replace one section (``last_save`` or ``last_load``) of the manifest, atomically."""
    manifest = read_manifest(state_dir)
    manifest[section] = payload
    manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(snapshots_root(state_dir) / MANIFEST, manifest)


def next_wait(interval: float, last_save_seconds: float, max_share: float) -> float:
    """Seconds until the next periodic save: ``interval``, stretched so that saving takes at
    most ``max_share`` of the emulator's time (a save holds the GIL for most of its duration,
    and its cost grows with the state: a busy stream's DynamoDB table and Kinesis shards)."""
    if max_share <= 0 or max_share >= 1:
        return interval
    return max(interval, last_save_seconds * (1 - max_share) / max_share)
