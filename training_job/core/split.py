"""Split by unit AND by time, so no row of a test unit or of a later period trains a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "split_units_time"]


@dataclass(frozen=True, slots=True)
class Split:
    """Boolean row masks. ``valid`` (other training units, same period as ``train``) drives
    early stopping; ``test`` is test units after the cutoff. Test units before the cutoff and
    training units after it are in no mask: they only provide the past for rolling features,
    never a training row.

    Validation rows come from units that are not trained on, so early stopping measures what
    the test measures, a model's grasp of vehicles it has never seen: validating on the later
    hours of the training vehicles rewarded memorising each vehicle (its odometer, its cycle
    count) and stopped far too late."""

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
    valid_share: float = 0.2,
) -> Split:
    """Draw ``test_units`` of the units (seeded) and cut time at the ``time_cutoff`` quantile;
    ``valid_share`` of the remaining units (at least one, when two or more remain) validate."""
    names = np.unique(units)
    rng = np.random.default_rng(seed)
    n_test = max(1, round(len(names) * test_units))
    held = np.sort(rng.choice(names, size=n_test, replace=False))
    rest = np.setdiff1d(names, held)
    n_valid = min(len(rest) - 1, max(1, round(len(rest) * valid_share))) if len(rest) > 1 else 0
    checking = rng.choice(rest, size=n_valid, replace=False) if n_valid else rest[:0]
    is_test_unit = np.isin(units, held)
    is_valid_unit = np.isin(units, checking)
    numeric = times.astype("int64") if times.dtype.kind == "M" else np.asarray(times, float)
    cutoff = np.quantile(numeric, time_cutoff)
    earlier = numeric < cutoff
    return Split(
        train=~is_test_unit & ~is_valid_unit & earlier,
        valid=is_valid_unit & earlier,
        test=is_test_unit & ~earlier,
        test_units=held,
        cutoff=cutoff,
    )
