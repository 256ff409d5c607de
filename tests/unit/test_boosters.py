"""LightGBM's single-row path gives the booster's own numbers, bit for bit."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pytest

from evpm.boosters import RowPredictor, row_predictor

PARAMS = {"verbose": -1, "num_threads": 1, "deterministic": True, "min_data_in_leaf": 3}


def _data(rows: int = 600, cols: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)) * rng.choice([1e-3, 1.0, 1e3], size=cols)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values go down each split's default side
    x[rng.random(x.shape) < 0.05] = 0.0  # zeros are a case of their own in LightGBM
    y = np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) ** 2 + rng.normal(0, 0.1, size=rows)
    return x, y


def _probe(cols: int, seed: int = 1) -> np.ndarray:
    """Rows unlike the training ones: NaN, zeros, infinities, huge and tiny values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, cols)) * rng.choice([1e-6, 1.0, 1e6], size=(2000, cols))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.10] = 0.0
    x[rng.random(x.shape) < 0.01] = np.inf
    x[rng.random(x.shape) < 0.01] = -np.inf
    x[0] = np.nan  # a row with nothing known
    return x


@pytest.fixture(scope="module")
def boosters() -> dict[str, lgb.Booster]:
    x, y = _data()
    classes = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    multi = {**PARAMS, "objective": "multiclass", "num_class": 4}
    out = {
        "regression": lgb.train({**PARAMS, "objective": "regression"}, lgb.Dataset(x, y), 40),
        "binary": lgb.train({**PARAMS, "objective": "binary"}, lgb.Dataset(x, y > 0), 30),
        "multiclass": lgb.train(multi, lgb.Dataset(x, classes), 25),
    }
    # As the training job loads it back: from the registered text, not the training object.
    return {k: lgb.Booster(model_str=b.model_to_string()) for k, b in out.items()}


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("raw_score", [False, True])
def test_every_row_equals_booster_predict_bit_for_bit(
    boosters: dict[str, lgb.Booster], kind: str, raw_score: bool
) -> None:
    booster = boosters[kind]
    x = _probe(booster.num_feature())
    expected = booster.predict(x, raw_score=raw_score, num_threads=1)
    got = RowPredictor(booster, raw_score=raw_score).predict(x)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)  # not allclose: the same trees, summed the same way


def test_multiclass_gives_probabilities_that_are_the_softmax_of_the_raw_scores(
    boosters: dict[str, lgb.Booster],
) -> None:
    booster = boosters["multiclass"]
    x = _probe(booster.num_feature())[:50]
    proba = RowPredictor(booster).predict(x)
    raw = RowPredictor(booster, raw_score=True).predict(x)
    assert proba.shape == (50, 4)
    soft = np.exp(raw - raw.max(axis=1, keepdims=True))
    assert np.allclose(proba, soft / soft.sum(axis=1, keepdims=True), rtol=1e-12, atol=0)


def test_one_row_alone_equals_the_same_row_in_a_batch(boosters: dict[str, lgb.Booster]) -> None:
    booster = boosters["regression"]
    x = _probe(booster.num_feature())[:20]
    fast = RowPredictor(booster)
    together = booster.predict(x, num_threads=1)
    assert [fast.predict(x[i : i + 1])[0] for i in range(20)] == together.tolist()


def test_the_best_iteration_is_used_as_booster_predict_does() -> None:
    x, y = _data(seed=3)
    train, valid = lgb.Dataset(x[:400], y[:400]), lgb.Dataset(x[400:], y[400:])
    booster = lgb.train(
        {**PARAMS, "objective": "regression"},
        train,
        200,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # keeps the trees after the best iteration
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    probe = _probe(x.shape[1])
    assert np.array_equal(RowPredictor(booster).predict(probe), booster.predict(probe))


def test_threads_sharing_one_predictor_get_their_own_rows(boosters: dict[str, lgb.Booster]) -> None:
    booster = boosters["multiclass"]
    x = _probe(booster.num_feature())
    expected = booster.predict(x, num_threads=1)
    fast = RowPredictor(booster)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = fast.predict(x[k::4])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert np.array_equal(results[k], expected[k::4])


def test_wrong_width_is_refused(boosters: dict[str, lgb.Booster]) -> None:
    fast = RowPredictor(boosters["regression"])
    with pytest.raises(ValueError, match=r"\(n, 12\)"):
        fast.predict(np.zeros((1, 11)))


def test_no_rows_give_no_predictions(boosters: dict[str, lgb.Booster]) -> None:
    assert RowPredictor(boosters["regression"]).predict(np.zeros((0, 12))).shape == (0,)
    assert RowPredictor(boosters["multiclass"]).predict(np.zeros((0, 12))).shape == (0, 4)


def test_what_is_not_a_booster_gets_no_fast_path() -> None:
    assert row_predictor(object()) is None
