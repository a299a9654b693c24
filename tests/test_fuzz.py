"""Property-based fuzzing of the estimators (hypothesis): random shapes, dtypes, NaN/inf, extreme values, constant
columns and random parameter values. Every case must either raise a clear error (ValueError or TypeError, before
training; TrainingDivergedError when training runs away) or end with finite predictions.

A state machine (hypothesis' ``RuleBasedStateMachine``) also draws sequences of calls on one estimator: fit,
partial_fit, set_params, predict, saving and loading (persistence and pickle), and calls that must be refused; a
refused call leaves the model as it was, and a loaded model predicts exactly as the one saved.

CI runs a bounded number of examples per estimator; ``SKLEARN_COSTS_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py``
runs a longer search. ``--hypothesis-show-statistics`` reports the cases tried and what each ended in.
"""

import io
import os
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sklearn_costs import (
    GaussianUncertaintyRegressor,
    PoissonSpikeRegressor,
    TrainingDivergedError,
    TripletEmbedder,
    persistence,
)

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
        ["triplet", "soft_margin_triplet", "contrastive", "multi_similarity", "proxy_anchor"])),
        "embedding_dim": data.draw(st.integers(1, 4)), "n_members": data.draw(st.sampled_from(["auto", 1, 2])),
        "miner": data.draw(st.sampled_from(["auto", "semi_hard", "batch_hard", "all", "multi_similarity"])),
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


# ------------------------------------------------------------------------------------------- call sequences

#: Parameters that a fitted model may be given between calls: none of them changes its predictions, and a warm
#: start or a partial_fit that continues refuses those that change the network (hidden_layer_sizes).
SAFE_PARAMETERS = [("lr", 1e-3), ("lr", 1e-2), ("max_epochs", 1), ("max_epochs", 2), ("weight_decay", 0.0),
                   ("weight_decay", 1e-2), ("batch_size", "auto"), ("batch_size", 8), ("early_stopping", True),
                   ("early_stopping", False), ("warm_start", True), ("warm_start", False),
                   ("hidden_layer_sizes", (4,)), ("hidden_layer_sizes", (3, 3))]
#: Refused calls: what is wrong with them, applied to valid ``(X, y, params)``.
BAD_CALLS = ["nan in X", "inf in y", "y of another length", "negative weight", "lr of 0", "a column more"]
PROBE_ROWS = 7


