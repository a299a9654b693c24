"""Features crossed with each other (issue 29): every estimator x every input kind x every call path x every kind of
sample weight, checked for shapes, output names, and agreement between the ways of getting to the same model.

- input kinds: arrays; a DataFrame ``X`` with a one-column DataFrame ``y``; a DataFrame ``X`` with a Series ``y``;
  a pynapple ``TsdFrame`` ``X`` with a ``Tsd`` ``y``. The same numbers in each give the same predictions.
- call paths: ``fit``; two ``partial_fit`` calls; ``fit`` then a warm-started ``fit``; inside a Pipeline (after
  ``LagFeatures``, pandas output); loaded from a :mod:`sklearn_costs.persistence` file; unpickled. A loaded model
  predicts exactly as the one saved.
- weights: none; all ones (the same fit as none); zero on some rows.

Each model is fitted once, on first use, and shared by the cases that compare with it.
"""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

from sklearn_costs import (
    DeepEnsembleRegressor,
    GaussianUncertaintyRegressor,
    PoissonSpikeRegressor,
    TripletEmbedder,
    persistence,
)
from sklearn_costs.preprocessing import LagFeatures

nap = pytest.importorskip("pynapple", reason="pynapple is not installed (pip install 'sklearn-costs[neuro]')")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # tiny data: few epochs, no early stopping rows

N_ROWS = 60
FEATURES = ["speed", "lean", "depth"]
TARGET = "target"
TINY = {"hidden_layer_sizes": (4,), "max_epochs": 2, "n_threads": 1, "random_state": 0}

ESTIMATORS = {
    "poisson": lambda: PoissonSpikeRegressor(**TINY),
    "gaussian": lambda: GaussianUncertaintyRegressor(**TINY),
    "ensemble": lambda: DeepEnsembleRegressor(GaussianUncertaintyRegressor(**TINY), n_estimators=2, random_state=0),
    "triplet": lambda: TripletEmbedder(embedding_dim=2, n_members=1, **TINY),
}
REGRESSORS = ["poisson", "gaussian", "ensemble"]
KINDS = ["ndarray", "frame", "series", "pynapple"]
PATHS = ["fit", "partial_fit", "warm_start", "pipeline", "persistence", "pickle"]
WEIGHTS = ["none", "ones", "zeros"]
#: A one-column DataFrame of identity labels is no input for an embedder; the ensemble trains new members at every
#: fit (it has no warm start).
NOT_APPLICABLE = {("triplet", "frame"), ("ensemble", "warm_start")}


