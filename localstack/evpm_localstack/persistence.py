"""Save-on-stop / load-on-start persistence for the LocalStack community core.

Why: with ``PERSISTENCE=1`` the community core restores nothing; it ships the pieces (state
visitors, service lifecycle hooks, a dill pickler that copes with locks) but not the lifecycle.
This module supplies it, with the core's own pieces:

* on infra ready (:func:`load_on_ready`): every service that has a snapshot under
  ``<EVPM_STATE_DIR>/snapshots/<service>/`` is started eagerly, then gets
  ``on_before_state_load`` → ``accept_state_visitor(load visitor)`` → ``on_after_state_load``
  (the Lambda provider re-creates functions and event source mappings in the last one). Only
  then is ``<state>/run/ready.json`` written; ``evpm-emulator start`` waits for it, so nobody
  touches a service before its state is back.
* every ``EVPM_SNAPSHOT_INTERVAL_SEC`` seconds (default 30) and on shutdown
  (:func:`save_on_shutdown`, before services stop): every running service is saved with
  ``on_before_state_save`` → ``accept_state_visitor(save visitor)`` → ``on_after_state_save``
  into a staging folder that is swapped in atomically, so a ``kill -9`` loses at most one
  interval and never leaves a torn snapshot.

A service that fails to save or load is logged and skipped; the others carry on, and a service
whose load failed is never saved over its (still good) snapshot. What happened is logged as a
JSON line and written to ``<state>/snapshots/manifest.json``.

Env: ``EVPM_STATE_DIR`` (unset → persistence off), ``EVPM_PERSISTENCE=0`` (off),
``EVPM_SNAPSHOT_INTERVAL_SEC`` (0 → only on shutdown; stretched so that saving takes at most
``EVPM_SNAPSHOT_MAX_SHARE`` of the time, default 0.1), ``EVPM_PERSIST_SERVICES``
(comma list; default: every running service), ``EVPM_FAULT_INJECT=load`` (the load fails
before any snapshot is read, as a plugin error would: the tests' proof that such a run never
saves over the snapshots).
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import logging
import os
import pickle
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from localstack.runtime import hooks
from localstack.services.stores import AccountRegionBundle
from localstack.state import AssetDirectory, StateVisitor
from localstack.state import pickle as ls_pickle
from moto.core.base_backend import BackendDict

from evpm_localstack import (
    apigw_stage_update,
    cloudwatch_stats,
    esm_checkpoints,
    esm_pacing,
    esm_shards,
    events_delivery,
    events_restore,
    gc_watch,
    lambda_metrics,
    metrics_sink,
    pickling,
    request_log,
    sfn_callbacks,
    shard_index,
    sqs_metrics,
)
from evpm_localstack import snapshot_files as sf
from evpm_localstack.snapshot_files import log_event

LOG = logging.getLogger(__name__)
pickling.install()
# `kill -USR2 <pid>` dumps every thread's stack into the log: the cheapest way to see a hang.
with contextlib.suppress(AttributeError, ValueError, RuntimeError):
    faulthandler.register(signal.SIGUSR2, all_threads=True)

# Restore order: identity and storage first, event sources before Lambda (its mappings start
# polling as soon as they are restored), CloudFormation last (its stacks describe the rest).
LOAD_ORDER = [
    "sts", "iam", "kms", "s3", "ssm", "dynamodb", "kinesis", "sqs", "sns", "logs",
    "cloudwatch", "events", "lambda", "stepfunctions", "apigateway", "cloudformation",
]
S3_OBJECTS = "s3-objects"

_save_lock = threading.Lock()
_stop_periodic = threading.Event()
_load_failed: set[str] = set()
# Set once the snapshots were read (whatever each service's outcome). A runtime that failed
# before that holds none of the saved state, and saving it would replace the snapshots with
# an empty cloud (seen: a plugin error in the ready hook, then the shutdown save).
_loaded = threading.Event()


# -- configuration ----------------------------------------------------------------------------
def state_dir() -> Path | None:
    value = os.environ.get("EVPM_STATE_DIR")
    if not value or os.environ.get("EVPM_PERSISTENCE", "1").lower() in {"0", "false", "no"}:
        return None
    return Path(value)


def _persist_filter() -> set[str] | None:
    raw = os.environ.get("EVPM_PERSIST_SERVICES", "").strip()
    return {s.strip() for s in raw.split(",") if s.strip()} or None


def _ordered(services: list[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(LOAD_ORDER)}
    return sorted(services, key=lambda s: (rank.get(s, len(LOAD_ORDER)), s))


# -- visitors ---------------------------------------------------------------------------------
def _backend_dict_name(container: BackendDict) -> str:
    return getattr(container, "service_name", None) or type(container).__name__


# moto backends whose object graphs the C pickler handles (no locks, lambdas or odd
# defaultdicts): ~10x faster than dill, which matters because DynamoDB grows with every
# prediction (20,000 items: 0.9 s instead of 8.8 s). Loading is unchanged: dill's unpickler
# reads standard pickle streams.
FAST_PICKLE_SERVICES = frozenset({"dynamodb", "kinesis"})
# ... and those pickled in a forked child: the C pickler holds the GIL for the whole dump (a
# big predictions table froze every request for seconds; a day of stream records, 380 MB,
# stopped put_records for 8 s); a child pickles a copy-on-write image of the moment of the fork
# while the emulator carries on (Redis's BGSAVE). A lock held by another thread at the fork
# would stay held in the child, so the object graph must take none while pickling, or the
# forking thread must hold them all across the fork (Kinesis shards lock in __getstate__:
# shard_index.all_locks_held).
FORK_PICKLE_SERVICES = frozenset({"dynamodb", "kinesis"})
FORK_TIMEOUT_S = 600.0
SNAPSHOT_NICENESS = 10  # the forked pickler runs at this niceness


def fast_dumps(obj: Any) -> bytes:
    """The C pickler, falling back to the core's dill pickler for what it cannot handle."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return ls_pickle.dumps(obj)


