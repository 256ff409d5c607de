"""The validation gate: may a freshly trained challenger replace the serving champion?

A pure function of evidence the training step gathered (the challenger's and the champion's
metrics on the same held-out rows, a profile of the training data, timings and canary outputs
of the challenger's artifact) and of a stated policy. Every check is reported, passed or not,
so the execution history shows why a version was promoted or refused, not just that it was.

The gate fails closed: a metric, count or measurement that is absent, ``None``, NaN or
infinite is a failed check that names what is missing, never a check skipped or a default
that happens to pass. Evidence that cannot be judged is evidence against promotion: a
challenger reaches serving only on numbers someone measured. The one exception is the first
model of a name, which has no champion to compare with; its ``vs_champion`` check passes and
says so in its detail ("no champion: first model of this name, comparison skipped"), and every
other check still applies to it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NO_CHAMPION",
    "PRIMARY_METRIC",
    "Check",
    "GateEvidence",
    "GatePolicy",
    "GateReport",
    "ModelEvidence",
    "evaluate",
]

Task = Literal["anomaly", "classifier", "rul"]
PRIMARY_METRIC: dict[str, tuple[str, Literal["higher", "lower"]]] = {
    "anomaly": ("pr_auc", "higher"),
    "classifier": ("macro_f1", "higher"),
    "rul": ("rmse", "lower"),
}
"""Each task's primary metric on the held-out rows and which direction is better."""