def _numbers(estimator):
    """``(X, y)`` as arrays: 60 rows of 3 features, and counts, a continuous target or 4 identities."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, len(FEATURES)))
    if estimator == "poisson":
        y = rng.poisson(np.exp(0.3 + 0.5 * X[:, 0])).astype(np.float64)
    elif estimator == "triplet":
        y = np.arange(N_ROWS) % 4
        X = X + 2.0 * y[:, None]
    else:
        y = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=N_ROWS)
    return X, y


def _as_kind(kind, X, y):
    if kind == "ndarray":
        return X, y
    frame = pd.DataFrame(X, columns=FEATURES)
    if kind == "frame":
        return frame, pd.DataFrame({TARGET: y})
    if kind == "series":
        return frame, pd.Series(y, name=TARGET)
    t = np.arange(len(X)) * 0.05
    return nap.TsdFrame(t=t, d=X, columns=FEATURES), nap.Tsd(t=t, d=y)


def _weights(name):
    if name == "none":
        return None
    weight = np.ones(N_ROWS)
    if name == "zeros":
        weight[:10] = 0.0  # the first rows: the Poisson regressor holds the last ones out for early stopping
    return weight


def _step_name(model):
    return type(model).__name__.lower()


def _fit_by(path, make, X, y, weight):
    """A model of ``make()`` fitted on ``(X, y, weight)`` by ``path`` (warm start, saved and loaded: ``models``)."""
    model = make()
    if path == "fit":
        return model.fit(X, y, sample_weight=weight)
    if path == "partial_fit":
        for _ in range(2):
            model.partial_fit(X, y, sample_weight=weight)
        return model
    assert path == "pipeline"
    pipeline = make_pipeline(LagFeatures(n_lags=1), model).set_output(transform="pandas")
    return pipeline.fit(X, y, **{f"{_step_name(model)}__sample_weight": weight})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``get(estimator, kind, path, weights) -> (model, X, y)``, each fitted once for the whole module."""
    cache = {}
    folder = tmp_path_factory.mktemp("models")

    def get(estimator, kind, path, weights):
        key = (estimator, kind, path, weights)
        if key not in cache:
            X, y = _as_kind(kind, *_numbers(estimator))
            if path == "warm_start":  # a copy of the model of fit, trained on warm
                model = copy.deepcopy(get(estimator, kind, "fit", weights)[0]).set_params(warm_start=True)
                model.fit(X, y, sample_weight=_weights(weights))
            elif path in ("persistence", "pickle"):
                fitted = get(estimator, kind, "fit", weights)[0]
                if path == "pickle":
                    model = pickle.loads(pickle.dumps(fitted))
                else:
                    file = folder / f"{'-'.join(key)}.skc"
                    persistence.dump(fitted, file)
                    model = persistence.load(file)
            else:
                model = _fit_by(path, ESTIMATORS[estimator], X, y, _weights(weights))
            cache[key] = (model, X, y)
        return cache[key]

    return get


def _output(model, X):
    return model.transform(X) if hasattr(model, "transform") and not hasattr(model, "predict") else model.predict(X)


def _values(out):
    return np.asarray(out, dtype=np.float64).reshape(N_ROWS, -1)


def _cases():
    """Every pair of values of two axes, for each estimator: every kind on every path without weights, every path
    with each weight on arrays, and every kind with each weight on ``fit`` (the whole product trains 3x as many
    networks and finds nothing more that a pair does not: each comparison is between two values of one axis)."""
    combos = [(kind, path, "none") for kind in KINDS for path in PATHS]
    combos += [("ndarray", path, weights) for path in PATHS for weights in WEIGHTS[1:]]
    combos += [(kind, "fit", weights) for kind in KINDS[1:] for weights in WEIGHTS[1:]]
    return [
        pytest.param(estimator, kind, path, weights, id=f"{estimator}-{kind}-{path}-{weights}")
        for estimator in ESTIMATORS for kind, path, weights in combos
        if (estimator, kind) not in NOT_APPLICABLE and (estimator, path) not in NOT_APPLICABLE
    ]


CASES = _cases()


