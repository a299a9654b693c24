"""The predictive distribution object (``predict_distribution(X)``): its methods against scipy and Monte Carlo,
the estimators' predictions going through it, the exact CRPS of mixtures, the shapes of draws, and one conversion
of observed targets."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from sklearn.pipeline import make_pipeline

import sklearn_costs
from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, simulate_recurrent
from sklearn_costs._crps import count_crps, gaussian_mixture_crps, integrated_crps, is_gaussian
from sklearn_costs.distributions import PredictiveDistribution
from sklearn_costs.metrics import crps_from_samples, gaussian_crps, uncertainty_report
from sklearn_costs.preprocessing import SpikeHistory

rng = np.random.default_rng(0)
X = rng.uniform(-2, 2, size=(60, 1))
Y = 3 * np.abs(X[:, 0]) + rng.normal(scale=0.5, size=60)
COUNTS = rng.poisson(np.exp(0.3 + 0.4 * X), size=(60, 2))


def _tiny(**kw):
    return GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0, **kw)


@pytest.fixture(scope="module")
def default_model():
    """A default regressor (5 members and a linear part of weight 0.5) on 60 rows of y = 3|x| + noise."""
    return GaussianUncertaintyRegressor(max_epochs=5, linear_weight=0.5, random_state=0).fit(X, Y)


@pytest.fixture(scope="module")
def counts_model():
    return PoissonSpikeRegressor(hidden_layer_sizes=(8,), n_members=2, max_epochs=3, random_state=0).fit(X, COUNTS)


def _sorted_pairs_mean_abs(draws):
    """``E|X - X'|`` over all pairs of the draws (axis 0), from the sorted draws: ``2 / n**2 sum (2i - n - 1)
    x_(i)``."""
    n = len(draws)
    ranks = (2 * np.arange(1, n + 1) - n - 1).reshape((-1,) + (1,) * (draws.ndim - 1))
    return 2 * (ranks * np.sort(draws, axis=0)).sum(0) / n**2


def test_mixture_crps_of_the_default_regressor_matches_monte_carlo(default_model):
    """The report's CRPS was that of one Gaussian with the mixture's mean and std (0.724 here against 0.690 by
    Monte Carlo, 5% off); now it is the mixture's own."""
    model = default_model
    assert model.n_members_ == 5 and model.linear_weight_ == 0.5
    dist = model.predict_distribution(X)
    draws = dist.sample(200_000 // len(X) + 1, random_state=0)  # 200,000 draws over the 60 rows
    monte_carlo = np.mean(np.abs(draws - Y).mean(0) - 0.5 * _sorted_pairs_mean_abs(draws))
    exact = dist.crps(Y).mean()
    assert exact == pytest.approx(monte_carlo, rel=0.01)
    assert uncertainty_report(model, X, Y)["crps"] == pytest.approx(exact, rel=1e-12)


def test_gaussian_mixture_crps_is_the_integral_of_the_squared_cdf_difference():
    means, stds, weights = [np.array([0.0]), np.array([1.5])], [np.array([1.0]), np.array([0.3])], [0.7, 0.3]
    dists = [stats.norm(m, s) for m, s in zip(means, stds)]
    for y in (-1.0, 0.4, 3.0):
        def integrand(x, y=y):
            return (sum(w * d.cdf(x)[0] for w, d in zip(weights, dists)) - (x >= y)) ** 2
        quad = integrate.quad(integrand, -np.inf, y)[0] + integrate.quad(integrand, y, np.inf)[0]
        closed = gaussian_mixture_crps(means, stds, weights, np.array([y]))[0]
        assert closed == pytest.approx(quad, rel=1e-7)
        assert integrated_crps(dists, weights, np.array([y]))[0] == pytest.approx(quad, rel=1e-7)
    # one component: the textbook closed form
    one = gaussian_mixture_crps([np.array([0.0, 1.0])], [np.array([1.0, 1.0])], [1.0], np.zeros(2))
    np.testing.assert_allclose(one, gaussian_crps(np.zeros(2), np.array([0.0, 1.0]), np.ones(2)), rtol=1e-12)


def test_frozen_normals_take_the_closed_form_crps_and_no_other_family_does():
    assert is_gaussian(stats.norm(np.zeros(3), 1.0)) and is_gaussian(stats.norm())
    assert not any(is_gaussian(d) for d in (stats.t(3.0), stats.laplace(), stats.poisson(2.0), np.zeros(2)))


@pytest.mark.parametrize("family", ["laplace", "student_t"])
def test_quadrature_crps_of_other_mixtures_matches_adaptive_quadrature(family):
    if family == "laplace":
        dists = [stats.laplace(np.array([0.0, 2.0]), np.array([1.0, 0.2])), stats.laplace(np.array([1.0, 2.5]),
                                                                                          np.array([0.5, 2.0]))]
    else:
        dists = [stats.t(2.05, np.array([0.0, 2.0]), np.array([1.0, 0.2])), stats.t(np.array([9.0, 3.0]),
                                                                                    np.array([1.0, 2.5]), 0.5)]
    weights, y = [0.4, 0.6], np.array([0.3, 10.0])
    got = integrated_crps(dists, weights, y)
    for i in range(2):
        def integrand(x, i=i):
            return (sum(w * d.cdf(x)[i] for w, d in zip(weights, dists)) - (x >= y[i])) ** 2
        quad = sum(integrate.quad(integrand, a, b, limit=200)[0]
                   for a, b in ((-np.inf, y[i] - 50), (y[i] - 50, y[i]), (y[i], y[i] + 50), (y[i] + 50, np.inf)))
        assert got[i] == pytest.approx(quad, rel=1e-6)


def test_count_crps_is_the_sum_over_the_counts():
    dists, weights, y = [stats.poisson(np.array([0.5, 4.0])), stats.nbinom(2.0, np.array([0.5, 0.1]))], [0.3, 0.7], \
        np.array([0.0, 7.0])
    brute = sum((sum(w * d.cdf(k) for w, d in zip(weights, dists)) - (k >= y)) ** 2 for k in range(400))
    np.testing.assert_allclose(count_crps(dists, weights, y), brute, rtol=1e-10)


def test_count_crps_sums_each_element_over_its_own_window():
    # a rate of 1e4, an NB at the dispersion clamp (alpha 10), y far above and below the mass: the window of each
    # element, plus 1 per count between y and it, against the sum over every count
    rate = np.array([1e4, 2.0, 3.0, 5.0])
    y = np.array([9950.0, 10_000.0, 0.0, 60.0])
    nb_mean = np.array([1.0, 5.0, 2.0, 3.0])
    dists, weights = [stats.poisson(rate), stats.nbinom(0.1, 0.1 / (0.1 + nb_mean))], [0.5, 0.5]
    k = np.arange(12_000)[:, None]
    brute = ((sum(w * d.cdf(k) for w, d in zip(weights, dists)) - (k >= y)) ** 2).sum(0)
    np.testing.assert_allclose(count_crps(dists, weights, y), brute, rtol=1e-8)
    # y = 1e9 costs no more than y = 0: the counts between the window and y are counted, not summed
    poisson = [stats.poisson(rate[1:3])]
    far, near = count_crps(poisson, [1.0], np.array([1e9, 0.0])), count_crps(poisson, [1.0], np.array([100.0, 0.0]))
    assert far[0] - near[0] == pytest.approx(1e9 - 100.0, rel=1e-15) and far[1] == near[1]


def test_one_gaussian_network_is_scipy_normal():
    model = _tiny(n_members=1, linear_weight=0).fit(X, Y)
    dist = model.predict_distribution(X[:10])
    reference = stats.norm(dist["mean"], dist["std"])
    y = Y[:10]
    np.testing.assert_allclose(dist.cdf(y), reference.cdf(y), rtol=1e-12)
    np.testing.assert_allclose(dist.ppf(0.3), reference.ppf(0.3), rtol=1e-12)
    np.testing.assert_allclose(dist.log_pdf(y), reference.logpdf(y), rtol=1e-6)
    np.testing.assert_allclose(dist.crps(y), gaussian_crps(y, dist["mean"], dist["std"]), rtol=1e-10)
    np.testing.assert_allclose(dist.var, reference.var(), rtol=1e-10)
    assert len(dist.components) == 1 and dist.weights.tolist() == [1.0]


def test_the_estimator_predictions_are_the_objects(default_model):
    model, rows = default_model, X[:15]
    dist = model.predict_distribution(rows)
    assert isinstance(dist, PredictiveDistribution) and dist.shape == (15,)
    np.testing.assert_array_equal(model.predict(rows), dist.mean)
    np.testing.assert_array_equal(model.predict(rows, return_std=True)[1], dist.std)
    np.testing.assert_array_equal(model.log_likelihood(rows, Y[:15]), dist.log_pdf(Y[:15]))
    np.testing.assert_array_equal(model.predict_cdf(rows, Y[:15]), dist.cdf(Y[:15]))
    np.testing.assert_array_equal(model.predict_interval(rows, 0.8)[0], dist.interval(0.8)[0])
    np.testing.assert_array_equal(model.sample(rows, 3, random_state=1), dist.sample(3, random_state=1))
    # the weights: five networks sharing half, the linear part the other half
    np.testing.assert_allclose(dist.weights, [0.1] * 5 + [0.5])
    components = dist.components
    cdf = sum(w * c.cdf(Y[:15]) for w, c in zip(dist.weights, components))
    np.testing.assert_allclose(dist.cdf(Y[:15]), cdf, rtol=1e-12)
    lower, upper = dist.interval(0.8)
    np.testing.assert_allclose(dist.cdf(lower), 0.1, atol=1e-9)
    np.testing.assert_allclose(dist.cdf(upper), 0.9, atol=1e-9)
    draws = dist.sample(20_000, random_state=0)
    np.testing.assert_allclose(draws.mean(0), dist.mean, atol=5 * dist.std.max() / np.sqrt(20_000))
    np.testing.assert_allclose(draws.std(0), dist.std, rtol=0.05)


def test_counts_give_the_same_kind_of_object(counts_model):
    dist = counts_model.predict_distribution(X[:8])
    assert isinstance(dist, PredictiveDistribution) and dist.discrete and dist.shape == (8, 2)
    rates = dist["rate"]  # (members, rows, neurons)
    assert rates.shape == (2, 8, 2)
    np.testing.assert_allclose(dist.log_pdf(COUNTS[:8]), np.log(stats.poisson.pmf(COUNTS[:8], rates).mean(0)),
                               rtol=1e-6)
    lower, upper = dist.interval(0.9)
    assert np.all(lower == np.round(lower)) and np.all(dist.cdf(upper) >= 0.95)
    assert np.all(dist.cdf(upper - 1) < 0.95) and np.all(dist.cdf(lower - 1) < 0.05)
    draws = dist.sample(4000, random_state=0)
    assert draws.shape == (4000, 8, 2)
    np.testing.assert_allclose(crps_from_samples(COUNTS[:8], draws), dist.crps(COUNTS[:8]), atol=0.05)
    np.testing.assert_allclose(counts_model.score(X, COUNTS), counts_model.score(X, pd.DataFrame(COUNTS)))


def test_an_ensemble_is_the_mixture_of_its_members_distributions(counts_model):
    ensemble = DeepEnsembleRegressor(_tiny(linear_weight=0.3, n_members=2), n_estimators=2, random_state=0)
    ensemble.fit(X, Y)
    dist = ensemble.predict_distribution(X[:10])
    members = [m.predict_distribution(X[:10]) for m in ensemble.estimators_]
    assert isinstance(dist, PredictiveDistribution) and dist.shape == (10,)
    np.testing.assert_allclose(dist.weights, np.concatenate([m.weights / 2 for m in members]))
    assert len(dist.components) == 6
    np.testing.assert_array_equal(ensemble.predict(X[:10]), np.mean([m.mean for m in members], axis=0))
    # the CRPS of the whole mixture, every member's components at once, in closed form
    means = [c.mean() for c in dist.components]
    stds = [c.std() for c in dist.components]
    np.testing.assert_allclose(dist.crps(Y[:10]), gaussian_mixture_crps(means, stds, dist.weights, Y[:10]),
                               rtol=1e-12)
    counts = DeepEnsembleRegressor(counts_model, n_estimators=2, random_state=0).fit(X, COUNTS)
    assert counts.predict_distribution(X[:3]).discrete


def test_draws_have_the_shape_of_the_predictions_with_one_row_one_or_two_targets(default_model, counts_model):
    """m.sample(X[:1], n_samples=5) returned shape () (one target), lost the row axis (two targets) and raised
    "all input arrays must have the same shape" with the linear part."""
    assert default_model.sample(X[:1], n_samples=5, random_state=0).shape == (5, 1)
    assert default_model.sample(X[:1], random_state=0).shape == (1, 1)
    one_member = _tiny(n_members=1, linear_weight=0).fit(X, Y)
    assert one_member.sample(X[:1], n_samples=5).shape == (5, 1)
    two = _tiny(n_members=1, linear_weight=0.5).fit(X, np.column_stack([Y, -Y]))
    assert two.sample(X[:1], n_samples=5).shape == (5, 1, 2)
    assert two.sample(X[:3], n_samples=1).shape == (1, 3, 2)
    column = _tiny(n_members=1, linear_weight=0).fit(X, Y[:, None])
    assert column.sample(X[:1], n_samples=4).shape == (4, 1, 1)
    assert counts_model.sample(X[:1], n_samples=5).shape == (5, 1, 2)
    ensemble = DeepEnsembleRegressor(_tiny(n_members=1), n_estimators=2, random_state=0).fit(X, Y)
    assert ensemble.sample(X[:1], n_samples=5).shape == (5, 1)


def test_closed_loop_simulation_with_a_gaussian_last_step():
    """simulate_recurrent raised numpy's "all input arrays must have the same shape" with a Gaussian model."""
    frame = pd.DataFrame({"speed": X[:, 0], "n1": COUNTS[:, 0]})
    model = make_pipeline(SpikeHistory(counts=["n1"], n_lags=2, basis=None), _tiny(linear_weight=0.5))
    model.fit(frame, frame["n1"])
    counts, rates = simulate_recurrent(model, frame[["speed"]].iloc[:6], random_state=0)
    assert counts.shape == rates.shape == (6, 1) and np.isfinite(rates.to_numpy()).all()


def test_a_one_column_frame_and_a_series_give_the_same_report(default_model):
    """(n, 1) targets broadcast against (n,) predictions: the RMSE, CRPS and coverage of a one-column DataFrame
    were those of every row against every prediction."""
    as_series = uncertainty_report(default_model, X, pd.Series(Y))
    as_frame = uncertainty_report(default_model, X, pd.DataFrame({"y": Y}))
    assert as_frame == pytest.approx(as_series, rel=1e-12)
    assert as_series == pytest.approx(uncertainty_report(default_model, X, Y[:, None]), rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda m, y: _tiny().fit(X, y),
    lambda m, y: m.log_likelihood(X, y),
    lambda m, y: m.score(X, y),
    lambda m, y: uncertainty_report(m, X, y),
])
def test_text_targets_get_a_clear_error(default_model, call):
    text = Y.astype(str)
    text[3] = "n/a"
    with pytest.raises(ValueError, match="y must be numeric; found str values"):
        call(default_model, text)


