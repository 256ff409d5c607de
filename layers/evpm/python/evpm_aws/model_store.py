"""Where served models come from: pins in SSM, versions in the MLflow registry, files in S3.

A version's ``source`` is the S3 folder MLflow logged the model to; its ``artifacts/`` folder
holds the two files of :class:`evpm.models.ModelBundle`. Downloads are cached under ``/tmp``
by source, so a warm container that re-reads the same pins never downloads again.

A cold container needs every pinned version at once: :meth:`BundleLoader.prefetch` fetches
them together (registry look-ups and downloads overlap) while LightGBM is imported, so the
loads that follow read local files. That is most of a cold start's first invocation.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from evpm.mlflow_rest import MlflowRegistry
from evpm.models import ModelBundle, ModelSpec
from evpm.pins import MLFLOW_URI_PARAMETER, PINS_PARAMETER, TASK_OF, dump_pins, parse_pins

__all__ = ["BundleLoader", "SsmPinStore", "mlflow_uri", "split_s3"]

_log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` → ``("bucket", "key/prefix")``."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// location: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class SsmPinStore:
    """The serving pins as one SSM String parameter (JSON); ``{}`` while it does not exist."""

    def __init__(self, ssm: Any, name: str = PINS_PARAMETER) -> None:
        self.ssm, self.name = ssm, name

    def read(self) -> dict[str, int]:
        try:
            return parse_pins(self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"])
        except self.ssm.exceptions.ParameterNotFound:
            return {}

    def write(self, pins: dict[str, int]) -> None:
        self.ssm.put_parameter(Name=self.name, Value=dump_pins(pins), Type="String", Overwrite=True)


def mlflow_uri(ssm: Any, parameter: str = MLFLOW_URI_PARAMETER) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SSM parameter ``evpm up`` writes."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return ssm.get_parameter(Name=parameter)["Parameter"]["Value"]


class BundleLoader:
    """Load one registered version's bundle: registry → S3 source → files → bundle."""

    def __init__(
        self,
        registry: MlflowRegistry | Callable[[], MlflowRegistry],
        s3: Any,
        cache_dir: Path | None = None,
    ) -> None:
        self._registry = registry
        self._s3 = s3
        # Lambda's only writable place is /tmp; TMPDIR moves it (the emulator's state folder).
        self._cache = cache_dir or Path(tempfile.gettempdir()) / "evpm-models"
        self._prefetched: dict[str, int] = {}
        self._sources: dict[tuple[str, int], str] = {}

    @property
    def registry(self) -> MlflowRegistry:
        if not hasattr(self._registry, "version"):  # a factory, built on first use
            self._registry = self._registry()
        return self._registry

    def source(self, name: str, version: int) -> str:
        """The S3 folder of a version's logged model."""
        return str(self.registry.version(name, version)["source"])

    def __call__(self, name: str, version: int) -> ModelBundle:
        source = self._sources.pop((name, int(version)), None) or self.source(name, version)
        return self.load_source(source)

    def load_source(self, source: str) -> ModelBundle:
        """The bundle logged at ``source`` (an ``s3://`` model folder)."""
        folder = self.fetch(source)
        spec_path = folder / "spec.json"
        spec = ModelSpec.model_validate_json(spec_path.read_text())
        return ModelBundle.from_files(spec_path, folder / ModelBundle.model_filename(spec.task))

    def fetch(self, source: str) -> Path:
        """The local folder of ``source``'s two files, downloaded unless already there."""
        # Keyed by the source, not the version number: two registries never share a file.
        folder = self._cache / hashlib.sha256(source.encode()).hexdigest()[:24]
        spec_path = folder / "spec.json"
        if not spec_path.exists():
            bucket, prefix = split_s3(source)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / "spec.json.part"
            self._download(bucket, f"{prefix}/artifacts/spec.json", tmp)
            spec = ModelSpec.model_validate_json(tmp.read_text())
            model_file = ModelBundle.model_filename(spec.task)
            self._download(bucket, f"{prefix}/artifacts/{model_file}", folder / model_file)
            tmp.rename(spec_path)  # the spec appears last: a half download is never used
        return folder

    def _download(self, bucket: str, key: str, path: Path) -> None:
        # One GetObject, streamed: the transfer manager's download_file adds a HeadObject and
        # a thread pool per file, which small model files do not need.
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        with path.open("wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)

    def prefetch(self, pins: Mapping[str, int]) -> None:
        """Fetch the files of newly pinned versions together, ahead of their loads.

        Called with the pins each time they are read: only versions pinned since the last
        call do any work (a warm container's check stays a dict comparison). Their registry
        look-ups and downloads run concurrently while this thread imports LightGBM (which the
        boosters load with), so the network waits overlap each other and that import. Best
        effort: a version that cannot be fetched is left to its load, which reports why.
        """
        pins = {name: int(v) for name, v in pins.items() if name in TASK_OF}
        wanted = [(n, v) for n, v in pins.items() if self._prefetched.get(n) != v]
        self._prefetched = pins
        self._sources = {}
        if not wanted:
            return
        try:
            _ = self.registry  # built here once (it may read SSM), not by each worker
        except Exception:
            return
        with ThreadPoolExecutor(len(wanted), thread_name_prefix="evpm-prefetch") as pool:
            futures = {key: pool.submit(self._prefetch_one, *key) for key in wanted}
            if any(TASK_OF[name] != "anomaly" for name, _ in wanted):
                try:
                    importlib.import_module("lightgbm")
                except Exception:  # the booster's load reports it
                    _log.debug("lightgbm import failed during prefetch", exc_info=True)
            for key, future in futures.items():
                try:
                    self._sources[key] = future.result()
                except Exception as exc:
                    _log.info("prefetch of %s v%s failed (its load will retry): %s", *key, exc)

    def _prefetch_one(self, name: str, version: int) -> str:
        source = self.source(name, version)
        self.fetch(source)
        return source

    def artifact_bytes(self, source: str) -> int:
        """Bytes of everything logged under ``source`` (the whole model folder)."""
        bucket, prefix = split_s3(source)
        total = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            total += sum(obj["Size"] for obj in page.get("Contents", []))
        return total