@pytest.mark.parametrize(("estimator", "kind", "path", "weights"), CASES)
def test_every_path_to_a_model_gives_its_shapes_names_and_predictions(models, estimator, kind, path, weights):
    model, X, y = models(estimator, kind, path, weights)
    out = _output(model, X)
    values = _values(out)
    assert np.isfinite(values).all()

    # shapes and names
    if estimator == "triplet":
        names = [f"embedding{j}" for j in range(2)]
        assert list(model.get_feature_names_out()) == names
        assert values.shape == (N_ROWS, 2)
        if path == "pipeline":  # pandas output: the embedding's columns, indexed like a DataFrame X
            assert isinstance(out, pd.DataFrame) and list(out.columns) == names
            if isinstance(X, pd.DataFrame):
                assert out.index.equals(X.index)
    else:
        expected_shape = (N_ROWS, 1) if kind == "frame" else (N_ROWS,)
        assert np.shape(out) == expected_shape
        sampler, X_sampled = (model[-1], model[:-1].transform(X)) if path == "pipeline" else (model, X)
        assert sampler.sample(X_sampled, n_samples=3, random_state=0).shape == (3, *expected_shape)
        if kind == "pynapple" and estimator != "ensemble" and path != "pipeline":
            assert isinstance(out, nap.Tsd)  # a time-indexed X gives time-indexed predictions
            np.testing.assert_array_equal(out.t, X.t)
    final = model[-1] if path == "pipeline" else model
    if kind == "ndarray":
        names_in = ["x0", "x1", "x2", "x0_lag1", "x1_lag1", "x2_lag1"] if path == "pipeline" else None
    else:
        names_in = FEATURES + [f"{name}_lag1" for name in FEATURES] if path == "pipeline" else FEATURES
    if names_in is None:
        assert not hasattr(final, "feature_names_in_")
    else:
        assert list(final.feature_names_in_) == names_in

    # agreement between the ways of getting to the same model
    if path in ("persistence", "pickle"):  # exactly the predictions of the model saved
        saved, _, _ = models(estimator, kind, "fit", weights)
        np.testing.assert_array_equal(values, _values(_output(saved, X)))
    if kind != "ndarray":  # the same numbers as arrays: the same model
        reference, X_array, _ = models(estimator, "ndarray", path, weights)
        np.testing.assert_allclose(values, _values(_output(reference, X_array)), rtol=1e-5, atol=1e-6)
    if weights == "ones":  # equal weights are no weights
        unweighted, _, _ = models(estimator, kind, path, "none")
        np.testing.assert_array_equal(values, _values(_output(unweighted, X)))