def test_score_validates_its_sample_weight(default_model, counts_model):
    for model, y in ((default_model, Y), (counts_model, COUNTS)):
        with pytest.raises(ValueError, match="[Nn]egative"):
            model.score(X, y, sample_weight=np.r_[-1.0, np.ones(59)])
        with pytest.raises(ValueError):
            model.score(X, y, sample_weight=np.ones(5))


def test_the_ensemble_and_the_simulation_call_no_private_method_of_another_object():
    for module in ("ensemble.py", "simulation.py"):
        source = Path(sklearn_costs.__file__).with_name(module).read_text()
        calls = re.findall(r"\b(?!self\b)(\w+)\._[a-z]\w*\(", source)
        assert calls == [], f"{module} calls private methods of {calls}"


def test_bad_levels_and_counts_of_draws_are_refused(default_model):
    dist = default_model.predict_distribution(X[:2])
    with pytest.raises(ValueError, match="coverage must be in"):
        dist.interval(1.0)
    with pytest.raises(ValueError, match="quantile levels must be in"):
        dist.ppf(0.0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        dist.sample(0)
    with pytest.raises(ValueError, match=r"expected \(2, 1\)"):
        dist.cdf(Y[:3])


@pytest.mark.parametrize("loss", ["negative_binomial", "zero_inflated_poisson"])
def test_other_count_losses_give_their_distribution(loss):
    model = PoissonSpikeRegressor(loss=loss, hidden_layer_sizes=(8,), n_members=2, max_epochs=2, random_state=0)
    dist = model.fit(X, COUNTS).predict_distribution(X[:10])
    draws = dist.sample(10_000, random_state=0)
    np.testing.assert_allclose(draws.std(0), dist.std, rtol=0.08)
    monte_carlo = np.abs(draws - COUNTS[:10]).mean(0) - 0.5 * _sorted_pairs_mean_abs(draws)
    np.testing.assert_allclose(dist.crps(COUNTS[:10]), monte_carlo, atol=0.04)
    upper = dist.interval(0.8)[1]
    assert np.all(dist.cdf(upper) >= 0.9) and np.all(dist.cdf(upper - 1) < 0.9)


@pytest.mark.parametrize("loss", ["laplace", "student_t"])
def test_mixtures_of_other_continuous_losses_and_the_linear_part(loss):
    dist = _tiny(loss=loss, n_members=2, linear_weight=0.3).fit(X, Y).predict_distribution(X[:10])
    assert len(dist.components) == 3
    draws = dist.sample(40_000, random_state=0)
    np.testing.assert_allclose(dist.crps(Y[:10]).mean(), crps_from_samples(Y[:10], draws).mean(), rtol=0.02)
    lower = dist.interval(0.5)[0]
    np.testing.assert_allclose(dist.cdf(lower), 0.25, atol=1e-9)


def test_a_mixture_refuses_counts_with_continuous_values_and_weights_that_are_not_a_distribution(counts_model):
    gaussian = _tiny(n_members=1, linear_weight=0).fit(X, COUNTS).predict_distribution(X[:5])
    counts = counts_model.predict_distribution(X[:5])
    with pytest.raises(ValueError, match="distributions of one kind"):
        PredictiveDistribution.mixture([counts, gaussian])
    for weights in ([1.0, 1.0], [1.5, -0.5], [1.0]):
        with pytest.raises(ValueError, match="one non-negative weight per distribution"):
            PredictiveDistribution.mixture([gaussian, gaussian], weights)
    mixed = PredictiveDistribution.mixture([gaussian, gaussian], [0.25, 0.75])
    np.testing.assert_allclose(mixed.mean, gaussian.mean, rtol=1e-6)


@pytest.mark.parametrize("n_members", [1, 2])
def test_editing_what_a_distribution_returns_changes_nothing_in_it(n_members):
    dist = _tiny(n_members=n_members, linear_weight=0).fit(X, Y).predict_distribution(X[:5])
    mean, std, cdf, crps = dist.mean.copy(), dist.std.copy(), dist.cdf(np.zeros(5)), dist.crps(Y[:5])
    dist.mean[:] += 100
    dist.std[:] = 0
    for value in dist.params.values():
        value[...] += 100
    np.testing.assert_array_equal(dist.mean, mean)
    np.testing.assert_array_equal(dist.std, std)
    np.testing.assert_array_equal(dist.cdf(np.zeros(5)), cdf)
    np.testing.assert_array_equal(dist.crps(Y[:5]), crps)


def test_a_sample_crps_needs_two_draws_or_more():
    with pytest.raises(ValueError, match="at least 2 draws"):
        crps_from_samples([0.0], np.zeros((1, 1)))  # one draw has no spread: its estimate was NaN
    assert crps_from_samples([0.0, 1.0], np.array([[0.0, 1.0], [0.0, 1.0]])).tolist() == [0.0, 0.0]
