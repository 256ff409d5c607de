"""Fallbacks that keep serving are counted and logged: a slower booster, a stale model set."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from evpm import boosters
from evpm.counters import BOOSTER_FALLBACK, MODEL_LOAD_FAILURES, drain, snapshot
from evpm.models import ModelBundle
from evpm.serving import PinnedModels, ServedModels
from evpm_aws.serving import served_now
from tests.unit.serving_models import bundles


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    """The counts are process-wide: each test starts and leaves them at zero."""
    drain()
    yield
    drain()


@pytest.fixture(scope="module")
def served() -> ServedModels:
    return ServedModels(
        versions={"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}, bundles=bundles()
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


# --- the booster's single-row fast path --------------------------------------------------


def test_a_booster_fallback_is_counted_each_time_and_logged_once_per_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN something LightGBM cannot give a fast path to, loaded three times as one model
    name = f"ev-rul-{uuid.uuid4().hex[:6]}"  # the once-per-model memory is process-wide
    caplog.set_level(logging.WARNING, logger="evpm.boosters")
    # WHEN the fast path is set up for it each time
    got = [boosters.row_predictor(object(), name=name) for _ in range(3)]
    # THEN each falls back and is counted, and one warning names the model and the reason
    assert got == [None, None, None]
    assert snapshot() == {BOOSTER_FALLBACK: 3}
    (record,) = _records(caplog, "evpm.boosters")
    assert record.levelno == logging.WARNING
    assert record.model == name
    assert record.reason.startswith("AttributeError")  # object() has no booster handle
    assert name in record.getMessage() and record.reason in record.getMessage()


def test_a_bundle_whose_fast_path_fails_names_its_model_and_still_predicts(
    served: ServedModels, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a LightGBM whose private single-row API refuses to set up
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"no fast path {uuid.uuid4().hex[:6]}")  # a reason not seen before

    monkeypatch.setattr(boosters, "RowPredictor", refuse)
    caplog.set_level(logging.WARNING, logger="evpm.boosters")
    loaded = served.bundles["ev-rul"]
    # WHEN the model is loaded
    bundle = ModelBundle(loaded.spec, loaded.model)
    # THEN the fallback is counted and logged under the model's name
    assert snapshot() == {BOOSTER_FALLBACK: 1}
    (record,) = _records(caplog, "evpm.boosters")
    assert record.model == loaded.spec.name
    assert record.reason.startswith("RuntimeError: no fast path")
    # AND a single row still gets the booster's own number, by the slow path
    matrix = np.random.default_rng(0).normal(size=(1, len(loaded.spec.used_features)))
    assert np.array_equal(bundle.predict_matrix(matrix).value, loaded.predict_matrix(matrix).value)


# --- a pinned version that does not load --------------------------------------------------


def test_a_failed_load_is_counted_and_logged_naming_the_stale_versions(
    served: ServedModels, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN ev-rul 1 serving, then ev-rul 2 pinned but its artifact missing
    pins = {"ev-rul": 1, "ev-classifier": 1}

    def load(name: str, version: int) -> ModelBundle:
        if version == 2:
            raise OSError("artifact missing")
        return served.bundles[name]

    clock = _Clock()
    pinned = PinnedModels(lambda: dict(pins), load, ttl=1, clock=clock)
    first = pinned.current()
    assert not pinned.stale and pinned.failed_pins == {} and snapshot() == {}
    caplog.set_level(logging.WARNING, logger="evpm.serving")
    pins["ev-rul"] = 2
    # WHEN two refreshes fail and requests come in between
    clock.now = 1
    assert pinned.current() is first
    assert pinned.current() is first  # within the TTL: no new attempt, nothing new logged
    clock.now = 2
    assert pinned.current() is first
    # THEN the old set keeps serving and each failed refresh is counted and logged once
    assert snapshot() == {MODEL_LOAD_FAILURES: 2}
    assert pinned.stale and pinned.failed_refreshes == 2
    assert pinned.failed_pins == {"ev-rul": 2}
    assert pinned.last_error == "OSError: artifact missing"
    records = _records(caplog, "evpm.serving")
    assert len(records) == 2
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.error == "OSError: artifact missing"
    assert record.failed_pins == {"ev-rul": 2}
    assert record.serving_versions == {"ev-rul": 1, "ev-classifier": 1}
    assert record.stale is True
    message = record.getMessage()
    assert "'ev-rul': 2" in message and "'ev-rul': 1" in message and "artifact missing" in message
    # AND once the pin is back on a version that loads, the failure is cleared
    pins["ev-rul"] = 1
    clock.now = 3
    assert pinned.current() is first
    assert not pinned.stale and pinned.failed_pins == {} and pinned.last_error is None


def test_unreadable_pins_are_counted_and_logged_with_no_failed_version(
    served: ServedModels, caplog: pytest.LogCaptureFixture
) -> None:
    state = {"fail": False}

    def read() -> dict[str, int]:
        if state["fail"]:
            raise RuntimeError("SSM throttled")
        return {"ev-rul": 1}

    clock = _Clock()
    pinned = PinnedModels(read, lambda n, v: served.bundles[n], ttl=1, clock=clock)
    pinned.current()
    caplog.set_level(logging.WARNING, logger="evpm.serving")
    state["fail"] = True
    clock.now = 2
    assert pinned.current().versions == {"ev-rul": 1}
    assert snapshot() == {MODEL_LOAD_FAILURES: 1}
    assert pinned.stale and pinned.failed_pins == {}
    (record,) = _records(caplog, "evpm.serving")
    assert record.failed_pins == {} and record.serving_versions == {"ev-rul": 1}
    assert "pins unreadable" in record.getMessage() and "SSM throttled" in record.getMessage()


def test_a_first_load_that_fails_says_no_models_serve(caplog: pytest.LogCaptureFixture) -> None:
    def load(name: str, version: int) -> ModelBundle:
        raise OSError("registry down")

    caplog.set_level(logging.WARNING, logger="evpm.serving")
    pinned = PinnedModels(lambda: {"ev-rul": 4}, load, ttl=1, clock=_Clock())
    assert pinned.current().versions == {}
    (record,) = _records(caplog, "evpm.serving")
    assert record.failed_pins == {"ev-rul": 4} and record.serving_versions == {}
    assert "no models" in record.getMessage()


def test_the_handler_logs_the_stale_models_once_per_failed_refresh(
    served: ServedModels, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler's logger and pinned models whose new version does not load
    pins = {"ev-rul": 1}

    def load(name: str, version: int) -> ModelBundle:
        if version == 2:
            raise OSError("artifact missing")
        return served.bundles[name]

    clock = _Clock()
    pinned = PinnedModels(lambda: dict(pins), load, ttl=1, clock=clock)
    handler_logger = logging.getLogger("evpm-test-handler")
    caplog.set_level(logging.WARNING, logger=handler_logger.name)
    served_now(pinned, handler_logger)
    pins["ev-rul"] = 2
    clock.now = 1
    # WHEN three requests come in, the first of them refreshing
    versions = [served_now(pinned, handler_logger).versions for _ in range(3)]
    # THEN all three get the stale models and one warning says which, and why
    assert versions == [{"ev-rul": 1}] * 3
    (record,) = _records(caplog, handler_logger.name)
    assert record.error == "OSError: artifact missing"
    assert record.failed_pins == {"ev-rul": 2}
    assert record.serving_versions == {"ev-rul": 1}
    assert record.stale is True