@pytest.mark.parametrize("estimator", REGRESSORS)
def test_the_targets_of_rows_of_weight_zero_do_not_matter(models, estimator):
    """A row of weight 0 counts for nothing (an integer weight counts a row as that many copies): other targets
    on those rows give the same model. Permuting them does (test below), so what leaks is a statistic of all the
    targets: the initial marginal of the output layer."""
    reference, X, _ = models(estimator, "ndarray", "fit", "zeros")
    X_same, y = _numbers(estimator)
    y[:10] += 1.0
    changed = ESTIMATORS[estimator]().fit(X_same, y, sample_weight=_weights("zeros"))
    np.testing.assert_allclose(changed.predict(X), reference.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator", REGRESSORS)
def test_permuting_the_targets_of_rows_of_weight_zero_changes_nothing(models, estimator):
    reference, X, _ = models(estimator, "ndarray", "fit", "zeros")
    X_same, y = _numbers(estimator)
    y[:10] = y[:10][::-1]
    assert not np.array_equal(y, _numbers(estimator)[1])
    changed = ESTIMATORS[estimator]().fit(X_same, y, sample_weight=_weights("zeros"))
    np.testing.assert_allclose(changed.predict(X), reference.predict(X), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ refusals x paths
# A refused call raises a clear error and leaves a fitted model as it was. Some refusals are being made clear on
# other branches: those cases are marked xfail until they are merged.

ELSEWHERE = pytest.mark.xfail(strict=False, reason="fixed on another branch")
#: The one-row draws of a model with a linear component (the Gaussian regressor's) fail to stack.
SAMPLE_ONE_ROW = {}


def _refit_copy(models, estimator, kind, path):
    """A copy of a shared fitted model (for the call that must be refused), its data and its predictions."""
    model, X, y = models(estimator, kind, path, "none")
    model = copy.deepcopy(model)
    return model, X, y, _values(_output(model, X))


def _call(model, path, X, y, **fit_params):
    if path == "pipeline":
        fit_params = {f"{model.steps[-1][0]}__{name}": value for name, value in fit_params.items()}
    getattr(model, "partial_fit" if path == "partial_fit" else "fit")(X, y, **fit_params)


@pytest.mark.parametrize("path", ["fit", "partial_fit", "pipeline"])
@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_weights_that_are_all_zero_are_refused_naming_sample_weight(models, estimator, path):
    model, X, y, before = _refit_copy(models, estimator, "ndarray", path)
    with pytest.raises(ValueError, match="sample_weight is zero for every row"):
        _call(model, path, X, y, sample_weight=np.zeros(N_ROWS))
    np.testing.assert_array_equal(_values(_output(model, X)), before)


@pytest.mark.parametrize("path", ["fit", "partial_fit", "pipeline"])
@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_weights_of_another_length_or_negative_are_refused_and_change_nothing(models, estimator, path):
    model, X, y, before = _refit_copy(models, estimator, "ndarray", path)
    for weight in (np.ones(N_ROWS - 1), -np.ones(N_ROWS)):
        with pytest.raises(ValueError):
            _call(model, path, X, y, sample_weight=weight)
        np.testing.assert_array_equal(_values(_output(model, X)), before)


@pytest.mark.parametrize("make", [lambda: PoissonSpikeRegressor(**TINY),
                                  lambda: DeepEnsembleRegressor(PoissonSpikeRegressor(**TINY), n_estimators=2,
                                                                random_state=0)],
                         ids=["poisson", "ensemble"])
def test_zero_weight_on_every_row_held_out_for_early_stopping_is_refused(models, make):
    # the Poisson regressor holds out the last 10% of the rows (time order): with no weight there, the validation
    # loss is 0 / 0
    _, X, y = models("poisson", "ndarray", "fit", "none")
    weight = np.ones(N_ROWS)
    weight[-N_ROWS // 10:] = 0.0
    with pytest.raises(ValueError, match="sample_weight is zero on all .* rows held out for early stopping"):
        make().fit(X, y, sample_weight=weight)


@pytest.mark.parametrize("path", ["fit", "partial_fit", "pipeline"])
@pytest.mark.parametrize("estimator", REGRESSORS)
def test_a_target_of_strings_is_refused_clearly(models, estimator, path):
    model, X, y, before = _refit_copy(models, estimator, "ndarray", path)
    with pytest.raises((ValueError, TypeError), match=r"\by\b"):
        _call(model, path, X, np.array(["a", "b", "c"])[np.arange(N_ROWS) % 3])
    np.testing.assert_array_equal(_values(_output(model, X)), before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("estimator", [pytest.param(e, marks=SAMPLE_ONE_ROW.get(e, ())) for e in REGRESSORS])
def test_draws_of_one_row_have_the_shape_of_its_prediction(models, estimator, kind):
    model, X, _ = models(estimator, kind, "fit", "none")
    row = X[:1] if kind != "pynapple" else X[0:1]
    for n_samples in (1, 2):
        assert model.sample(row, n_samples=n_samples, random_state=0).shape == (n_samples, *np.shape(
            model.predict(row)))


@pytest.mark.parametrize("estimator", ["poisson", "gaussian"])
def test_time_indexed_predictions_are_named_after_a_one_column_dataframe_y(models, estimator):
    X, _ = _as_kind("pynapple", *_numbers(estimator))
    _, y = _as_kind("frame", *_numbers(estimator))
    model = ESTIMATORS[estimator]().fit(X, y)
    mean, std = model.predict(X, return_std=True)
    for out in (mean, std):
        assert isinstance(out, nap.TsdFrame) and list(out.columns) == [TARGET]
    # the same model as from the arrays (the names aside)
    reference, X_array, _ = models(estimator, "frame", "fit", "none")
    np.testing.assert_allclose(_values(mean), _values(reference.predict(X_array)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator", ["poisson", "gaussian"])
def test_a_one_column_tsd_x_fits_as_a_one_column_array(estimator):
    X, y = _numbers(estimator)
    speed = nap.Tsd(t=np.arange(N_ROWS) * 0.05, d=X[:, 0])
    model = ESTIMATORS[estimator]().fit(speed, y)
    reference = ESTIMATORS[estimator]().fit(X[:, :1], y)
    np.testing.assert_allclose(np.asarray(model.predict(speed)), reference.predict(X[:, :1]), rtol=1e-5, atol=1e-6)
