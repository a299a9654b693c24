import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import d2_tweedie_score
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.losses import PoissonLoss
from sklearn_costs.metrics import neg_log_likelihood_scorer, poisson_d2_per_target
from sklearn_costs.preprocessing import LagFeatures


@pytest.fixture(scope="module")
def population():
    """Three neurons with a nonlinear tuning to two covariates, one over-dispersed."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 2))
    log_rate = np.column_stack([0.5 + np.sin(2 * X[:, 0]), -0.5 + X[:, 1] ** 2 / 2, 0.2 + 0.5 * X[:, 0] * X[:, 1]])
    gain = rng.gamma(2.0, 0.5, size=(3000, 1)) * [0, 0, 1] + [1, 1, 0]
    return X, rng.poisson(np.exp(log_rate) * gain), np.exp(log_rate)


def fit(X, Y, **kw):
    kw.setdefault("random_state", 0)
    kw.setdefault("hidden_layer_sizes", (32, 32))
    kw.setdefault("lr", 5e-3)
    return PoissonSpikeRegressor(**kw).fit(X, Y)


def test_glm_matches_sklearn_poisson_regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4)) * [1, 2, 0.5, 3] + [0, 1, -1, 2]
    y = rng.poisson(np.exp(0.1 + X @ np.array([0.3, -0.2, 0.5, 0.1])))
    ref = PoissonRegressor(alpha=0, tol=1e-10, max_iter=1000).fit(X, y)
    glm = PoissonSpikeRegressor(hidden_layer_sizes=(), optimizer="lbfgs", lr=1.0, batch_size=-1, max_epochs=30,
                                early_stopping=False, random_state=0).fit(X, y)
    np.testing.assert_allclose(glm.coef_, ref.coef_, atol=1e-3)
    np.testing.assert_allclose(glm.intercept_, ref.intercept_, atol=1e-3)
    np.testing.assert_allclose(glm.predict(X), ref.predict(X), rtol=1e-3)


def test_glm_coefficients_only_without_hidden_layers(population):
    X, Y, _ = population
    model = fit(X, Y, max_epochs=2)
    assert not hasattr(model, "coef_")
    assert not hasattr(PoissonSpikeRegressor(hidden_layer_sizes=()), "coef_")
    glm = fit(X, Y, hidden_layer_sizes=(), max_epochs=2)
    assert glm.coef_.shape == (3, 2) and glm.intercept_.shape == (3,)


def test_network_learns_nonlinear_tuning_that_a_glm_cannot(population):
    X, Y, rates = population
    train, test = slice(0, 2400), slice(2400, None)
    model = fit(X[train], Y[train])
    predicted = model.predict(X[test])
    assert predicted.shape == (600, 3) and (predicted > 0).all()
    glm_d2 = np.mean([d2_tweedie_score(Y[test, j], PoissonRegressor(alpha=0).fit(X[train], Y[train, j])
                                       .predict(X[test]), power=1) for j in range(3)])
    assert model.score(X[test], Y[test]) > glm_d2 + 0.1
    assert np.corrcoef(predicted[:, 0], rates[test, 0])[0, 1] > 0.9


def test_score_is_mean_d2_as_sklearn_computes_it(population):
    X, Y, _ = population
    model = fit(X, Y, max_epochs=5)
    pred = model.predict(X)
    per_neuron = [d2_tweedie_score(Y[:, j], pred[:, j], power=1) for j in range(3)]
    np.testing.assert_allclose(model.score_per_neuron(X, Y), per_neuron, rtol=1e-6)
    np.testing.assert_allclose(model.score(X, Y), np.mean(per_neuron), rtol=1e-6)


def test_d2_of_a_silent_neuron_is_undefined_and_left_out():
    y = np.array([[0, 1], [0, 3], [0, 2]])
    pred = np.array([[0.1, 1.0], [0.1, 3.0], [0.1, 2.0]])
    d2 = poisson_d2_per_target(y, pred)
    assert np.isnan(d2[0]) and d2[1] == pytest.approx(1.0)
    # against a training-fold null the silent neuron has a number: 1 - predicted total / null total
    d2 = poisson_d2_per_target(y, pred, y_null=[0.4, 2.0])
    assert d2[0] == pytest.approx(1 - 0.3 / 1.2) and d2[1] == pytest.approx(1.0)


def test_d2_refuses_predictions_of_another_shape_than_the_counts():
    y, pred = np.array([0, 1, 2]), np.array([[0.1, 1.0], [0.1, 3.0], [0.1, 2.0]])
    with pytest.raises(ValueError, match=r"y_true \(3, 1\) and y_pred \(3, 2\) must have the same rows"):
        poisson_d2_per_target(y, pred)  # a 1-D y against two columns was broadcast to a (3, 2) comparison
    with pytest.raises(ValueError, match="one rate per column of y_true"):
        poisson_d2_per_target(pred.round(), pred, y_null=[0.4, 2.0, 1.0])
    np.testing.assert_array_equal(poisson_d2_per_target(y, pred[:, 1]), poisson_d2_per_target(y[:, None], pred[:, 1:]))


def test_log_likelihood_equals_scipy_at_the_predicted_rate(population):
    X, Y, _ = population
    model = fit(X, Y, max_epochs=3, n_members=1)  # one network: one Poisson (the mixture: tests/test_members.py)
    np.testing.assert_allclose(model.log_likelihood(X[:50], Y[:50]),
                               stats.poisson.logpmf(Y[:50], model.predict(X[:50])), rtol=1e-5, atol=1e-6)


def test_negative_binomial_fits_over_dispersed_neuron_better(population):
    X, Y, _ = population
    train, test = slice(0, 2400), slice(2400, None)
    poisson = fit(X[train], Y[train], n_members=1)
    nb = fit(X[train], Y[train], loss="negative_binomial", n_members=1)
    ll_p = poisson.log_likelihood(X[test], Y[test]).mean(0)
    ll_nb = nb.log_likelihood(X[test], Y[test]).mean(0)
    assert ll_nb[2] > ll_p[2] + 0.05  # the gamma-modulated neuron
    dispersion = nb.predict_distribution(X[:1])["dispersion"][0]
    assert dispersion[2] > 5 * dispersion[0]  # learned per neuron: large only where the counts are over-dispersed


def test_sample_draws_counts_around_the_predicted_rate(population):
    X, Y, _ = population
    model = fit(X, Y, max_epochs=3)
    draws = model.sample(X[:100], n_samples=400, random_state=0)
    assert draws.shape == (400, 100, 3) and draws.dtype.kind in "iu"
    np.testing.assert_allclose(draws.mean(0), model.predict(X[:100]), rtol=0.3, atol=0.15)
    np.testing.assert_array_equal(draws, model.sample(X[:100], n_samples=400, random_state=0))


def test_one_neuron_as_a_vector():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = rng.poisson(np.exp(X[:, 0]))
    model = fit(X, y, max_epochs=5)
    assert model.predict(X).shape == (300,)
    assert model.log_likelihood(X, y).shape == (300,)
    assert model.sample(X, n_samples=2).shape == (2, 300)
    assert np.isfinite(model.score(X, y))


def test_all_zero_neuron_trains_without_nan():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    Y = np.column_stack([rng.poisson(np.exp(X[:, 0])), np.zeros(400, int)])
    for loss in ["poisson", "negative_binomial", "zero_inflated_poisson", "mse"]:
        model = fit(X, Y, loss=loss, max_epochs=20)
        pred = model.predict(X)
        assert np.isfinite(pred).all() and (pred > 0).all()
        assert pred[:, 1].max() < 0.05
        assert np.isfinite(model.history_["train_loss"]).all()


@pytest.mark.parametrize(
    "bad, message",
    [(-1, "found -1 at row 7, column 1"), (0.5, "found 0.5 at row 7, column 1"),
     (np.nan, "Input y contains NaN"), (np.inf, "Input y contains infinity")],
)
def test_bad_counts_are_refused(population, bad, message):
    X, Y, _ = population
    Y = Y[:50].astype(float)
    Y[7, 1] = bad
    with pytest.raises(ValueError, match=message):
        fit(X[:50], Y)


def test_wrong_number_of_neurons_when_scoring(population):
    X, Y, _ = population
    model = fit(X, Y, max_epochs=2)
    with pytest.raises(ValueError, match=r"y has shape \(3000, 2\); expected \(3000, 3\)"):
        model.score(X, Y[:, :2])


def test_grid_search_over_losses_with_time_series_folds(population):
    X, Y, _ = population
    search = GridSearchCV(  # one network per fit: the search's plumbing is the point, not the ensemble
        PoissonSpikeRegressor(hidden_layer_sizes=(16,), max_epochs=15, lr=1e-2, batch_size=128, n_members=1,
                              random_state=0),
        {"loss": ["poisson", "negative_binomial", "zero_inflated_poisson", PoissonLoss(rate_link="softplus")]},
        cv=TimeSeriesSplit(n_splits=3),
    ).fit(X[:1500], Y[:1500])
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores > 0).all()
    assert search.best_params_["loss"] == search.cv_results_["params"][int(np.argmax(scores))]["loss"]
    # ranking by log-likelihood is available too
    by_ll = GridSearchCV(PoissonSpikeRegressor(hidden_layer_sizes=(16,), max_epochs=15, batch_size=128, n_members=1,
                                               random_state=0),
                         {"loss": ["poisson", "negative_binomial"]}, cv=TimeSeriesSplit(n_splits=2),
                         scoring=neg_log_likelihood_scorer).fit(X[:1500], Y[:1500])
    assert (by_ll.cv_results_["mean_test_score"] < 0).all()


def test_time_series_split_never_trains_on_the_future():
    X = np.arange(100)[:, None]
    for train, test in TimeSeriesSplit(n_splits=4).split(X):
        assert train.max() < test.min()


def test_pipeline_with_history_features_and_dataframes(population):
    X, Y, _ = population
    frame = pd.DataFrame(X, columns=["lean", "speed"])
    counts = pd.DataFrame(Y, columns=["n1", "n2", "n3"])
    pipe = make_pipeline(LagFeatures(n_lags=2), PoissonSpikeRegressor(hidden_layer_sizes=(16,), max_epochs=5,
                                                                      random_state=0))
    pipe.set_output(transform="pandas").fit(frame, counts)
    model = pipe[-1]
    np.testing.assert_array_equal(model.feature_names_in_,
                                  ["lean", "speed", "lean_lag1", "speed_lag1", "lean_lag2", "speed_lag2"])
    assert np.isfinite(pipe.score(frame, counts))


def test_pickled_model_predicts_identically(population):
    X, Y, _ = population
    model = fit(X, Y, loss="negative_binomial", max_epochs=3)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.log_likelihood(X, Y), model.log_likelihood(X, Y))


def test_counts_beyond_float32_are_refused_before_training():
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = np.arange(50) * 1e38
    with pytest.raises(ValueError, match=r"y holds values up to 4.9e\+39.*float32.*[Rr]escale y"):
        PoissonSpikeRegressor(max_epochs=2).fit(X, y)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32])
def test_counts_stay_in_their_compact_dtype_and_train_on_float32_batches(monkeypatch, dtype):
    from sklearn_costs._training import CostNet

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3)).astype(np.float32)
    Y = rng.poisson(np.exp(0.3 * X[:, :2]), size=(3000, 2)).astype(dtype)
    seen = {}
    train = CostNet.partial_fit  # the one way every fit trains its net

    def spy(self, dataset, y=None, **kwargs):
        seen["y"] = dataset.y
        seen["batch"] = next(iter(self.get_iterator(dataset, training=True)))[1]
        return train(self, dataset, y, **kwargs)

    monkeypatch.setattr(CostNet, "partial_fit", spy)
    model = PoissonSpikeRegressor(hidden_layer_sizes=(8,), n_members=2, max_epochs=3, random_state=0).fit(X, Y)
    # the net trains on the caller's own buffer: no float copy of the whole count matrix (float64 or float32)
    assert seen["y"].dtype == torch.from_numpy(Y).dtype
    assert seen["y"].data_ptr() == Y.__array_interface__["data"][0]
    assert seen["batch"].dtype == torch.float32
    monkeypatch.undo()
    same = PoissonSpikeRegressor(hidden_layer_sizes=(8,), n_members=2, max_epochs=3, random_state=0)
    np.testing.assert_allclose(model.predict(X[:50]), same.fit(X, Y.astype(np.float64)).predict(X[:50]), rtol=1e-6)


@pytest.mark.parametrize("n_ms, sigma", [(20_000, 250.0), (1_500, 250.0), (500, 3.0)])
def test_the_simulated_riders_covariates_are_scipys_periodic_gaussian_smoothing(n_ms, sigma):
    # make_motorcycle_spikes smooths by FFT; shorter than the kernel (1,500 < 2,001 taps), it wraps as scipy does
    from scipy.ndimage import gaussian_filter1d

    from sklearn_costs.datasets.simulated import _smooth_periodic

    noise = np.random.default_rng(0).normal(size=(n_ms, 3))
    np.testing.assert_allclose(_smooth_periodic(noise, sigma), gaussian_filter1d(noise, sigma, axis=0, mode="wrap"),
                               atol=1e-12)


def test_the_output_layers_start_reads_a_sample_of_bounded_size_of_a_wide_count_matrix():
    # a float32 copy of 65,536 rows of 1,000 neurons would be 262 MB; the sample holds at most 2**22 entries
    from sklearn_costs._distribution import INIT_ENTRIES, _init_sample

    counts = torch.from_numpy(np.random.default_rng(0).poisson(2.0, size=(20_000, 1_000)).astype(np.uint8))
    sample = _init_sample(counts)
    assert sample.dtype == torch.float32 and sample.numel() <= INIT_ENTRIES and len(sample) == INIT_ENTRIES // 1_000
    np.testing.assert_allclose(sample.mean(0), counts.float().mean(0), atol=0.1)  # the marginal it starts from
    assert len(_init_sample(counts[:, :10])) == 20_000  # narrow: every row, as before


def test_float32_inputs_get_float32_predictions_without_a_float64_copy_of_the_output():
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    counts = rng.poisson(1.0, size=(300, 40))
    model = PoissonSpikeRegressor(hidden_layer_sizes=(8,), n_members=3, max_epochs=2, random_state=0).fit(X, counts)
    mean32, std32 = model.predict(X, return_std=True)
    mean64, std64 = model.predict(X.astype(np.float64), return_std=True)
    assert mean32.dtype == std32.dtype == np.float32 and mean64.dtype == std64.dtype == np.float64
    np.testing.assert_allclose(mean32, mean64, rtol=1e-6)
    np.testing.assert_allclose(std32, std64, rtol=1e-5)
    assert model.predict(pd.DataFrame(X)).dtype == np.float32  # float32 columns
    assert model.predict(pd.DataFrame(X).astype({0: np.float64})).dtype == np.float64
    distribution = model.predict_distribution(X)
    distribution.mean[:] = 100.0  # the mean is no view of the rates: changing it changes nothing else
    assert (distribution["rate"] < 100).all()
    one = PoissonSpikeRegressor(hidden_layer_sizes=(8,), n_members=1, max_epochs=1, random_state=0).fit(X, counts)
    many = np.repeat(X, 100, axis=0)  # 30,000 x 40 predictions: 4.8 MB as float32, 9.6 MB as float64
    tracemalloc.start()
    predicted = one.predict(many)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert predicted.dtype == np.float32 and peak < 8 * predicted.size
