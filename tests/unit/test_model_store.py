"""The serving loader: pinned versions from the registry and S3, fetched together when pinned."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from evpm.models import ModelBundle
from evpm_aws.model_store import BundleLoader
from tests.unit import serving_models

BUCKET = "mlflow-artifacts"


class CountingRegistry:
    """``version()`` as MLflow answers it; counts calls, can refuse a model."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.refuse = refuse
        self._lock = threading.Lock()

    def version(self, name: str, version: int) -> dict[str, Any]:
        with self._lock:
            self.calls.append((name, int(version)))
        if name == self.refuse:
            raise RuntimeError(f"registry refuses {name}")
        return {"version": str(version), "source": f"s3://{BUCKET}/1/models/{name}-v{version}"}


def _bundle_files(bundle: ModelBundle) -> dict[str, str]:
    model = (
        bundle.model.to_json() if bundle.spec.task == "anomaly" else bundle.model.model_to_string()
    )
    return {
        "spec.json": bundle.spec.model_dump_json(),
        bundle.model_filename(bundle.spec.task): model,
    }


@pytest.fixture(scope="module")
def bundles() -> dict[str, ModelBundle]:
    return serving_models.bundles()


@pytest.fixture
def s3(aws_env: None, bundles: dict[str, ModelBundle]) -> Any:
    """A bucket holding versions 1 and 2 of the three models, as MLflow logs them."""
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for name, bundle in bundles.items():
            for version in (1, 2):
                for file, body in _bundle_files(bundle).items():
                    key = f"1/models/{name}-v{version}/artifacts/{file}"
                    client.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        yield client


def _empty_bucket(s3: Any) -> None:
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def _same_predictions(a: ModelBundle, b: ModelBundle) -> None:
    ids, times, values = serving_models.readings(vehicles=2, hours=20)
    cols = [list(serving_models.FEATURES).index(s) for s in a.spec.features.signals]
    pa = a.predict(values[:, cols], np.asarray(ids), times)
    pb = b.predict(values[:, cols], np.asarray(ids), times)
    np.testing.assert_array_equal(pa.value, pb.value)


def test_a_load_downloads_the_version_and_gives_the_logged_model(s3, bundles, tmp_path: Path):
    # GIVEN a loader with nothing cached
    registry = CountingRegistry()
    loader = BundleLoader(registry, s3, cache_dir=tmp_path)
    # WHEN a version is loaded without a prefetch
    loaded = loader("ev-rul", 1)
    # THEN it asked the registry once and scores as the logged model does
    assert registry.calls == [("ev-rul", 1)]
    _same_predictions(loaded, bundles["ev-rul"])


def test_prefetch_fetches_every_pinned_version_so_the_loads_read_local_files(
    s3, bundles, tmp_path: Path
):
    # GIVEN pins of the three models
    registry = CountingRegistry()
    loader = BundleLoader(registry, s3, cache_dir=tmp_path)
    pins = {"ev-anomaly": 1, "ev-classifier": 2, "ev-rul": 1}
    # WHEN they are prefetched, and the bucket is emptied before the loads
    loader.prefetch(pins)
    _empty_bucket(s3)
    loaded = {name: loader(name, version) for name, version in pins.items()}
    # THEN each version was looked up once in all, and the loads needed no download
    assert sorted(registry.calls) == sorted(pins.items())
    for name, bundle in loaded.items():
        _same_predictions(bundle, bundles[name])


def test_prefetch_of_unchanged_pins_does_nothing_and_a_new_pin_fetches_only_itself(
    s3, tmp_path: Path
):
    registry = CountingRegistry()
    loader = BundleLoader(registry, s3, cache_dir=tmp_path)
    loader.prefetch({"ev-anomaly": 1, "ev-rul": 1})
    registry.calls.clear()
    # WHEN the same pins are read again (a warm container's TTL check)
    loader.prefetch({"ev-anomaly": 1, "ev-rul": 1})
    # THEN nothing is asked
    assert registry.calls == []
    # WHEN one pin moves (and an unknown model name is pinned too)
    loader.prefetch({"ev-anomaly": 1, "ev-rul": 2, "not-a-model": 3})
    # THEN only the moved version is fetched
    assert registry.calls == [("ev-rul", 2)]


def test_a_version_that_cannot_be_prefetched_is_left_to_its_load(s3, tmp_path: Path):
    # GIVEN a registry that refuses one model
    registry = CountingRegistry(refuse="ev-classifier")
    loader = BundleLoader(registry, s3, cache_dir=tmp_path)
    # WHEN the pins are prefetched
    loader.prefetch({"ev-classifier": 1, "ev-rul": 1})  # does not raise
    # THEN the other model loads, and the refused one's load raises the registry's error
    assert loader("ev-rul", 1).spec.task == "rul"
    with pytest.raises(RuntimeError, match="refuses ev-classifier"):
        loader("ev-classifier", 1)