NO_CHAMPION = "no champion: first model of this name, comparison skipped"
"""The ``vs_champion`` detail of the gate's one stated exception (it passes)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatePolicy(_Frozen):
    """The stated tolerances, floors and budgets (defaults are evpm's policy for the fleet)."""

    tolerance: dict[str, float] = {"anomaly": 0.02, "classifier": 0.02, "rul": 0.03}
    """How much worse than the champion a challenger may be: absolute for PR-AUC and
    macro-F1, relative for RMSE (0.03 = 3 % higher RMSE)."""
    min_pr_auc_lift: float = 3.0
    """Anomaly floor: PR-AUC at least this many times the prevalence (a random score's)."""
    min_macro_f1_over_majority: float = 0.2
    """Classifier floor: macro-F1 at least this far above always predicting the majority."""
    max_rmse_ratio: float = 0.8
    """RUL floor: RMSE at most this fraction of predicting the training mean."""
    max_missing_fraction: float = 0.01
    max_out_of_range_fraction: float = 0.001
    min_minority_share: float = 0.005
    """Every class of the label must be at least this share of the training rows."""
    max_latency_ms: float = 10.0
    """p99 of one-vehicle prediction (features from its held history, then the model), per
    model. The p99, not the median, because the slow calls are the ones a scorer batch and an
    API caller wait for. The worker times it in the predicting thread's CPU time after a
    warm-up, so a busy training host's preemptions are not charged to the model; the budget
    is still loose against serving's own (about 0.6 ms p99 for all three models, ``make
    bench``). The p50 is reported beside it."""
    max_artifact_mb: float = 50.0


class ModelEvidence(_Frozen):
    """What the training step measured for one challenger model.

    The measurements may be absent here so that a missing one reaches the gate and is refused
    with its name in the report, instead of failing validation with no verdict recorded.
    """

    name: str
    task: Task
    metrics: dict[str, float]
    champion_version: int | None = None
    champion_metrics: dict[str, float] | None = None
    latency_ms_p99: float | None = None
    latency_ms_p50: float | None = None
    artifact_bytes: int | None = Field(None, ge=0)
    canary: dict[str, Any] = {}
    """Canary outputs: ``min``/``max`` of the predictions, ``finite`` (all numbers finite),
    ``proba_sum_error`` (classifier: max |Σp - 1|), ``rows`` (how many were predicted)."""


class GateEvidence(_Frozen):
    """Everything the gate judges: the models and their training data's profile."""

    models: list[ModelEvidence] = Field(min_length=1)
    data_profile: dict[str, Any]


class Check(_Frozen):
    """One verdict with the numbers behind it."""

    model: str
    check: str
    passed: bool
    detail: str


class GateReport(_Frozen):
    """The gate's decision; ``reason`` lists the failed checks (empty when passed)."""

    passed: bool
    reason: str
    checks: list[Check]
    policy: GatePolicy


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything that is not a measured number.

    None, NaN, infinities, booleans and strings all count as "not measured": each comparison
    below would otherwise turn them into a pass (``nan > limit`` is False) or a crash.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _vs_champion(model: ModelEvidence, policy: GatePolicy) -> Check:
    metric, direction = PRIMARY_METRIC[model.task]

    def verdict(passed: bool, detail: str) -> Check:
        return Check(model=model.name, check="vs_champion", passed=passed, detail=detail)

    mine = _number(model.metrics.get(metric))
    if mine is None:
        return verdict(False, f"challenger has no finite {metric}")
    version, theirs_all = model.champion_version, model.champion_metrics
    if version is None and theirs_all is None:
        return verdict(True, f"{NO_CHAMPION}; {metric}={mine:.4f}")
    if version is None:
        return verdict(False, f"champion metrics given without a champion version ({metric})")
    if theirs_all is None:
        return verdict(False, f"champion v{version} has no metrics on the held-out rows")
    theirs = _number(theirs_all.get(metric))
    if theirs is None:
        return verdict(False, f"champion v{version} has no finite {metric}")
    tol = policy.tolerance.get(model.task, 0.0)
    if direction == "higher":
        limit = theirs - tol
        ok = mine >= limit
        bound = "min"
    else:
        limit = theirs * (1.0 + tol)
        ok = mine <= limit
        bound = "max"
    return verdict(
        ok, f"{metric} {mine:.4f} vs champion v{version} {theirs:.4f} ({bound} {limit:.4f})"
    )


def _floor(model: ModelEvidence, policy: GatePolicy) -> Check:
    def verdict(passed: bool, detail: str) -> Check:
        return Check(model=model.name, check="floor", passed=passed, detail=detail)

    def absent(*keys: str) -> Check | None:
        lacking = [k for k in keys if _number(model.metrics.get(k)) is None]
        return verdict(False, f"no finite {', '.join(lacking)}") if lacking else None

    m = model.metrics
    if model.task == "anomaly":
        if missing := absent("pr_auc", "prevalence"):
            return missing
        pr, prev = float(m["pr_auc"]), float(m["prevalence"])
        if prev <= 0:
            return verdict(False, f"prevalence {prev}: no labelled anomalies to judge pr_auc by")
        need = policy.min_pr_auc_lift * prev
        return verdict(
            pr >= need,
            f"pr_auc {pr:.4f} vs floor {need:.4f} ({policy.min_pr_auc_lift}x prevalence {prev:.4f})",
        )
    if model.task == "classifier":
        if missing := absent("macro_f1", "baseline_macro_f1"):
            return missing
        f1, base = float(m["macro_f1"]), float(m["baseline_macro_f1"])
        need = base + policy.min_macro_f1_over_majority
        return verdict(
            f1 >= need,
            f"macro_f1 {f1:.4f} vs floor {need:.4f} (majority {base:.4f} + {policy.min_macro_f1_over_majority})",
        )
    if missing := absent("rmse_ratio_to_baseline"):
        return missing
    ratio = float(m["rmse_ratio_to_baseline"])
    return verdict(
        ratio <= policy.max_rmse_ratio,
        f"rmse / mean-baseline rmse {ratio:.3f} vs max {policy.max_rmse_ratio}",
    )


def _latency(model: ModelEvidence, policy: GatePolicy) -> Check:
    p99 = _number(model.latency_ms_p99)
    if p99 is None or p99 < 0:
        return Check(
            model=model.name,
            check="latency",
            passed=False,
            detail=f"no p99 latency measurement (latency_ms_p99={model.latency_ms_p99})",
        )
    p50 = _number(model.latency_ms_p50)
    beside = f" (p50 {p50:.3f} ms)" if p50 is not None else ""
    return Check(
        model=model.name,
        check="latency",
        passed=p99 <= policy.max_latency_ms,
        detail=f"p99 {p99:.3f} ms vs budget {policy.max_latency_ms} ms{beside}",
    )


def _artifact_size(model: ModelEvidence, policy: GatePolicy) -> Check:
    size = model.artifact_bytes
    if size is None:
        return Check(
            model=model.name,
            check="artifact_size",
            passed=False,
            detail="no artifact size measurement (artifact_bytes)",
        )
    return Check(
        model=model.name,
        check="artifact_size",
        passed=size <= policy.max_artifact_mb * 2**20,
        detail=f"{size / 2**20:.2f} MiB vs budget {policy.max_artifact_mb} MiB",
    )


def _canary(model: ModelEvidence) -> Check:
    """Sane outputs on the reference rows; an output the worker did not report is a problem.

    ``finite`` must be literally True, and ``min``/``max`` must be finite numbers too, so a
    canary claiming finite outputs beside a NaN minimum is not believed.
    """
    canary = model.canary
    problems = []
    if not canary:
        problems.append("no canary outputs")
    else:
        if canary.get("finite") is not True:
            problems.append(
                "non-finite outputs" if canary.get("finite") is False else "no canary 'finite'"
            )
        low, high = _number(canary.get("min")), _number(canary.get("max"))
        problems += [f"no finite canary {k}" for k, v in (("min", low), ("max", high)) if v is None]
        if "rows" in canary and (_number(canary["rows"]) or 0) < 1:
            problems.append(f"no canary rows predicted (rows={canary['rows']})")
        if model.task == "rul" and low is not None and low < 0:
            problems.append(f"negative RUL ({low})")
        if model.task == "anomaly" and low is not None and low < 0:
            problems.append(f"negative anomaly score ({low})")
        if model.task == "classifier":
            error = _number(canary.get("proba_sum_error"))
            if error is None:
                problems.append("no finite canary proba_sum_error")
            elif error > 1e-6:
                problems.append(f"probabilities do not sum to 1 (error {error})")
    return Check(
        model=model.name,
        check="canary",
        passed=not problems,
        detail="; ".join(problems) or f"sane outputs on canary inputs {canary}",
    )


def _model_checks(model: ModelEvidence, policy: GatePolicy) -> list[Check]:
    return [_latency(model, policy), _artifact_size(model, policy), _canary(model)]


def _per_column(profile: dict[str, Any], key: str) -> tuple[dict[str, float], list[str]] | None:
    """The profile's ``key`` mapping as finite numbers, and the columns without one.

    None when the profile has no such mapping at all.
    """
    raw = profile.get(key)
    if not isinstance(raw, Mapping):
        return None
    values = {str(k): _number(v) for k, v in raw.items()}
    good = {k: v for k, v in values.items() if v is not None and v >= 0}
    return good, sorted(k for k in values if k not in good)


def _data_checks(profile: dict[str, Any], policy: GatePolicy) -> list[Check]:
    def verdict(check: str, passed: bool, detail: str) -> Check:
        return Check(model="*", check=check, passed=passed, detail=detail)

    rows = _number(profile.get("rows"))
    if rows is None:
        out = [verdict("data_rows", False, f"no row count (rows={profile.get('rows')})")]
    else:
        out = [verdict("data_rows", rows > 0, f"{rows:.0f} training rows")]

    missing = _per_column(profile, "missing")
    if missing is None or not (missing[0] or missing[1]):
        out.append(verdict("data_missing", False, "no per-column missing fractions (missing)"))
    elif missing[1]:
        out.append(verdict("data_missing", False, f"no missing fraction for {missing[1]}"))
    else:
        worst = max(missing[0].items(), key=lambda kv: kv[1])
        out.append(
            verdict(
                "data_missing",
                worst[1] <= policy.max_missing_fraction,
                f"worst missing fraction {worst[1]:.4f} ({worst[0]}) vs max {policy.max_missing_fraction}",
            )
        )

    # An empty mapping is a measurement: the dataset declares no ranges, so none is broken.
    oor = _per_column(profile, "out_of_range")
    if oor is None:
        out.append(verdict("data_ranges", False, "no out-of-range counts (out_of_range)"))
    elif oor[1]:
        out.append(verdict("data_ranges", False, f"no out-of-range count for {oor[1]}"))
    elif not oor[0]:
        out.append(verdict("data_ranges", True, "no column declares a range"))
    elif not rows:
        out.append(verdict("data_ranges", False, "out-of-range counts but no rows to judge by"))
    else:
        bad = {k: int(v) for k, v in oor[0].items() if v / rows > policy.max_out_of_range_fraction}
        detail = f"columns out of range: {bad}" if bad else "all columns within their ranges"
        out.append(verdict("data_ranges", not bad, detail))

    counts = _per_column(profile, "class_counts")
    total = sum(counts[0].values()) if counts else 0.0
    if counts is None:
        out.append(verdict("data_class_balance", False, "no class counts (class_counts)"))
    elif counts[1]:
        out.append(verdict("data_class_balance", False, f"no class count for {counts[1]}"))
    elif not total:
        out.append(verdict("data_class_balance", False, f"class_counts total 0: {counts[0]}"))
    else:
        share = {k: v / total for k, v in counts[0].items()}
        low = {k: round(v, 5) for k, v in share.items() if v < policy.min_minority_share}
        out.append(
            verdict(
                "data_class_balance",
                not low,
                f"classes below {policy.min_minority_share:.3%}: {low}"
                if low
                else f"{len(counts[0])} classes, smallest share {min(share.values()):.4f}",
            )
        )
    return out


def evaluate(evidence: GateEvidence, policy: GatePolicy | None = None) -> GateReport:
    """Judge the challenger; it passes only when every check passes.

    Example::

        report = evaluate(GateEvidence.model_validate(train_output))
        report.passed, report.reason
    """
    policy = policy or GatePolicy()
    checks = _data_checks(evidence.data_profile, policy)
    for model in evidence.models:
        checks += [
            _vs_champion(model, policy),
            _floor(model, policy),
            *_model_checks(model, policy),
        ]
    failed = [c for c in checks if not c.passed]
    reason = "; ".join(f"{c.model} {c.check}: {c.detail}" for c in failed)
    return GateReport(passed=not failed, reason=reason, checks=checks, policy=policy)
