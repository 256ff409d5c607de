"""Live quality grades predictions with outcomes and compares them with the baseline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from evpm.drift.quality import QualityThresholds, live_quality, macro_f1


def test_macro_f1_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(["none", "brake_wear", "tire_leak"], 500)
    pred = np.where(rng.random(500) < 0.7, truth, rng.choice(["none", "thermal_risk"], 500))
    assert macro_f1(truth, pred) == pytest.approx(f1_score(truth, pred, average="macro"))


def _window(n: int, rul_error: float, labelled: int) -> dict:
    rng = np.random.default_rng(5)
    true_rul = rng.uniform(0, 700, n)
    truth = np.full(n, np.nan)
    truth[:labelled] = true_rul[:labelled]
    mode = np.array(["none"] * n, dtype=object)
    mode[labelled:] = None
    return {
        "rul_hours": true_rul + rng.normal(0, rul_error, n),
        "true_rul_hours": truth,
        "predicted_failure": np.array(["none"] * n, dtype=object),
        "true_failure_mode": mode,
    }


def test_quality_ok_then_degraded_then_insufficient() -> None:
    baseline = {"rul_mae": 40.0, "macro_f1": 0.9}
    ok = live_quality(_window(1_000, 45.0, 800), baseline)
    assert ok.status == "ok" and {m.name for m in ok.metrics} == {"rul_mae", "macro_f1"}
    bad = live_quality(_window(1_000, 120.0, 800), baseline)
    assert bad.degraded() == ["rul_mae"]
    rul = next(m for m in bad.metrics if m.name == "rul_mae")
    assert rul.limit == 60.0 and rul.live > 60 and rul.rows == 800
    few = live_quality(_window(1_000, 120.0, 50), baseline, QualityThresholds(min_labelled=100))
    assert few.status == "insufficient_data" and few.degraded() == []