class EstimatorLifecycle(RuleBasedStateMachine):
    """One estimator through a drawn sequence of calls. After every step a fitted model predicts finite values of
    the shape of its ``y`` on a fixed probe table; steps that must not change it (set_params, predict, a refused
    call, a save and load) leave those predictions exactly as they were."""

    @initialize(kind=st.sampled_from(["gaussian", "poisson"]), n_features=st.integers(1, 3),
                two_targets=st.booleans())
    def start(self, kind, n_features, two_targets):
        make = GaussianUncertaintyRegressor if kind == "gaussian" else PoissonSpikeRegressor
        self.model = make(hidden_layer_sizes=(4,), max_epochs=2, n_threads=1, random_state=0)
        self.kind, self.n_features, self.n_targets = kind, n_features, 1 + two_targets
        self.predictions = None  # of the fitted model on the probe
        self.fitted_features = None
        self.steps = -1  # the invariant also runs once after this construction

    def _data(self, n_rows, seed, n_features):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n_rows, n_features))
        signal = X[:, :1] + 0.2 * np.arange(self.n_targets)
        if self.kind == "poisson":
            y = rng.poisson(np.exp(0.3 * signal))
        else:
            y = signal + 0.3 * rng.normal(size=signal.shape)
        return X, (y[:, 0] if self.n_targets == 1 else y).astype(np.float64)

    def _predict(self):
        """Predictions on the probe table (fixed rows, as many columns as the model was fitted on)."""
        return self.model.predict(np.random.default_rng(1).normal(size=(PROBE_ROWS, self.fitted_features)))

    def _unchanged(self):
        """The model predicts what it predicted before the step (or is still unfitted)."""
        if self.predictions is None:
            assert not hasattr(self.model, "net_")
        else:
            np.testing.assert_array_equal(self._predict(), self.predictions)

    def _train(self, method, X, y, weight):
        try:
            getattr(self.model, method)(X, y, sample_weight=weight)
        except (ValueError, TrainingDivergedError) as error:  # a warm start on other data or another network
            assert str(error)
            event(f"{method} refused: {type(error).__name__}")
            self._unchanged()
            return
        event(f"{method} trained")
        self.fitted_features = X.shape[1]
        self.predictions = self._predict()

    @rule(n_rows=st.integers(20, 40), seed=st.integers(0, 2**16), weighted=st.booleans(), more_features=st.booleans())
    def fit(self, n_rows, seed, weighted, more_features):
        X, y = self._data(n_rows, seed, self.n_features + more_features)
        weight = np.random.default_rng(seed).uniform(0.5, 2.0, n_rows) if weighted else None
        self._train("fit", X, y, weight)

    @rule(n_rows=st.integers(10, 30), seed=st.integers(0, 2**16), more_features=st.booleans())
    def partial_fit(self, n_rows, seed, more_features):
        X, y = self._data(n_rows, seed, self.n_features + more_features)
        self._train("partial_fit", X, y, None)

    @rule(parameter=st.sampled_from(SAFE_PARAMETERS))
    def set_params(self, parameter):
        name, value = parameter
        self.model.set_params(**{name: value})
        assert self.model.get_params()[name] == value
        self._unchanged()

    @rule(bad=st.sampled_from(BAD_CALLS), seed=st.integers(0, 2**16), method=st.sampled_from(["fit", "partial_fit"]))
    def refused_call(self, bad, seed, method):
        X, y = self._data(25, seed, self.fitted_features or self.n_features)
        weight, params = None, self.model.get_params()
        if bad == "nan in X":
            X[3, 0] = np.nan
        elif bad == "inf in y":
            y[4] = np.inf
        elif bad == "y of another length":
            y = y[:-1]
        elif bad == "negative weight":
            weight = np.ones(len(X))
            weight[2] = -1.0
        elif bad == "lr of 0":
            self.model.set_params(lr=0.0)
        else:  # a partial_fit that continues, or a warm start, on another number of columns
            if not (hasattr(self.model, "net_") and (method == "partial_fit" or params["warm_start"])):
                return
            X = np.column_stack([X, X[:, :1]])
        try:
            with pytest.raises((ValueError, TypeError)) as refusal:
                getattr(self.model, method)(X, y, sample_weight=weight)
        finally:
            self.model.set_params(lr=params["lr"])
        assert str(refusal.value)
        event(f"refused: {bad}")
        self._unchanged()

    @rule(how=st.sampled_from(["persistence", "pickle"]))
    def save_and_load(self, how):
        if how == "pickle":
            loaded = pickle.loads(pickle.dumps(self.model))
        else:
            buffer = io.BytesIO()
            persistence.dump(self.model, buffer)
            buffer.seek(0)
            loaded = persistence.load(buffer)
        assert loaded.get_params() == self.model.get_params()
        self.model = loaded  # later steps go on with the loaded model (a warm start, a partial_fit, ...)
        self._unchanged()
        event(f"loaded from {how}" + ("" if self.predictions is not None else " (unfitted)"))

    def teardown(self):
        event(f"a sequence of {self.steps} calls after the construction")

    @invariant()
    def predictions_are_finite_and_shaped_like_y(self):
        self.steps += 1
        if self.predictions is None:
            return
        prediction = self._predict()
        assert prediction.shape == ((PROBE_ROWS,) if self.n_targets == 1 else (PROBE_ROWS, self.n_targets))
        assert np.isfinite(prediction).all()
        np.testing.assert_array_equal(prediction, self.predictions)  # predict twice: the same values


EstimatorLifecycle.TestCase.settings = settings(
    max_examples=max(6, EXAMPLES // 2), stateful_step_count=10, deadline=None,
    derandomize="SKLEARN_COSTS_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TestCallSequences = pytest.mark.filterwarnings("ignore::UserWarning")(EstimatorLifecycle.TestCase)
