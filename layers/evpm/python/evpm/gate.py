"""The validation gate: may a freshly trained challenger replace the serving champion?

A pure function of evidence the training step gathered (the challenger's and the champion's
metrics on the same held-out rows, a profile of the training data, timings and canary outputs
of the challenger's artifact) and of a stated policy. Every check is reported, passed or not,
so the execution history shows why a version was promoted or refused, not just that it was.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
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
    """Median of one-vehicle prediction (features from its held history, then the model), per
    model. The median, not the p99, because the training host may be busy with other work;
    the p99 is reported beside it, and serving speed has its own benchmark (make bench)."""
    max_artifact_mb: float = 50.0


class ModelEvidence(_Frozen):
    """What the training step measured for one challenger model."""

    name: str
    task: Task
    metrics: dict[str, float]
    champion_version: int | None = None
    champion_metrics: dict[str, float] | None = None
    latency_ms_p99: float
    latency_ms_p50: float | None = None
    artifact_bytes: int = Field(ge=0)
    canary: dict[str, Any] = {}
    """Canary outputs: ``min``/``max`` of the predictions, ``finite`` (all numbers finite),
    ``proba_sum_error`` (classifier: max |Σp - 1|)."""


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


def _primary(task: str, metrics: dict[str, float]) -> float | None:
    value = metrics.get(PRIMARY_METRIC[task][0])
    return None if value is None or not math.isfinite(value) else float(value)


def _vs_champion(model: ModelEvidence, policy: GatePolicy) -> Check:
    metric, direction = PRIMARY_METRIC[model.task]
    mine = _primary(model.task, model.metrics)
    if mine is None:
        return Check(
            model=model.name,
            check="vs_champion",
            passed=False,
            detail=f"challenger has no {metric}",
        )
    if model.champion_metrics is None or model.champion_version is None:
        return Check(
            model=model.name,
            check="vs_champion",
            passed=True,
            detail=f"no champion yet; {metric}={mine:.4f}",
        )
    theirs = _primary(model.task, model.champion_metrics)
    if theirs is None:
        return Check(
            model=model.name,
            check="vs_champion",
            passed=True,
            detail=f"champion v{model.champion_version} has no {metric}",
        )
    tol = policy.tolerance.get(model.task, 0.0)
    if direction == "higher":
        limit = theirs - tol
        ok = mine >= limit
        rule = f"{metric} {mine:.4f} vs champion v{model.champion_version} {theirs:.4f} (min {limit:.4f})"
    else:
        limit = theirs * (1.0 + tol)
        ok = mine <= limit
        rule = f"{metric} {mine:.4f} vs champion v{model.champion_version} {theirs:.4f} (max {limit:.4f})"
    return Check(model=model.name, check="vs_champion", passed=ok, detail=rule)


def _floor(model: ModelEvidence, policy: GatePolicy) -> Check:
    m = model.metrics
    if model.task == "anomaly":
        pr, prev = m.get("pr_auc"), m.get("prevalence")
        if pr is None or prev is None or prev <= 0:
            return Check(
                model=model.name,
                check="floor",
                passed=False,
                detail="no PR-AUC against labelled anomalies",
            )
        need = policy.min_pr_auc_lift * prev
        return Check(
            model=model.name,
            check="floor",
            passed=pr >= need,
            detail=f"pr_auc {pr:.4f} vs floor {need:.4f} ({policy.min_pr_auc_lift}x prevalence {prev:.4f})",
        )
    if model.task == "classifier":
        f1, base = m.get("macro_f1"), m.get("baseline_macro_f1")
        if f1 is None or base is None:
            return Check(model=model.name, check="floor", passed=False, detail="no macro_f1")
        need = base + policy.min_macro_f1_over_majority
        return Check(
            model=model.name,
            check="floor",
            passed=f1 >= need,
            detail=f"macro_f1 {f1:.4f} vs floor {need:.4f} (majority {base:.4f} + {policy.min_macro_f1_over_majority})",
        )
    ratio = m.get("rmse_ratio_to_baseline")
    if ratio is None or not math.isfinite(ratio):
        return Check(model=model.name, check="floor", passed=False, detail="no rmse ratio")
    return Check(
        model=model.name,
        check="floor",
        passed=ratio <= policy.max_rmse_ratio,
        detail=f"rmse / mean-baseline rmse {ratio:.3f} vs max {policy.max_rmse_ratio}",
    )


def _model_checks(model: ModelEvidence, policy: GatePolicy) -> list[Check]:
    p50 = model.latency_ms_p50 if model.latency_ms_p50 is not None else model.latency_ms_p99
    out = [
        Check(
            model=model.name,
            check="latency",
            passed=p50 <= policy.max_latency_ms,
            detail=f"p50 {p50:.3f} ms vs budget {policy.max_latency_ms} ms "
            f"(p99 {model.latency_ms_p99:.3f} ms)",
        ),
        Check(
            model=model.name,
            check="artifact_size",
            passed=model.artifact_bytes <= policy.max_artifact_mb * 2**20,
            detail=f"{model.artifact_bytes / 2**20:.2f} MiB vs budget {policy.max_artifact_mb} MiB",
        ),
    ]
    canary = model.canary
    problems = []
    if not canary.get("finite", False):
        problems.append("non-finite outputs")
    if model.task == "rul" and float(canary.get("min", -1.0)) < 0:
        problems.append(f"negative RUL ({canary.get('min')})")
    if model.task == "classifier" and float(canary.get("proba_sum_error", 1.0)) > 1e-6:
        problems.append(f"probabilities do not sum to 1 (error {canary.get('proba_sum_error')})")
    if model.task == "anomaly" and float(canary.get("min", -1.0)) < 0:
        problems.append(f"negative anomaly score ({canary.get('min')})")
    out.append(
        Check(
            model=model.name,
            check="canary",
            passed=not problems,
            detail="; ".join(problems) or f"sane outputs on canary inputs {canary}",
        )
    )
    return out


def _data_checks(profile: dict[str, Any], policy: GatePolicy) -> list[Check]:
    rows = int(profile.get("rows", 0))
    out = [Check(model="*", check="data_rows", passed=rows > 0, detail=f"{rows} training rows")]
    missing = {k: float(v) for k, v in (profile.get("missing") or {}).items()}
    worst = max(missing.items(), key=lambda kv: kv[1], default=("-", 0.0))
    out.append(
        Check(
            model="*",
            check="data_missing",
            passed=worst[1] <= policy.max_missing_fraction,
            detail=f"worst missing fraction {worst[1]:.4f} ({worst[0]}) vs max {policy.max_missing_fraction}",
        )
    )
    oor = {k: int(v) for k, v in (profile.get("out_of_range") or {}).items()}
    bad = {k: v for k, v in oor.items() if rows and v / rows > policy.max_out_of_range_fraction}
    out.append(
        Check(
            model="*",
            check="data_ranges",
            passed=not bad,
            detail=f"columns out of range: {bad}" if bad else "all columns within their ranges",
        )
    )
    counts = {k: int(v) for k, v in (profile.get("class_counts") or {}).items()}
    total = sum(counts.values())
    if total:
        share = {k: v / total for k, v in counts.items()}
        low = {k: round(v, 5) for k, v in share.items() if v < policy.min_minority_share}
        out.append(
            Check(
                model="*",
                check="data_class_balance",
                passed=not low,
                detail=f"classes below {policy.min_minority_share:.3%}: {low}"
                if low
                else f"{len(counts)} classes, smallest share {min(share.values()):.4f}",
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