def _child_dump(obj: Any, tmp: Path) -> None:
    """In the forked child: no logging, no cleanup handlers - write and leave."""
    code = 1
    try:
        # a background copy: yield the CPU to the emulator and its Lambda workers, which a
        # save of a busy stream's table (tens of CPU seconds) would otherwise halve
        with contextlib.suppress(OSError):
            os.nice(SNAPSHOT_NICENESS)
        with open(tmp, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        code = 0
    finally:
        os._exit(code)


def forked_dump(obj: Any, path: Path,
                hold: contextlib.AbstractContextManager[Any] | None = None) -> bool:
    """Pickle ``obj`` into ``path`` from a forked child; False if that did not work.

    ``hold`` is entered around the fork (and stays entered in the child): the locks the
    pickling takes, so that no other thread holds one at the moment of the fork.
    """
    import warnings

    tmp = path.with_name(path.name + ".fork")
    with warnings.catch_warnings(), hold or contextlib.nullcontext():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
        if pid == 0:
            _child_dump(obj, tmp)
    deadline = time.monotonic() + FORK_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = -1
            break
        time.sleep(0.05)
    if status == 0 and tmp.is_file():
        tmp.replace(path)
        return True
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    LOG.warning("evpm persistence: forked pickling of %s failed (status %s)", path.name, status)
    return False


class SaveVisitor(StateVisitor):
    """Writes each visited state container of one service into ``target``."""

    def __init__(self, service: str, target: Path, provider: Any = None) -> None:
        self.service = service
        self.target = target
        self.provider = provider
        self.files: list[str] = []

    def visit(self, state_container: Any) -> None:
        if isinstance(state_container, AccountRegionBundle):
            name = sf.container_filename(
                "arb", state_container.service_name, state_container.store.__name__
            )
            self._write_pickle(name, state_container)
        elif isinstance(state_container, BackendDict):
            name = sf.container_filename("moto", _backend_dict_name(state_container))
            hold = shard_index.all_locks_held() if self.service == "kinesis" else None
            if self.service in FORK_PICKLE_SERVICES and forked_dump(
                    dict(state_container), self.target / name, hold):
                self.files.append(name)
                return
            self._write_pickle(name, dict(state_container),
                               fast=self.service in FAST_PICKLE_SERVICES)
        elif isinstance(state_container, AssetDirectory):
            if self.service == "s3":
                self._save_s3_objects()
            source = Path(state_container.path)
            if source.is_dir() and any(source.iterdir()) and self.service != "s3":
                name = sf.container_filename("assets", state_container.service_name)
                # CloudWatch's folder is a live SQLite file: copy it between transactions.
                with (metrics_sink.SINK.quiesced() if self.service == "cloudwatch"
                      else contextlib.nullcontext()):
                    shutil.copytree(source, self.target / name, symlinks=True)
                self.files.append(name)
        else:
            LOG.warning("evpm persistence: no saver for %s in %s", type(state_container), self.service)

    def _write_pickle(self, name: str, obj: Any, *, fast: bool = False) -> None:
        last_error: Exception | None = None
        for _attempt in range(3):  # a concurrent request can mutate a dict mid-pickle: retry
            try:
                data = fast_dumps(obj) if fast else ls_pickle.dumps(obj)
                break
            except RuntimeError as error:
                last_error = error
                time.sleep(0.05)
        else:
            raise RuntimeError(f"could not pickle {name}: {last_error}")
        sf.atomic_write_bytes(self.target / name, data)
        self.files.append(name)

    def _save_s3_objects(self) -> None:
        """Object bodies live in spooled temp files keyed by a per-process ``hash()``: save them
        by (bucket, key, version) so the next process can re-key them."""
        from localstack.services.s3.models import S3Object, s3_stores

        backend = getattr(self.provider, "_storage_backend", None)
        if backend is None:
            return
        folder = self.target / S3_OBJECTS
        folder.mkdir(parents=True, exist_ok=True)
        index: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _account, _region, store in s3_stores.iter_stores():
            for bucket_name, bucket in list(store.buckets.items()):
                if bucket_name in seen:
                    continue
                seen.add(bucket_name)
                for s3_object in bucket.objects.values(with_versions=True):
                    if not isinstance(s3_object, S3Object):
                        continue  # delete markers carry no data
                    with backend.open(bucket_name, s3_object, mode="r") as stored:
                        stored.seek(0)
                        data = stored.read()
                    file_name = f"{len(index):08d}.bin"
                    (folder / file_name).write_bytes(data)
                    index.append({
                        "bucket": bucket_name,
                        "key": s3_object.key,
                        "version_id": s3_object.version_id,
                        "file": file_name,
                    })
        sf.atomic_write_bytes(folder / "index.pkl", ls_pickle.dumps(index))
        self.files.append(S3_OBJECTS)


class LoadVisitor(StateVisitor):
    """Restores each visited state container of one service from ``source``, in place (other
    modules keep references to the live containers, so they are refilled, not replaced)."""

    def __init__(self, service: str, source: Path, provider: Any = None) -> None:
        self.service = service
        self.source = source
        self.provider = provider
        self.loaded: list[str] = []

    def visit(self, state_container: Any) -> None:
        if isinstance(state_container, AccountRegionBundle):
            name = sf.container_filename(
                "arb", state_container.service_name, state_container.store.__name__
            )
            if (loaded := self._read_pickle(name)) is not None:
                _refill_bundle(state_container, loaded)
                self.loaded.append(name)
        elif isinstance(state_container, BackendDict):
            name = sf.container_filename("moto", _backend_dict_name(state_container))
            if (loaded := self._read_pickle(name)) is not None:
                _refill_backend_dict(state_container, loaded)
                self.loaded.append(name)
        elif isinstance(state_container, AssetDirectory):
            if self.service == "s3":
                self._load_s3_objects()
                return
            name = sf.container_filename("assets", state_container.service_name)
            saved = self.source / name
            if saved.is_dir():
                shutil.copytree(saved, Path(state_container.path), dirs_exist_ok=True)
                self.loaded.append(name)

    def _read_pickle(self, name: str) -> Any | None:
        path = self.source / name
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return ls_pickle.load(handle)

    def _load_s3_objects(self) -> None:
        from localstack.services.s3.models import s3_stores

        backend = getattr(self.provider, "_storage_backend", None)
        index_path = self.source / S3_OBJECTS / "index.pkl"
        if backend is None or not index_path.is_file():
            return
        with open(index_path, "rb") as handle:
            index = ls_pickle.load(handle)
        wanted = {(e["bucket"], e["key"], e["version_id"]): e["file"] for e in index}
        restored = 0
        seen: set[str] = set()
        for _account, _region, store in s3_stores.iter_stores():
            for bucket_name, bucket in list(store.buckets.items()):
                if bucket_name in seen:
                    continue
                seen.add(bucket_name)
                Path(backend.root_directory, bucket_name).mkdir(parents=True, exist_ok=True)
                for s3_object in bucket.objects.values(with_versions=True):
                    file_name = wanted.get((bucket_name, s3_object.key, s3_object.version_id))
                    if file_name is None:
                        continue
                    data = (self.source / S3_OBJECTS / file_name).read_bytes()
                    etag, size = s3_object.etag, s3_object.size  # keep multipart ETags
                    with backend.open(bucket_name, s3_object, mode="w") as stored:
                        stored.write(io.BytesIO(data))
                    s3_object.etag, s3_object.size = etag, size
                    restored += 1
        self.loaded.append(f"{S3_OBJECTS}({restored})")


def _refill_bundle(live: AccountRegionBundle, loaded: AccountRegionBundle) -> None:
    """Move the loaded accounts into the live bundle and re-point their shared references
    (cross-account attributes and the lock) at the live bundle's."""
    with live.lock:
        live._universal.clear()
        live._universal.update(loaded._universal)
        dict.clear(live)
        for account_id, region_bundle in dict.items(loaded):
            region_bundle.lock = live.lock
            region_bundle._universal = live._universal
            for store in dict.values(region_bundle):
                store._universal = live._universal
            dict.__setitem__(live, account_id, region_bundle)


def _refill_backend_dict(live: BackendDict, loaded: dict[str, Any]) -> None:
    from moto.core.base_backend import backend_lock

    with backend_lock:
        dict.clear(live)
        for account_id, account_backend in loaded.items():
            dict.__setitem__(live, account_id, account_backend)
        if live not in BackendDict._instances:
            BackendDict._instances.append(live)


# -- save / load one service ------------------------------------------------------------------
def _service(name: str) -> Any:
    from localstack.services.plugins import SERVICE_PLUGINS

    return SERVICE_PLUGINS.get_service(name)


def save_service(root: Path, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    service = _service(name)
    if service is None:
        return {"status": "absent"}
    staging = sf.new_staging_dir(root, name)
    try:
        service.lifecycle_hook.on_before_state_save()
        visitor = SaveVisitor(name, staging, getattr(service, "_provider", None))
        service.accept_state_visitor(visitor)
        service.lifecycle_hook.on_after_state_save()
        sf.commit_staging_dir(root, name, staging)
    except Exception:
        sf.discard_staging_dir(staging)
        raise
    return {
        "status": "saved",
        "files": visitor.files,
        "seconds": round(time.perf_counter() - started, 3),
    }


def load_service(root: Path, name: str) -> dict[str, Any]:
    from localstack.services.plugins import SERVICE_PLUGINS

    started = time.perf_counter()
    source = sf.find_service_snapshot(root, name)
    if source is None:
        return {"status": "no-snapshot"}
    service = SERVICE_PLUGINS.require(name)  # eager: start it now, before anyone calls it
    service.lifecycle_hook.on_before_state_load()
    provider = getattr(service, "_provider", None)
    visitor = LoadVisitor(name, source, provider)
    service.accept_state_visitor(visitor)
    service.lifecycle_hook.on_after_state_load()
    if name == "events" and visitor.loaded:
        rebuilt = events_restore.rebuild(provider)
        log_event(LOG, "events_rebuilt", **rebuilt)
    return {
        "status": "restored" if visitor.loaded else "empty",
        "files": visitor.loaded,
        "seconds": round(time.perf_counter() - started, 3),
    }


def save_all(reason: str) -> dict[str, Any]:
    """Save every running service (never one whose load failed). Returns the manifest section."""
    from localstack.services.plugins import SERVICE_PLUGINS

    root = state_dir()
    if root is None:
        return {}
    if not _loaded.is_set():
        LOG.error("evpm persistence: not saving (%s): the snapshots were never loaded in this "
                  "run, so saving would overwrite them with an empty state", reason)
        return {"reason": reason, "skipped": "snapshots never loaded in this run"}
    with _save_lock:
        started = time.perf_counter()
        wanted = _persist_filter()
        results: dict[str, Any] = {}
        for name in _ordered(SERVICE_PLUGINS.list_active_services()):
            if wanted is not None and name not in wanted:
                continue
            if name in _load_failed:
                results[name] = {"status": "skipped", "reason": "its load failed this run"}
                continue
            try:
                results[name] = save_service(root, name)
            except Exception as error:
                LOG.exception("evpm persistence: saving %s failed", name)
                results[name] = {"status": "failed", "error": repr(error)}
        section = {
            "reason": reason,
            "seconds": round(time.perf_counter() - started, 3),
            "services": results,
            "at": time.time(),
        }
        sf.update_manifest(root, "last_save", section)
    log_event(
        LOG, "evpm_snapshot_saved", reason=reason, seconds=section["seconds"],
        saved=sorted(k for k, v in results.items() if v.get("status") == "saved"),
        failed=sorted(k for k, v in results.items() if v.get("status") == "failed"),
    )
    return section


def load_all() -> dict[str, Any]:
    """Restore every service that has a snapshot. Returns the manifest section."""
    root = state_dir()
    if root is None:
        return {}
    started = time.perf_counter()
    wanted = _persist_filter()
    results: dict[str, Any] = {}
    for name in _ordered(sf.list_snapshotted_services(root)):
        if wanted is not None and name not in wanted:
            continue
        try:
            results[name] = load_service(root, name)
        except Exception as error:
            LOG.exception("evpm persistence: loading %s failed", name)
            _load_failed.add(name)
            results[name] = {"status": "failed", "error": repr(error)}
    section = {
        "seconds": round(time.perf_counter() - started, 3),
        "services": results,
        "at": time.time(),
    }
    sf.update_manifest(root, "last_load", section)
    log_event(
        LOG, "evpm_snapshot_loaded", seconds=section["seconds"],
        restored=sorted(k for k, v in results.items() if v.get("status") == "restored"),
        failed=sorted(k for k, v in results.items() if v.get("status") == "failed"),
    )
    return section


def _periodic_saver(interval: float) -> None:
    max_share = float(os.environ.get("EVPM_SNAPSHOT_MAX_SHARE", "0.1") or 0)
    wait = interval
    while not _stop_periodic.wait(wait):
        started = time.perf_counter()
        try:
            save_all("periodic")
        except Exception:
            LOG.exception("evpm persistence: periodic save failed")
        wait = sf.next_wait(interval, time.perf_counter() - started, max_share)


def ready_marker(root: Path) -> Path:
    return root / "run" / "ready.json"


# -- hooks ------------------------------------------------------------------------------------
@hooks.on_infra_ready(priority=100)
def load_on_ready() -> None:
    """Restore snapshots, start the periodic saver, then announce readiness to the ctl."""
    marker_root = os.environ.get("EVPM_STATE_DIR")
    root = state_dir()
    section: dict[str, Any] = {}
    # before any mapping worker is created (restored ones included)
    request_log.install()  # from here a summary line per minute, a line per failed request
    esm_pacing.install()
    esm_shards.install()
    gc_watch.install()
    sfn_callbacks.install()
    events_delivery.install()  # a failed EventBridge delivery: counted, logged, dead-lettered
    apigw_stage_update.install()  # a stack update moves the stage to the new deployment
    if os.environ.get("EVPM_CLOUDWATCH_METRICS", "1") != "0":
        metrics_sink.install()
        lambda_metrics.install()
        sqs_metrics.install()
    if os.environ.get("EVPM_CLOUDWATCH_STATS", "1") != "0":
        # after metrics_sink: it replaces one of the store reads the sink wrapped (and flushes)
        cloudwatch_stats.install()
    if root is not None:
        # Before the Lambda provider restores mappings, so they resume from their checkpoints.
        esm_checkpoints.install(root)
        try:
            if os.environ.get("EVPM_FAULT_INJECT") == "load":  # the persistence test's switch
                raise RuntimeError("fault injected (EVPM_FAULT_INJECT=load): no snapshot read")
            section = load_all()
            _loaded.set()
        except Exception:
            LOG.exception("evpm persistence: load failed")
        interval = float(os.environ.get("EVPM_SNAPSHOT_INTERVAL_SEC", "30") or 0)
        if interval > 0:
            threading.Thread(
                target=_periodic_saver, args=(interval,), name="evpm-snapshot", daemon=True
            ).start()
    if marker_root:
        sf.atomic_write_json(
            ready_marker(Path(marker_root)),
            {"pid": os.getpid(), "at": time.time(), "load": section},
        )


@hooks.on_infra_shutdown(priority=100)
def save_on_shutdown() -> None:
    """Final save, before the core's shutdown handlers and services stop (priority > 0)."""
    _stop_periodic.set()
    if (checkpoints := esm_checkpoints.store()) is not None:
        checkpoints.flush()
    metrics_sink.SINK.flush()  # metric data still queued goes into the final snapshot
    try:
        save_all("shutdown")
    except Exception:
        LOG.exception("evpm persistence: shutdown save failed")
