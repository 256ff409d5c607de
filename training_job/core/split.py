"""Split by unit AND by time, so no row of a test unit or of a later period trains a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "split_units_time"]


@dataclass(frozen=True, slots=True)
class Split:
    """Boolean row masks. ``valid`` (training units, the last ``valid_share`` of the training
    period) drives early stopping; ``test`` is test units after the cutoff. Test units before
    the cutoff and training units after it are in no mask: they only provide the past for
    rolling features, never a training row."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    test_units: np.ndarray
    cutoff: object


def split_units_time(
    units: np.ndarray,
    times: np.ndarray,
    *,
    test_units: float,
    time_cutoff: float,
    seed: int,
    valid_share: float = 0.15,
) -> Split:
    """Draw ``test_units`` of the units (seeded) and cut time at the ``time_cutoff`` quantile."""
    names = np.unique(units)
    rng = np.random.default_rng(seed)
    n_test = max(1, round(len(names) * test_units))
    held = np.sort(rng.choice(names, size=n_test, replace=False))
    is_test_unit = np.isin(units, held)
    numeric = times.astype("int64") if times.dtype.kind == "M" else np.asarray(times, float)
    cutoff = np.quantile(numeric, time_cutoff)
    start = numeric.min()
    valid_from = cutoff - valid_share * (cutoff - start)
    later = numeric >= cutoff
    return Split(
        train=~is_test_unit & (numeric < valid_from),
        valid=~is_test_unit & (numeric >= valid_from) & ~later,
        test=is_test_unit & later,
        test_units=held,
        cutoff=cutoff,
    )
