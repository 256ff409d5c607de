"""Where served models come from: pins in SSM, versions in the MLflow registry, files in S3.

A version's ``source`` is the S3 folder MLflow logged the model to; its ``artifacts/`` folder
holds the two files of :class:`evpm.models.ModelBundle`. Downloads are cached under ``/tmp``
by source, so a warm container that re-reads the same pins never downloads again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from evpm.mlflow_rest import MlflowRegistry
from evpm.models import ModelBundle, ModelSpec
from evpm.pins import MLFLOW_URI_PARAMETER, PINS_PARAMETER, dump_pins, parse_pins

__all__ = ["BundleLoader", "SsmPinStore", "mlflow_uri", "split_s3"]


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

    @property
    def registry(self) -> MlflowRegistry:
        if not isinstance(self._registry, MlflowRegistry):
            self._registry = self._registry()
        return self._registry

    def source(self, name: str, version: int) -> str:
        """The S3 folder of a version's logged model."""
        return str(self.registry.version(name, version)["source"])

    def __call__(self, name: str, version: int) -> ModelBundle:
        return self.load_source(self.source(name, version))

    def load_source(self, source: str) -> ModelBundle:
        """The bundle logged at ``source`` (an ``s3://`` model folder)."""
        # Keyed by the source, not the version number: two registries never share a file.
        folder = self._cache / hashlib.sha256(source.encode()).hexdigest()[:24]
        spec_path = folder / "spec.json"
        if not spec_path.exists():
            bucket, prefix = split_s3(source)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / "spec.json.part"
            self._s3.download_file(bucket, f"{prefix}/artifacts/spec.json", str(tmp))
            spec = ModelSpec.model_validate_json(tmp.read_text())
            model_file = ModelBundle.model_filename(spec.task)
            self._s3.download_file(
                bucket, f"{prefix}/artifacts/{model_file}", str(folder / model_file)
            )
            tmp.rename(spec_path)  # the spec appears last: a half download is never used
        spec = ModelSpec.model_validate_json(spec_path.read_text())
        return ModelBundle.from_files(spec_path, folder / ModelBundle.model_filename(spec.task))

    def artifact_bytes(self, source: str) -> int:
        """Bytes of everything logged under ``source`` (the whole model folder)."""
        bucket, prefix = split_s3(source)
        total = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            total += sum(obj["Size"] for obj in page.get("Contents", []))
        return total
