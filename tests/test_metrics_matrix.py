"""Every public metric, scorer and report on every estimator that can answer it: alone, at the end of a Pipeline,
and as the member of a DeepEnsembleRegressor; a clear TypeError naming what is missing where it cannot."""

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs.metrics import (
    neg_calibration_error_scorer,
    neg_log_likelihood_scorer,
    poisson_d2_scorer,
    uncertainty_report,
)

rng = np.random.default_rng(0)
X = rng.normal(size=(160, 3)) * [1.0, 10.0, 100.0]  # scales a StandardScaler in front has something to do
CONTINUOUS_Y = X[:, 0] + 0.05 * X[:, 1] + (0.3 + 0.2 * np.abs(X[:, 0])) * rng.normal(size=160)
COUNT_Y = rng.poisson(np.exp(0.5 + 0.4 * X[:, 0]))


def gaussian():
    return GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=15, lr=1e-2, random_state=0)


def poisson():
    return PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=15, lr=1e-2, random_state=0)


ESTIMATORS = {
    "gaussian": (gaussian, CONTINUOUS_Y),
    "poisson": (poisson, COUNT_Y),
    "ensemble of gaussian": (lambda: DeepEnsembleRegressor(gaussian(), n_estimators=2, random_state=0), CONTINUOUS_Y),
    "ensemble of poisson": (lambda: DeepEnsembleRegressor(poisson(), n_estimators=2, random_state=0), COUNT_Y),
}
WRAPPERS = {"alone": lambda est: est, "pipeline": lambda est: make_pipeline(StandardScaler(), est)}
CONTINUOUS = {"gaussian", "ensemble of gaussian"}
COUNTS = {"poisson", "ensemble of poisson"}


def report_nll(model, X, y):
    return -uncertainty_report(model, X, y)["nll"]


def report_calibration(model, X, y):
    return -uncertainty_report(model, X, y)["calibration_error"]


# metric -> (a scorer-like callable, the estimators that can answer it)
METRICS = {
    "neg_log_likelihood_scorer": (neg_log_likelihood_scorer, CONTINUOUS | COUNTS),
    "poisson_d2_scorer": (poisson_d2_scorer, COUNTS),
    "neg_calibration_error_scorer": (neg_calibration_error_scorer, CONTINUOUS),
    "uncertainty_report nll": (report_nll, CONTINUOUS),
    "uncertainty_report calibration": (report_calibration, CONTINUOUS),
}


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for name, (make, y) in ESTIMATORS.items():
        for wrap, wrapper in WRAPPERS.items():
            out[name, wrap] = wrapper(make()).fit(X[:120], y[:120])
    return out


@pytest.mark.parametrize("wrap", WRAPPERS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("metric", METRICS)
def test_metric_answers_every_estimator_that_can(metric, estimator, wrap, fitted):
    score, answerable = METRICS[metric]
    model, y = fitted[estimator, wrap], ESTIMATORS[estimator][1]
    if estimator in answerable:
        value = score(model, X[120:], y[120:])
        assert np.isfinite(value)
    elif metric == "poisson_d2_scorer":  # real targets are no counts
        with pytest.raises(ValueError, match="y_true must hold non-negative observed counts .* found -"):
            score(model, X[120:], y[120:])
    else:
        with pytest.raises(TypeError, match=r"needs predict_cdf\(\), which (PoissonSpikeRegressor|"
                                            r"DeepEnsembleRegressor) does not have: it needs a continuous predictive "
                                            r"distribution"):
            score(model, X[120:], y[120:])


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_pipeline_scores_as_its_last_step_on_transformed_data(estimator, fitted):
    pipe, y = fitted[estimator, "pipeline"], ESTIMATORS[estimator][1]
    last, Xt = pipe[-1], pipe[:-1].transform(X[120:])
    for metric, (score, answerable) in METRICS.items():
        if estimator in answerable:
            assert score(pipe, X[120:], y[120:]) == pytest.approx(score(last, Xt, y[120:])), metric


@pytest.mark.parametrize("scoring, make, y", [
    (neg_calibration_error_scorer, lambda: make_pipeline(StandardScaler(), gaussian()), CONTINUOUS_Y),
    (neg_log_likelihood_scorer, lambda: make_pipeline(StandardScaler(), poisson()), COUNT_Y),
    (neg_calibration_error_scorer, lambda: DeepEnsembleRegressor(gaussian(), n_estimators=2, random_state=0),
     CONTINUOUS_Y),
])
def test_cross_val_score_with_the_package_scorers_gives_numbers(scoring, make, y):
    scores = cross_val_score(make(), X, y, cv=2, scoring=scoring, error_score="raise")
    assert np.isfinite(scores).all()


def test_ensemble_of_counts_offers_no_cdf_or_interval(fitted):
    counts, continuous = fitted["ensemble of poisson", "alone"], fitted["ensemble of gaussian", "alone"]
    assert not hasattr(counts, "predict_cdf") and not hasattr(counts, "predict_interval")
    assert not hasattr(DeepEnsembleRegressor(poisson()), "predict_cdf")  # known before fitting too
    assert hasattr(continuous, "predict_cdf") and hasattr(DeepEnsembleRegressor(), "predict_interval")


def test_report_of_an_ensemble_uses_the_mixture(fitted):
    model = fitted["ensemble of gaussian", "alone"]
    report = uncertainty_report(model, X[120:], CONTINUOUS_Y[120:])
    assert report["nll"] == pytest.approx(-model.score(X[120:], CONTINUOUS_Y[120:]))
    lower, upper = model.predict_interval(X[120:], 0.9)
    inside = (CONTINUOUS_Y[120:] >= lower) & (CONTINUOUS_Y[120:] <= upper)
    assert report["coverage"] == pytest.approx(inside.mean())


@pytest.mark.parametrize("loss, std_of", [
    ("poisson", lambda p: np.sqrt(p["rate"])),
    ("negative_binomial", lambda p: np.sqrt(p["rate"] + p["dispersion"] * p["rate"] ** 2)),
])
def test_poisson_regressor_predicts_the_std_of_its_count_distribution(loss, std_of):
    model = PoissonSpikeRegressor(loss=loss, hidden_layer_sizes=(8,), n_members=1, max_epochs=15,
                                  random_state=0).fit(X, COUNT_Y)
    mean, std = model.predict(X[:20], return_std=True)
    params = model.predict_distribution(X[:20])
    np.testing.assert_allclose(mean, model.predict(X[:20]))
    np.testing.assert_allclose(std, std_of(params), rtol=1e-5)
    if loss == "poisson":
        np.testing.assert_allclose(std, stats.poisson(mean).std(), rtol=1e-5)
    ensemble = DeepEnsembleRegressor(model, n_estimators=2, random_state=0).fit(X, COUNT_Y)
    mean, std = ensemble.predict(X[:20], return_std=True)
    assert mean.shape == std.shape == (20,) and (std > 0).all()
