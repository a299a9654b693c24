"""DeepEnsembleRegressor: the equal mixture of independently started networks."""

import pickle

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs.datasets import make_heteroscedastic_regression


@pytest.fixture(scope="module")
def data():
    return make_heteroscedastic_regression(400, random_state=0), make_heteroscedastic_regression(300, random_state=1)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    # members of one network each: the mixture of separate estimators (tests/test_members.py: of members inside)
    # and without the linear component, so that each member is one Gaussian (its mixture: test_linear_component.py)
    member = GaussianUncertaintyRegressor(hidden_layer_sizes=(16,), n_members=1, linear_weight=0, max_epochs=30,
                                          lr=1e-2)
    return DeepEnsembleRegressor(member, n_estimators=3, random_state=0).fit(train.X, train.y)


def test_members_differ_and_the_mixture_moments_are_right(fitted, data):
    _, test = data
    means, stds = zip(*(m.predict(test.X, return_std=True) for m in fitted.estimators_))
    means, stds = np.array(means), np.array(stds)
    assert not np.allclose(means[0], means[1])  # different seeds, different networks
    mean, std = fitted.predict(test.X, return_std=True)
    np.testing.assert_allclose(mean, means.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std**2, (stds**2).mean(0) + means.var(0), rtol=1e-8)
    assert np.all(std >= np.sqrt((stds**2).mean(0)) - 1e-12)  # disagreement only adds uncertainty


def test_log_likelihood_and_cdf_are_those_of_the_mixture(fitted, data):
    _, test = data
    means, stds = zip(*(m.predict(test.X, return_std=True) for m in fitted.estimators_))
    density = np.mean([norm.pdf(test.y, m, s) for m, s in zip(means, stds)], axis=0)
    np.testing.assert_allclose(fitted.log_likelihood(test.X, test.y), np.log(density), rtol=1e-6)
    cdf = np.mean([norm.cdf(test.y, m, s) for m, s in zip(means, stds)], axis=0)
    np.testing.assert_allclose(fitted.predict_cdf(test.X, test.y), cdf, rtol=1e-6)
    assert fitted.score(test.X, test.y) == pytest.approx(np.mean(np.log(density)), rel=1e-6)


def test_interval_holds_the_mixture_probability(fitted, data):
    _, test = data
    lower, upper = fitted.predict_interval(test.X.iloc[:50], coverage=0.8)
    members = [m.predict_distribution(test.X.iloc[:50]) for m in fitted.estimators_]
    # every component of every member, by its own scipy distribution
    for bound, level in ((lower, 0.1), (upper, 0.9)):
        cdf = np.mean([sum(w * c.cdf(bound) for w, c in zip(m.weights, m.components)) for m in members], axis=0)
        np.testing.assert_allclose(cdf, level, atol=1e-9)
    with pytest.raises(ValueError, match="coverage must be in"):
        fitted.predict_interval(test.X, coverage=1.0)


def test_samples_follow_the_mixture(fitted, data):
    _, test = data
    draws = fitted.sample(test.X.iloc[:5], n_samples=4000, random_state=0)
    assert draws.shape == (4000, 5)
    mean, std = fitted.predict(test.X.iloc[:5], return_std=True)
    np.testing.assert_allclose(draws.mean(0), mean, atol=4 * std.max() / np.sqrt(4000))
    np.testing.assert_allclose(draws.std(0), std, rtol=0.1)


def test_pipeline_grid_search_and_pickle(data):
    train, test = data
    ensemble = DeepEnsembleRegressor(GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=5),
                                     n_estimators=2, random_state=0)
    search = GridSearchCV(make_pipeline(StandardScaler(), ensemble),
                          {"deepensembleregressor__estimator__loss": ["gaussian", "laplace"]}, cv=2)
    search.fit(train.X, train.y)
    assert search.best_params_["deepensembleregressor__estimator__loss"] in ("gaussian", "laplace")
    again = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(again.predict(test.X), search.best_estimator_.predict(test.X))
    assert list(ensemble.fit(train.X, train.y).feature_names_in_) == list(train.X.columns)


def test_count_members_average_rates_and_score_d2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    Y = rng.poisson(np.exp(0.5 + X @ np.array([[0.5, -0.2], [0.1, 0.4]])))
    ensemble = DeepEnsembleRegressor(PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=20), n_estimators=2,
                                     random_state=0).fit(X, Y)
    rates = np.mean([m.predict(X) for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), rates)
    from sklearn_costs.metrics import poisson_d2_score

    assert ensemble.score(X, Y) == pytest.approx(poisson_d2_score(Y, rates))
    assert ensemble.sample(X[:3], n_samples=2, random_state=0).shape == (2, 3, 2)
    for scored in (ensemble, ensemble.estimators_[0]):  # counts checked as a member checks them
        with pytest.raises(ValueError, match="integer"):
            scored.score(X, Y + 0.5)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"n_estimators": 0}, ValueError, r"'n_estimators' parameter of DeepEnsembleRegressor must be an int in "
                                          r"the range \[1, inf\)"),
        ({"estimator": StandardScaler()}, TypeError, "'estimator' parameter of DeepEnsembleRegressor must be a "
                                                     "GaussianUncertaintyRegressor or a PoissonSpikeRegressor"),
        ({"estimator": GaussianUncertaintyRegressor(min_std=0.0)}, ValueError,
         r"'min_std' parameter of GaussianUncertaintyRegressor must be a float in the range \(0.0, inf\)"),
    ],
)
def test_bad_parameters(data, params, error, message):
    train, _ = data
    with pytest.raises(error, match=message):
        DeepEnsembleRegressor(**params).fit(train.X, train.y)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DeepEnsembleRegressor().predict(np.zeros((2, 3)))


def test_partial_fit_takes_the_members_new_training_parameters_and_refuses_another_count():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=80)
    member = GaussianUncertaintyRegressor(hidden_layer_sizes=(4,), n_members=1, linear_weight=0, lr=1e-3)
    ensemble = DeepEnsembleRegressor(member, n_estimators=2, random_state=0).partial_fit(X, y)
    before = ensemble.predict(X)
    ensemble.set_params(estimator__lr=0.05).partial_fit(X, y)
    assert [m.net_.optimizer_.param_groups[0]["lr"] for m in ensemble.estimators_] == [0.05, 0.05]
    assert [m.n_iter_ for m in ensemble.estimators_] == [2, 2]
    for change, message in [({"n_estimators": 3}, "continues the 2 members fitted so far, but n_estimators is now 3"),
                            ({"estimator__hidden_layer_sizes": (8,)}, "hidden_layer_sizes changed")]:
        fitted = ensemble.predict(X)
        with pytest.raises(ValueError, match=message):
            ensemble.set_params(**change).partial_fit(X, y)
        np.testing.assert_array_equal(ensemble.predict(X), fitted)
        ensemble.set_params(n_estimators=2, estimator__hidden_layer_sizes=(4,))
    assert not np.array_equal(before, ensemble.predict(X))
