"""Property-based fuzzing of the estimators (hypothesis): random shapes, dtypes, NaN/inf, extreme values, constant
columns and random parameter values. Every case must either raise a clear error (ValueError or TypeError, before
training; TrainingDivergedError when training runs away) or end with finite predictions.

CI runs a bounded number of examples per estimator; ``SKLEARN_COSTS_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py``
runs a longer search.
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor, TrainingDivergedError, TripletEmbedder

EXAMPLES = int(os.environ.get("SKLEARN_COSTS_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="SKLEARN_COSTS_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, 0.0, 3e38]


@st.composite
def tables(draw, min_rows=1):
    n_rows = draw(st.integers(min_rows, 40))
    n_features = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n_rows, n_features)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    if draw(st.booleans()):  # a constant column
        X[:, draw(st.integers(0, n_features - 1))] = draw(st.sampled_from([0.0, 5.0, 1e6]))
    for _ in range(draw(st.integers(0, 2))):  # special values
        X[draw(st.integers(0, n_rows - 1)), draw(st.integers(0, n_features - 1))] = draw(st.sampled_from(SPECIAL))
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool", "object"]))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype in ("int64", "bool"):
            X = np.nan_to_num(X, nan=0, posinf=1e6, neginf=-1e6).clip(-1e6, 1e6).astype(dtype)
        else:
            X = X.astype(dtype)
    return X, rng


def common_params(draw):
    return {
        "hidden_layer_sizes": draw(st.sampled_from([(), (4,), (3, 3), 5])),
        "activation": draw(st.sampled_from(["relu", "tanh", "gelu"])),
        "dropout": draw(st.sampled_from([0.0, 0.3])),
        "max_epochs": draw(st.integers(1, 3)),
        "batch_size": draw(st.sampled_from(["auto", 1, 7, -1])),
        "lr": draw(st.sampled_from([1e-4, 1e-2, 1.0, 1e3])),
        "optimizer": draw(st.sampled_from(["adam", "adamw", "sgd", "rmsprop"])),
        "weight_decay": draw(st.sampled_from([0.0, 1e-2])),
        "early_stopping": draw(st.booleans()),
        "n_iter_no_change": draw(st.integers(1, 3)),
        "n_threads": 1,
        "random_state": 0,
    }


def run_case(make, X, y, X_new):
    """Fit and predict; a clear error is an acceptable answer, anything else must be finite."""
    try:
        model = make().fit(X, y)
    except (ValueError, TypeError, TrainingDivergedError) as error:
        assert str(error), "an error without a message"
        event(f"refused: {type(error).__name__}")
        return
    out = model.transform(X_new) if hasattr(model, "transform") else model.predict(X_new)
    assert np.isfinite(out).all(), f"non-finite output from {make()!r}"
    event("fitted, finite output")


@given(data=st.data())
@FUZZ
def test_gaussian_regressor_refuses_or_predicts_finite_values(data):
    X, rng = data.draw(tables())
    y = rng.normal(size=len(X)) * data.draw(st.sampled_from([1e-6, 1.0, 1e6, 1e30]))
    if data.draw(st.booleans()):
        y[data.draw(st.integers(0, len(y) - 1))] = data.draw(st.sampled_from(SPECIAL))
    if data.draw(st.booleans()):
        y = np.column_stack([y, rng.normal(size=len(y))])
    params = {**common_params(data.draw), "loss": data.draw(st.sampled_from(
        ["gaussian", "laplace", "student_t", "beta_nll", "mse"])),
        "min_std": data.draw(st.sampled_from([1e-6, 1e-3, 1.0]))}
    run_case(lambda: GaussianUncertaintyRegressor(**params), X, y, X)


@given(data=st.data())
@FUZZ
def test_poisson_regressor_refuses_or_predicts_finite_rates(data):
    X, rng = data.draw(tables())
    n_neurons = data.draw(st.integers(1, 3))
    y = rng.poisson(data.draw(st.sampled_from([0.0, 0.1, 5.0, 1e4])), size=(len(X), n_neurons)).astype(
        data.draw(st.sampled_from(["int64", "uint8", "float64"])), copy=False)
    if data.draw(st.booleans()):
        y = y.astype(np.float64)
        y[data.draw(st.integers(0, len(y) - 1)), 0] = data.draw(st.sampled_from([-1.0, 0.5, np.nan, np.inf, 1e30]))
    params = {**common_params(data.draw), "loss": data.draw(st.sampled_from(
        ["poisson", "negative_binomial", "zero_inflated_poisson", "mse"]))}
    run_case(lambda: PoissonSpikeRegressor(**params), X, y, X)


@given(data=st.data())
@FUZZ
def test_triplet_embedder_refuses_or_embeds_finite_values(data):
    X, rng = data.draw(tables(min_rows=2))
    if data.draw(st.booleans()) and X.dtype != object:  # images instead of a table
        side = data.draw(st.integers(1, 12))
        X = rng.normal(size=(len(X), side, data.draw(st.integers(1, 12)))).astype(np.float32)
        if data.draw(st.booleans()):
            X[0, 0, 0] = data.draw(st.sampled_from(SPECIAL))
    y = rng.integers(0, data.draw(st.integers(1, 5)), size=len(X))
    if data.draw(st.booleans()):
        y = np.array(["ann", "bob", "cy", "dee", "eve"])[y]
    params = {**common_params(data.draw), "loss": data.draw(st.sampled_from(
        ["triplet", "soft_margin_triplet", "contrastive"])),
        "embedding_dim": data.draw(st.integers(1, 4)), "n_members": data.draw(st.sampled_from(["auto", 1, 2])),
        "miner": data.draw(st.sampled_from(["auto", "semi_hard", "batch_hard", "all"])),
        "margin": data.draw(st.sampled_from([0.01, 0.2, 5.0])),
        "images_per_identity": data.draw(st.integers(2, 5)), "max_epochs": data.draw(st.integers(1, 2))}
    run_case(lambda: TripletEmbedder(**params), X, y, X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_the_fuzzers_reach_refusals(bad):
    """The property above is not vacuous: special values are refused before training, with a message."""
    X = np.zeros((10, 2))
    X[3, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        GaussianUncertaintyRegressor(max_epochs=1).fit(X, np.arange(10.0))
