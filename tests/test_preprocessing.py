import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.preprocessing import LagFeatures, bin_covariates, bin_spikes, raised_cosine_basis

# ---------------------------------------------------------------------------------------------------- binning


def test_long_frame_dict_and_list_give_the_same_counts():
    frame = pd.DataFrame({"neuron": ["b", "a", "a", "b", "a"], "time": [0.12, 0.01, 0.049, 0.051, 0.3]})
    as_dict = {"a": [0.3, 0.01, 0.049], "b": [0.051, 0.12]}
    as_list = [[0.01, 0.049, 0.3], [0.12, 0.051]]
    c1 = bin_spikes(frame, 0.05, 0.0, 0.35)
    c2 = bin_spikes(as_dict, 0.05, 0.0, 0.35)
    c3 = bin_spikes(as_list, 0.05, 0.0, 0.35)
    assert list(c1.columns) == ["a", "b"] and list(c3.columns) == [0, 1]
    np.testing.assert_array_equal(c1.to_numpy(), c2[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(c1.to_numpy(), c3.to_numpy())
    np.testing.assert_array_equal(c1["a"], [2, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(c1["b"], [0, 1, 1, 0, 0, 0, 0])
    assert c1.index.name == "bin_start" and c1.dtypes.map(lambda d: d.kind in "iu").all()
    np.testing.assert_allclose(c1.index, np.arange(7) * 0.05)


def test_a_spike_on_a_bin_edge_counts_in_the_bin_it_starts():
    counts = bin_spikes({"n": [0.0, 0.05, 0.1]}, 0.05, 0.0, 0.15)
    np.testing.assert_array_equal(counts["n"], [1, 1, 1])


def test_unsorted_times_are_fine():
    rng = np.random.default_rng(0)
    times = rng.uniform(0, 10, size=1000)
    sorted_counts = bin_spikes({"n": np.sort(times)}, 0.05, 0.0, 10.0)
    shuffled_counts = bin_spikes({"n": times}, 0.05, 0.0, 10.0)
    pd.testing.assert_frame_equal(sorted_counts, shuffled_counts)
    assert sorted_counts["n"].sum() == 1000
    np.testing.assert_array_equal(sorted_counts["n"], np.histogram(times, bins=np.linspace(0, 10, 201))[0])


def test_spikes_outside_the_window_are_dropped_and_counted():
    with pytest.warns(UserWarning, match="3 of 5 spikes fall outside the window"):
        counts = bin_spikes({"n": [0.01, 0.2, 1.5, 2.0, 0.11]}, 0.05, 0.1, 1.0)
    assert counts["n"].sum() == 2 and len(counts) == 18


def test_default_window_spans_the_spikes():
    counts = bin_spikes({"n": [1.02, 1.26]}, 0.05)
    assert counts.index[0] == pytest.approx(1.0) and counts["n"].sum() == 2


def test_neurons_without_spikes_keep_a_column():
    counts = bin_spikes({"a": [0.01]}, 0.05, 0.0, 0.1, neurons=["a", "silent"])
    np.testing.assert_array_equal(counts["silent"], [0, 0])


@pytest.mark.parametrize("bad, shown", [(-0.5, "-0.5"), (np.nan, "nan"), (np.inf, "inf")])
def test_negative_nan_or_infinite_times_raise(bad, shown):
    with pytest.raises(ValueError, match=f"finite and non-negative seconds; found {shown} at position 1 "
                                         r"\(neuron 'x'\)"):
        bin_spikes({"x": [0.1, bad]}, 0.05, 0.0, 1.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="bin_width must be a positive number"):
        bin_spikes({"n": [0.1]}, 0.0)
    with pytest.raises(ValueError, match=r"needs columns 'neuron' and 'time'; missing \['time'\]"):
        bin_spikes(pd.DataFrame({"neuron": [1], "t": [0.1]}))
    with pytest.raises(TypeError, match="spikes must be a DataFrame"):
        bin_spikes(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="must be after t_start"):
        bin_spikes({"n": [0.1]}, 0.05, 1.0, 0.5)


def test_covariates_are_averaged_onto_bins_and_gaps_interpolated():
    cov = pd.DataFrame({"speed": [1.0, 3.0, 10.0, 20.0], "lean": [0.0, 0.0, 1.0, 1.0]},
                       index=[0.0, 0.04, 0.15, 0.19])
    out = bin_covariates(cov, [0.0, 0.05, 0.1, 0.15], bin_width=0.05)
    np.testing.assert_allclose(out["speed"], [2.0, 2.0 + (15.0 - 2.0) / 3, 2.0 + 2 * (15.0 - 2.0) / 3, 15.0])
    np.testing.assert_allclose(out["lean"].iloc[[0, 3]], [0.0, 1.0])
    assert out.index.name == "bin_start"


@pytest.mark.parametrize("bin_starts", [[0.0, 0.05], [0.0, 0.05, 0.1], [0.0, 0.05, 0.1, 0.15]])
def test_covariates_skip_missing_samples_in_the_last_bins(bin_starts):
    # issue 29 item 7: bin 0.05 holds a NaN sample and 7.0; its value is 7.0 whether it is the last bin or empty
    # bins follow it (which hold 7.0, the last value), and the other column is unaffected
    cov = pd.DataFrame({"speed": [2.0, np.nan, 7.0], "x": [1.0, 2.0, 3.0]}, index=[0.0, 0.05, 0.07])
    out = bin_covariates(cov, bin_starts, bin_width=0.05)
    np.testing.assert_allclose(out["speed"], [2.0] + [7.0] * (len(bin_starts) - 1))
    np.testing.assert_allclose(out["x"], [1.0] + [2.5] * (len(bin_starts) - 1))


def test_a_bin_whose_samples_are_all_missing_is_interpolated_and_an_empty_column_stays_nan():
    cov = pd.DataFrame({"speed": [1.0, np.nan, 5.0], "lost": [np.nan] * 3}, index=[0.0, 0.05, 0.1])
    out = bin_covariates(cov, [0.0, 0.05, 0.1], bin_width=0.05)
    np.testing.assert_allclose(out["speed"], [1.0, 3.0, 5.0])
    assert out["lost"].isna().all()


def test_covariates_with_a_timedelta_index():
    cov = pd.DataFrame({"speed": [1.0, 3.0]}, index=pd.to_timedelta([0.0, 0.06], unit="s"))
    np.testing.assert_allclose(bin_covariates(cov, [0.0, 0.05])["speed"], [1.0, 3.0])


# -------------------------------------------------------------------------------------------------------- lags


def test_lags_edge_zero_and_drop():
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    edge = LagFeatures(n_lags=2).fit_transform(X)
    np.testing.assert_array_equal(edge, [[1, 10, 1, 10, 1, 10], [2, 20, 1, 10, 1, 10], [3, 30, 2, 20, 1, 10]])
    zero = LagFeatures(n_lags=1, fill="zero").fit_transform(X)
    np.testing.assert_array_equal(zero[:, 2:], [[0, 0], [1, 10], [2, 20]])
    drop = LagFeatures(n_lags=2, fill="drop").fit_transform(X)
    np.testing.assert_array_equal(drop, [[3, 30, 2, 20, 1, 10]])
    only_past = LagFeatures(n_lags=1, include_current=False).fit_transform(X)
    np.testing.assert_array_equal(only_past, [[1, 10], [1, 10], [2, 20]])


def test_lags_before_the_first_row_can_be_marked_missing():
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    raw = LagFeatures(n_lags=2, fill="nan").fit_transform(X)
    np.testing.assert_array_equal(raw[:, 2:], [[np.nan, np.nan, np.nan, np.nan], [1, 10, np.nan, np.nan],
                                              [2, 20, 1, 10], [3, 30, 2, 20]])
    # on a basis, a bump is missing where a lag it weighs is missing (row r lacks the lags beyond r)
    bumps = LagFeatures(n_lags=3, basis="raised_cosine", n_basis=2, fill="nan", include_current=False)
    out = bumps.fit_transform(X[:, :1])
    basis = bumps._basis()  # (lags, bumps)
    missing = [[bool((basis[row:, b] != 0).any()) for b in range(2)] for row in range(4)]
    assert missing[0] == [True, True] and missing[3] == [False, False] and missing[1] != missing[2]
    np.testing.assert_array_equal(np.isnan(out), missing)
    np.testing.assert_allclose(out[3], basis.T @ [3.0, 2.0, 1.0])
    # a model that handles missing values takes them as they are
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    series = rng.normal(size=(200, 1))
    make_pipeline(LagFeatures(n_lags=3, fill="nan"), HistGradientBoostingRegressor(max_iter=5)).fit(
        series, rng.normal(size=200)).predict(series[:5])


def test_lag_feature_names_and_pandas_output():
    X = pd.DataFrame({"speed": [1.0, 2.0, 3.0], "lean": [0.1, 0.2, 0.3]}, index=[10, 11, 12])
    out = LagFeatures(n_lags=2).set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == ["speed", "lean", "speed_lag1", "lean_lag1", "speed_lag2", "lean_lag2"]
    assert list(out.index) == [10, 11, 12]
    basis = LagFeatures(n_lags=8, basis="raised_cosine", n_basis=3).fit(X)
    assert list(basis.get_feature_names_out()) == ["speed", "lean", "speed_hist1", "lean_hist1", "speed_hist2",
                                                    "lean_hist2", "speed_hist3", "lean_hist3"]
    assert list(LagFeatures().fit(X.to_numpy()).get_feature_names_out()) == ["x0", "x1", "x0_lag1", "x1_lag1"]


def test_raised_cosine_history_is_a_smooth_projection_of_the_lags():
    B = raised_cosine_basis(10, 4)
    assert B.shape == (10, 4) and (B >= 0).all() and (B <= 1).all()
    np.testing.assert_allclose(B.sum(1), 1.0)  # the bumps tile the lags
    X = np.arange(20.0)[:, None]
    out = LagFeatures(n_lags=10, basis="raised_cosine", n_basis=4, include_current=False).fit_transform(X)
    lags = LagFeatures(n_lags=10, include_current=False).fit_transform(X)
    np.testing.assert_allclose(out, lags @ B)


def test_lags_as_the_first_step_of_a_pipeline():
    rng = np.random.default_rng(0)
    x = np.convolve(rng.normal(size=1200), np.ones(10) / 10, mode="same")[:, None]
    y = rng.poisson(np.exp(0.3 + 2.0 * np.roll(x[:, 0], 3)))  # the neuron follows the covariate 3 bins late
    pipe = make_pipeline(LagFeatures(n_lags=4), PoissonSpikeRegressor(hidden_layer_sizes=(), optimizer="lbfgs",
                                                                      lr=1.0, batch_size=-1, max_epochs=20,
                                                                      early_stopping=False, random_state=0))
    pipe.fit(x, y)
    coef = pipe[-1].coef_
    assert np.argmax(np.abs(coef)) == 3 and coef[3] == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize("params, message",
                         [({"n_lags": 0}, r"'n_lags' parameter of LagFeatures must be an int in the range \[1, inf\)"),
                          ({"n_basis": 0}, r"'n_basis' parameter of LagFeatures must be an int in the range \[1, "),
                          ({"fill": "pad"}, "'fill' parameter of LagFeatures must be a str among .*'drop'"),
                          ({"basis": "spline"}, "'basis' parameter of LagFeatures must be a str among "
                                                "{'raised_cosine'} or None")])
def test_lag_parameters_are_checked(params, message):
    with pytest.raises(ValueError, match=message):
        LagFeatures(**params).fit(np.zeros((3, 1)))
