"""The Gaussian regressor's linear component: the Bayesian linear regression it mixes into its prediction, and
the weight that the held-out rows give it (``linear_weight``)."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.linear_model import BayesianRidge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_costs import GaussianUncertaintyRegressor
from sklearn_costs._linear_component import bayesian_linear_predict, fit_bayesian_linear, stacking_weight
from sklearn_costs.datasets import make_heteroscedastic_regression


def _linear_table(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, -2.0, 1.0]
    return X, X @ [1.0, 0.2, -5.0, 0.5] + rng.normal(scale=0.5, size=n)


def test_the_component_is_bayesian_ridge_on_standardised_inputs():
    X, y = _linear_table(80)
    reference = make_pipeline(StandardScaler(), BayesianRidge()).fit(X, y)
    mean, std = bayesian_linear_predict(fit_bayesian_linear(X, y), X[:20])
    ref_mean, ref_std = reference.predict(X[:20], return_std=True)
    np.testing.assert_allclose(mean[:, 0], ref_mean, rtol=1e-10)
    np.testing.assert_allclose(std[:, 0], ref_std, rtol=1e-10)
    # two targets: one regression each
    two = fit_bayesian_linear(X, np.column_stack([y, -3 * y]))
    np.testing.assert_allclose(bayesian_linear_predict(two, X[:20])[0][:, 0], ref_mean, rtol=1e-10)
    assert two["coef"].shape == (2, 4) and two["coef_cov"].shape == (2, 4, 4)


def test_the_weight_follows_the_evidence_of_the_held_out_rows():
    rng = np.random.default_rng(0)
    good, bad = norm.logpdf(rng.normal(size=(200, 1))), norm.logpdf(rng.normal(size=(200, 1)), 3.0, 0.5)
    assert stacking_weight(good, bad) < 0.01  # the networks explain the rows; the linear part does not
    assert stacking_weight(bad, good) > 0.99
    assert stacking_weight(good[:0], bad[:0]) == pytest.approx(0.5)  # no rows: the uniform prior's mean
    assert stacking_weight(good, good) == pytest.approx(0.5)
    # three rows say little: the weight moves off the middle but far from the end that 200 rows reach
    assert 0.05 < stacking_weight(good[:3], bad[:3]) < 0.4
    # a row weight of 2 counts the row twice
    doubled = stacking_weight(np.vstack([good[:3], good[:3]]), np.vstack([bad[:3], bad[:3]]))
    assert stacking_weight(good[:3], bad[:3], sample_weight=np.full(3, 2.0)) == pytest.approx(doubled)


def test_auto_leans_on_the_linear_part_for_a_few_rows_of_a_linear_table():
    X, y = _linear_table(60)
    X_test, y_test = _linear_table(2000, seed=1)
    model = GaussianUncertaintyRegressor(random_state=0).fit(X, y)
    networks = GaussianUncertaintyRegressor(random_state=0, linear_weight=0).fit(X, y)
    # six held-out rows: a broad posterior, whose mean is near the middle (0.48 here)
    assert model.linear_weight_ > 0.3
    assert networks.linear_weight_ == 0.0
    # the networks alone are confidently wrong far from those 60 rows: -2.97 nats a point, the mixture -0.86
    assert model.score(X_test, y_test) > networks.score(X_test, y_test) + 1.0


def test_auto_leaves_the_networks_alone_on_a_large_nonlinear_table():
    data = make_heteroscedastic_regression(3000, random_state=0)
    # batches of 256 at lr=1e-2: the same weight as the default batches of 60 (0.019), in a third of the time
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(32, 32), n_members=1, batch_size=256, lr=1e-2,
                                         random_state=0)
    assert model.fit(data.X, data.y).linear_weight_ < 0.05


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_the_prediction_is_the_weighted_mixture_of_networks_and_linear_part(weight):
    X, y = _linear_table(60)
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(16,), n_members=2, linear_weight=weight,
                                         max_epochs=30, random_state=0).fit(X, y)
    assert model.linear_weight_ == weight
    X_new, y_new = _linear_table(40, seed=2)
    members = model.predict_distribution(X_new)  # (members, rows): the networks alone
    linear_mean, linear_std = make_pipeline(StandardScaler(), BayesianRidge()).fit(
        X, (y - model.y_loc_[0]) / model.y_scale_[0]).predict(X_new, return_std=True)
    linear_mean, linear_std = linear_mean * model.y_scale_[0] + model.y_loc_[0], linear_std * model.y_scale_[0]
    density = ((1 - weight) * norm.pdf(y_new, members["mean"], members["std"]).mean(0)
               + weight * norm.pdf(y_new, linear_mean, linear_std))
    # to float32's precision: the component is fitted to the standardised targets the networks train on
    np.testing.assert_allclose(model.log_likelihood(X_new, y_new), np.log(density), rtol=1e-5)
    mean = (1 - weight) * members["mean"].mean(0) + weight * linear_mean
    np.testing.assert_allclose(model.predict(X_new), mean, rtol=1e-5)
    second = (1 - weight) * (members["std"] ** 2 + members["mean"] ** 2).mean(0) + weight * (
        linear_std**2 + linear_mean**2)
    np.testing.assert_allclose(model.predict(X_new, return_std=True)[1], np.sqrt(second - mean**2), rtol=1e-5)
    cdf = ((1 - weight) * norm.cdf(y_new, members["mean"], members["std"]).mean(0)
           + weight * norm.cdf(y_new, linear_mean, linear_std))
    np.testing.assert_allclose(model.predict_cdf(X_new, y_new), cdf, rtol=1e-5, atol=1e-9)
    lower, upper = model.predict_interval(X_new, coverage=0.8)
    np.testing.assert_allclose(model.predict_cdf(X_new, lower), 0.1, atol=1e-9)
    np.testing.assert_allclose(model.predict_cdf(X_new, upper), 0.9, atol=1e-9)
    draws = model.sample(X_new[:4], n_samples=8000, random_state=0)
    np.testing.assert_allclose(draws.mean(0), mean[:4], atol=5 * np.sqrt(second[:4] - mean[:4] ** 2).max() / 90)


def test_the_linear_part_never_changes_the_networks():
    X, y = _linear_table(60)
    fits = [GaussianUncertaintyRegressor(hidden_layer_sizes=(16,), max_epochs=20, linear_weight=w,
                                         random_state=0).fit(X, y) for w in ("auto", 0, 0.7)]
    for fit in fits[1:]:
        for name, value in fits[0].predict_distribution(X).params.items():
            np.testing.assert_array_equal(fit.predict_distribution(X)[name], value)
    assert fits[1].linear_weight_ == 0.0 and fits[1]._linear_component is None


def test_without_held_out_rows_auto_is_the_networks_alone():
    X, y = _linear_table(60)
    assert GaussianUncertaintyRegressor(early_stopping=False, max_epochs=5).fit(X, y).linear_weight_ == 0.0
    assert GaussianUncertaintyRegressor(max_epochs=5).fit(X[:15], y[:15]).linear_weight_ == 0.0  # < 20 rows
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,))
    assert model.partial_fit(X, y).partial_fit(X, y).linear_weight_ == 0.0


def test_the_weight_is_reported_in_the_verbose_output(capsys):
    X, y = _linear_table(60)
    GaussianUncertaintyRegressor(max_epochs=3, verbose=1, random_state=0).fit(X, y)
    assert "linear_weight=0." in capsys.readouterr().out


def test_a_large_table_fits_the_linear_part_on_evenly_spaced_rows(monkeypatch):
    import sklearn_costs.gaussian

    monkeypatch.setattr(sklearn_costs.gaussian, "LINEAR_ROWS", 30)
    X, y = _linear_table(200)
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3, linear_weight=0.5).fit(X, y)
    rows = np.round(np.linspace(0, 199, 30)).astype(int)
    np.testing.assert_allclose(model._linear_component["x_loc"], X[rows].mean(0), rtol=1e-5)


def test_a_deep_ensemble_weighs_each_members_linear_part_within_that_member():
    from sklearn_costs import DeepEnsembleRegressor

    X, y = _linear_table(80)
    member = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=10, linear_weight=0.5)
    ensemble = DeepEnsembleRegressor(member, n_estimators=2, random_state=0).fit(X, y)
    X_new = _linear_table(10, seed=3)[0]
    lower, upper = ensemble.predict_interval(X_new, coverage=0.6)
    np.testing.assert_allclose(ensemble.predict_cdf(X_new, lower), 0.2, atol=1e-8)
    np.testing.assert_allclose(ensemble.predict_cdf(X_new, upper), 0.8, atol=1e-8)


def test_a_constant_input_column_keeps_a_scale_of_one():
    import torch

    from sklearn_costs.modules import Standardize

    X = torch.tensor(np.column_stack([np.full(50, 0.1), np.arange(50.0)]), dtype=torch.float32)
    for weight in (None, torch.rand(50)):
        assert Standardize.of(X, weight).scale[0] == 1.0  # its float32 mean is not exactly 0.1


def test_the_linear_std_keeps_the_networks_floor_on_noiseless_linear_targets():
    X, _ = _linear_table(60)
    y = X @ [1.0, 0.2, -5.0, 0.5]  # no noise: BayesianRidge's own std is ~1e-4 of the target's spread
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3, linear_weight=1.0, min_std=0.05,
                                         random_state=0).fit(X, y)
    _, std = model.predict(X, return_std=True)  # the linear part alone (weight 1)
    np.testing.assert_allclose(std, 0.05 * model.y_scale_[0], rtol=1e-6)
    assert model._linear_component["min_std"] == 0.05
    # a component without the floor (saved by an earlier version) predicts BayesianRidge's own std
    unfloored = {k: v for k, v in model._linear_component.items() if k != "min_std"}
    assert bayesian_linear_predict(unfloored, X)[1].max() < 0.01


def test_sample_weights_count_as_relative_weights_in_the_linear_part():
    X, y = _linear_table(60)
    half = np.full(60, 0.5)
    half[0] = 1.0  # the largest weight: scaled to 1, every other row would count half and the noise look halved
    fits = [GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3, linear_weight=1.0, random_state=0)
            .fit(X, y, sample_weight=w) for w in (None, half, 1000 * half)]
    stds = [fit.predict(X, return_std=True)[1] for fit in fits]
    np.testing.assert_allclose(stds[1], stds[0], rtol=0.05)
    np.testing.assert_allclose(stds[2], stds[1], rtol=1e-6)  # the weights' scale does not matter


@pytest.mark.parametrize("linear_weight", ["auto", 0.5])
def test_no_linear_part_when_no_weighted_row_is_among_the_rows_it_is_fitted_on(monkeypatch, linear_weight):
    import sklearn_costs.gaussian

    monkeypatch.setattr(sklearn_costs.gaussian, "LINEAR_ROWS", 30)
    X, y = _linear_table(200)
    weight = np.ones(200)
    weight[np.round(np.linspace(0, 199, 30)).astype(int)] = 0.0  # the rows the linear part would be fitted on
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3, linear_weight=linear_weight,
                                         random_state=0).fit(X, y, sample_weight=weight)
    assert model.linear_weight_ == 0.0 and model._linear_component is None
    assert np.isfinite(model.predict(X)).all()
