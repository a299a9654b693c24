"""Spike history and coupling (SpikeHistory), trials and gaps (segment_labels, trial_col), and the closed-loop
simulation of a model with history (simulate_recurrent)."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_costs import PoissonSpikeRegressor, simulate_recurrent
from sklearn_costs.preprocessing import LagFeatures, SpikeHistory, raised_cosine_basis, segment_labels

NEURONS = ["a", "b", "c"]


def _recording(n_bins, seed=0, n_neurons=3):
    """Two smooth covariates and Poisson counts of ``n_neurons`` neurons, as one DataFrame."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins)
    X = pd.DataFrame({"speed": np.sin(t / 40.0 + rng.uniform(0, 6)) + 0.3 * rng.normal(size=n_bins),
                      "lean": np.cos(t / 97.0 + rng.uniform(0, 6))})
    counts = rng.poisson(np.exp(-0.5 + X.to_numpy() @ rng.normal(0, 0.5, size=(2, n_neurons))))
    return X, pd.DataFrame(counts, columns=NEURONS[:n_neurons])


def _coupled_glm_recording(n_bins, seed):
    """Covariates and counts of 3 neurons drawn bin by bin from a coupled GLM: covariate weights ``W``, a
    refractory self-history filter on lags 1..5 and weak coupling."""
    X, _ = _recording(n_bins, seed)
    rng = np.random.default_rng(seed + 100)
    W = np.array([[0.8, -0.3], [-0.5, 0.6], [0.2, 0.9]])
    base = np.log([0.5, 0.8, 0.3])
    self_filter = -1.5 * np.exp(-np.arange(5) / 1.0)
    coupling = np.array([[0, 0.3, 0], [0, 0, -0.4], [0.25, 0, 0]])
    x, Y = X.to_numpy(), np.zeros((n_bins, 3))
    for t in range(n_bins):
        eta = base + W @ x[t]
        for j in range(1, min(5, t) + 1):
            eta = eta + self_filter[j - 1] * Y[t - j] + 0.5 * np.exp(-(j - 1)) * (coupling @ Y[t - j])
        Y[t] = rng.poisson(np.exp(eta))
    return X, pd.DataFrame(Y.astype(np.int64), columns=NEURONS), self_filter


# ------------------------------------------------------------------------------------------------- leak-free


@settings(max_examples=40, deadline=None)
@given(n_bins=st.integers(2, 40), n_lags=st.integers(1, 12), basis=st.sampled_from([None, "raised_cosine"]),
       t=st.integers(0, 39), seed=st.integers(0, 1000))
def test_features_of_bin_t_never_depend_on_the_counts_of_bin_t_or_later(n_bins, n_lags, basis, t, seed):
    t = t % n_bins
    n_lags = max(n_lags, 3) if basis else n_lags
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"speed": rng.normal(size=n_bins), "a": rng.poisson(2.0, n_bins), "b": rng.poisson(2.0, n_bins)})
    history = SpikeHistory(counts=["a", "b"], n_lags=n_lags, basis=basis, n_basis=3).fit(X)
    before = history.transform(X)
    changed = X.copy()
    changed.loc[t:, ["a", "b"]] += 1 + rng.poisson(3.0, size=(n_bins - t, 2))  # bin t's counts and every later one
    after = history.transform(changed)
    np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
    if t + 1 < n_bins:  # the change is seen, one bin later
        assert not np.array_equal(after[t + 1], before[t + 1])


def test_the_prediction_of_bin_t_does_not_change_with_its_own_count():
    X, Y = _recording(600)
    data = pd.concat([X, Y], axis=1)
    model = make_pipeline(SpikeHistory(counts=NEURONS, n_lags=5),
                          PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0))
    model.fit(data, Y)
    changed = data.copy()
    changed.loc[300, NEURONS] = [9, 9, 9]
    before, after = model.predict(data), model.predict(changed)
    np.testing.assert_array_equal(after[:301], before[:301])
    assert not np.allclose(after[301:306], before[301:306])  # ... it is the history of the next bins


def test_lags_start_at_one_and_the_raised_cosine_projects_them():
    X = pd.DataFrame({"speed": [0.5, 1.0, 1.5, 2.0], "n1": [1, 0, 2, 0]})
    raw = SpikeHistory(counts=["n1"], n_lags=2, basis=None).fit_transform(X)
    np.testing.assert_array_equal(raw, [[0.5, 0, 0], [1.0, 1, 0], [1.5, 0, 1], [2.0, 2, 0]])
    counts = np.random.default_rng(0).poisson(1.0, size=(50, 2))
    smooth = SpikeHistory(n_lags=8, n_basis=3).fit_transform(counts)
    lags = SpikeHistory(n_lags=8, basis=None).fit_transform(counts)  # columns: lag-major, neuron-minor
    B = raised_cosine_basis(8, 3)
    expected = np.einsum("tln,lb->tbn", lags.reshape(50, 8, 2), B).reshape(50, 6)
    np.testing.assert_allclose(smooth, expected)


def test_feature_names_positions_and_pandas_output():
    X = pd.DataFrame({"speed": [0.1, 0.2, 0.3], "n1": [0, 1, 2], "lean": [1.0, 2.0, 3.0], "n2": [3, 0, 1]},
                     index=[10, 11, 12])
    history = SpikeHistory(counts=["n1", "n2"], n_lags=2, basis=None).set_output(transform="pandas")
    out = history.fit_transform(X)
    assert list(out.columns) == ["speed", "lean", "n1_lag1", "n2_lag1", "n1_lag2", "n2_lag2"]
    assert list(out.index) == [10, 11, 12]
    by_position = SpikeHistory(counts=[1, 3], n_lags=2, basis=None).fit(X.to_numpy())
    np.testing.assert_array_equal(by_position.transform(X.to_numpy()), out.to_numpy())
    assert list(SpikeHistory(n_basis=2).fit(X[["n1"]]).get_feature_names_out()) == ["n1_hist1", "n1_hist2"]


@pytest.mark.parametrize("counts, message", [
    (["n9"], "counts names 'n9', which is not a column of X"),
    ([5], "counts names 5, which is not a column of X"),  # a DataFrame's columns go by label
    (["n1", "n1"], "counts lists a column twice"),
])
def test_bad_count_columns_are_refused(counts, message):
    with pytest.raises(ValueError, match=message):
        SpikeHistory(counts=counts).fit(pd.DataFrame({"speed": [0.1, 0.2], "n1": [0, 1]}))


def test_count_columns_must_hold_counts():
    X = pd.DataFrame({"speed": [0.1, 0.2, 0.3], "n1": [0, 1, -1]})
    with pytest.raises(ValueError, match=r"column 'n1' of X is a spike-count column .* found -1.0 at row 2"):
        SpikeHistory(counts=["n1"]).fit(X)
    history = SpikeHistory(counts=["n1"]).fit(X.iloc[:2])
    with pytest.raises(ValueError, match="n_basis=4 raised-cosine bumps cannot be told apart on n_lags=2"):
        SpikeHistory(n_lags=2).fit(X.iloc[:2])
    with pytest.raises(ValueError, match="found 0.5 at row 0"):
        history.transform(pd.DataFrame({"speed": [0.1], "n1": [0.5]}))


# ------------------------------------------------------------------------------------------- trials and gaps


def test_segment_labels_from_gaps_and_epochs():
    times = np.round(np.r_[np.arange(0, 1, 0.05), np.arange(3, 4, 0.05)], 9)
    np.testing.assert_array_equal(segment_labels(times), np.repeat([0, 1], 20))
    assert (segment_labels(times, max_gap=None) == 0).all()
    epochs = pd.DataFrame({"start": [0.0, 0.5, 3.0], "end": [0.5, 0.8, 3.5]})
    labels = segment_labels(times, epochs=epochs)
    np.testing.assert_array_equal(labels, np.r_[np.repeat([0, 1, -1], [10, 6, 4]), np.repeat([2, -1], 10)])
    with pytest.raises(ValueError, match="times must increase"):
        segment_labels([0.0, 0.1, 0.1])
    with pytest.raises(ValueError, match="epoch 0 ends"):
        segment_labels(times, epochs=[[1.0, 0.5]])


@pytest.mark.parametrize("make", [
    lambda: SpikeHistory(counts=["a", "b"], n_lags=4, basis=None, trial_col="trial"),
    lambda: SpikeHistory(counts=["a", "b"], n_lags=6, trial_col="trial"),
    lambda: LagFeatures(n_lags=3, trial_col="trial"),
    lambda: LagFeatures(n_lags=3, fill="zero", basis="raised_cosine", n_basis=2, trial_col="trial"),
    lambda: LagFeatures(n_lags=3, fill="nan", basis="raised_cosine", n_basis=2, trial_col="trial"),
], ids=["spike-lags", "spike-basis", "lags-edge", "lags-zero-basis", "lags-nan-basis"])
def test_no_lag_crosses_a_trial_boundary(make):
    rng = np.random.default_rng(0)
    trials = [pd.DataFrame({"speed": rng.normal(size=n), "a": rng.poisson(2.0, n), "b": rng.poisson(1.0, n)})
              for n in (7, 2, 12)]
    # the same label twice, apart: two separate segments all the same
    together = pd.concat([t.assign(trial=label) for t, label in zip(trials, ["x", "y", "x"])], ignore_index=True)
    joined = make().fit(together).transform(together)
    apart = np.concatenate([make().set_params(trial_col=None).fit(t).transform(t) for t in trials])
    np.testing.assert_array_equal(joined, apart)
    names = make().fit(together).get_feature_names_out()
    assert "trial" not in names and len(names) == joined.shape[1]


def test_lag_features_drop_the_incomplete_rows_of_every_trial():
    X = pd.DataFrame({"x": np.arange(10.0), "trial": np.repeat([0, 1], [4, 6])})
    out = LagFeatures(n_lags=2, fill="drop", trial_col="trial").fit_transform(X)
    np.testing.assert_array_equal(out[:, 0], [2, 3, 6, 7, 8, 9])
    np.testing.assert_array_equal(out[:, 1], [1, 2, 5, 6, 7, 8])


def test_trial_column_by_position_and_errors():
    X = np.c_[np.arange(6.0), np.repeat([0, 1], 3)]
    out = LagFeatures(n_lags=1, fill="zero", trial_col=1).fit_transform(X)
    np.testing.assert_array_equal(out, [[0, 0], [1, 0], [2, 1], [3, 0], [4, 3], [5, 4]])
    with pytest.raises(ValueError, match="trial_col='trial' names a column, but X has no column names"):
        LagFeatures(trial_col="trial").fit(X)
    with pytest.raises(ValueError, match="trial_col='trial' is not a column of X"):
        LagFeatures(trial_col="trial").fit(pd.DataFrame({"x": [1.0]}))


def test_by_trial_cross_validation_of_a_pipeline_with_history():
    X, Y = _recording(900)
    data = pd.concat([X, Y], axis=1).assign(trial=np.repeat(np.arange(6), 150))
    model = make_pipeline(SpikeHistory(counts=NEURONS, n_lags=5, trial_col="trial"),
                          PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0))
    scores = cross_val_score(model, data, Y, groups=data["trial"], cv=GroupKFold(n_splits=3))
    assert np.isfinite(scores).all()


# -------------------------------------------------------------------------------- coupling filters of a GLM


def test_a_glm_with_history_recovers_the_refractory_filter():
    X, Y, self_filter = _coupled_glm_recording(12_000, seed=0)
    history = SpikeHistory(counts=NEURONS, n_lags=5, basis=None)
    glm = PoissonSpikeRegressor(hidden_layer_sizes=(), optimizer="lbfgs", lr=1.0, batch_size=-1, max_epochs=50,
                                early_stopping=False, random_state=0)
    model = make_pipeline(history, glm).fit(pd.concat([X, Y], axis=1), Y)
    filters = history.filters(glm.coef_)
    assert filters.shape == (5, 9)
    for i, name in enumerate(NEURONS):
        np.testing.assert_allclose(filters[(i, name)], self_filter, atol=0.35)
    assert filters[(0, "b")].iloc[0] == pytest.approx(0.15, abs=0.12)  # coupling b -> a at lag 1: 0.5 * 0.3
    assert model.score(pd.concat([X, Y], axis=1), Y) > 0.1


def test_filters_on_a_basis_are_the_basis_weighted_by_the_coefficients():
    counts = np.random.default_rng(0).poisson(1.0, size=(30, 2))
    history = SpikeHistory(n_lags=6, n_basis=3).fit(counts)
    coef = np.arange(6.0)[None, :]  # bumps 1..3 of neuron 0: 0, 2, 4; of neuron 1: 1, 3, 5
    filters = history.filters(coef)
    np.testing.assert_allclose(filters[(0, "x0")], history.basis_ @ [0.0, 2.0, 4.0])
    np.testing.assert_allclose(filters[(0, "x1")], history.basis_ @ [1.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="coef has 5 columns; this SpikeHistory outputs 6"):
        history.filters(np.zeros(5))


# --------------------------------------------------------------------------------------------- closed loop


def _history_model():
    return make_pipeline(SpikeHistory(counts=NEURONS, n_lags=5, basis=None, trial_col="trial"), StandardScaler(),
                         PoissonSpikeRegressor(hidden_layer_sizes=(16,), n_members=1, batch_size=128, lr=0.01,
                                               max_epochs=15, random_state=0))


def _in_trials(X, length=300):
    return X.assign(trial=np.arange(len(X)) // length)


def test_a_model_fitted_on_its_own_closed_loop_simulation_recovers_its_rates():
    X, Y, _ = _coupled_glm_recording(6000, seed=1)
    original = _history_model().fit(pd.concat([_in_trials(X), Y], axis=1), Y)
    # 5 minutes of 50 ms bins in 20 trials of 300, simulated a bin of every trial at a time
    covariates = _in_trials(_recording(6000, seed=2)[0])
    counts, rates = simulate_recurrent(original, covariates, random_state=0)
    assert list(counts.columns) == NEURONS and counts.index.equals(covariates.index)
    refit = _history_model().fit(pd.concat([covariates, counts], axis=1), counts)
    held_out = _in_trials(_recording(1500, seed=3)[0])
    test_counts, test_rates = simulate_recurrent(original, held_out, random_state=1)
    predicted = refit.predict(pd.concat([held_out, test_counts], axis=1))
    for j, name in enumerate(NEURONS):
        assert np.corrcoef(predicted[:, j], test_rates[name])[0, 1] > 0.9
    # in closed loop the history matters: the rates given the simulated past are those the pipeline computes
    np.testing.assert_allclose(original.predict(pd.concat([held_out, test_counts], axis=1)), test_rates, rtol=1e-5)


def test_simulation_restarts_history_at_each_trial_and_is_seeded():
    X, Y = _recording(400)
    data = pd.concat([X, Y], axis=1).assign(trial=np.repeat([0, 1], 200))
    model = make_pipeline(SpikeHistory(counts=NEURONS, n_lags=4, n_basis=2, trial_col="trial"),
                          PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0)).fit(data, Y)
    covariates = data[["speed", "lean", "trial"]]
    counts, rates = simulate_recurrent(model, covariates, random_state=0)
    again, _ = simulate_recurrent(model, covariates, random_state=0)
    pd.testing.assert_frame_equal(counts, again)
    np.testing.assert_allclose(model.predict(pd.concat([covariates, counts], axis=1)), rates, rtol=1e-5)
    as_array, _ = simulate_recurrent(make_pipeline(SpikeHistory(n_lags=4, n_basis=2), model[-1]).fit(Y, Y),
                                     np.empty((5, 0)), random_state=0)
    assert as_array.shape == (5, 3)


def test_simulation_refuses_models_it_cannot_run():
    X, Y = _recording(200)
    with pytest.raises(TypeError, match="first step is a SpikeHistory"):
        simulate_recurrent(PoissonSpikeRegressor(), X)
    one = make_pipeline(SpikeHistory(counts=["a"]), PoissonSpikeRegressor(max_epochs=2, random_state=0))
    one.fit(pd.concat([X, Y[["a"]]], axis=1), Y)
    with pytest.raises(ValueError, match="predicts 3 targets but its history has 1 count column"):
        simulate_recurrent(one, X)
    own = make_pipeline(SpikeHistory(counts=["a"]), PoissonSpikeRegressor(max_epochs=2, random_state=0))
    own.fit(pd.concat([X, Y[["a"]]], axis=1), Y["a"])
    with pytest.raises(ValueError, match=r"X lacks the covariate columns \['lean'\]"):
        simulate_recurrent(own, X[["speed"]])
    counts, _ = simulate_recurrent(own, X.iloc[:20], random_state=0)  # one neuron and its own history
    assert counts.shape == (20, 1)


def test_a_runaway_simulation_stops_with_an_explanation():
    X, Y = _recording(300)
    model = make_pipeline(SpikeHistory(counts=NEURONS, n_lags=4, basis=None),
                          PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=2, random_state=0))
    model.fit(pd.concat([X, Y], axis=1), Y)
    head = model[-1].net_.module_.head.linear
    with torch.no_grad():  # every neuron's last count excites all of them: a positive feedback loop
        head.weight[:, 2:5] = 3.0
        head.bias[:] = 5.0
    with pytest.raises(RuntimeError, match="the closed-loop simulation ran away at bin .* history feedback is "
                                           "unstable"):
        simulate_recurrent(model, X, random_state=0)


def test_targets_must_be_the_history_columns_in_order():
    X, Y = _recording(200)
    swapped = make_pipeline(SpikeHistory(counts=NEURONS), PoissonSpikeRegressor(max_epochs=2, random_state=0))
    swapped.fit(pd.concat([X, Y], axis=1), Y[["c", "b", "a"]])
    with pytest.raises(ValueError, match=r"targets \['c', 'b', 'a'\] are not its history's count columns"):
        simulate_recurrent(swapped, X)
    lagged = make_pipeline(SpikeHistory(counts=NEURONS), LagFeatures(), PoissonSpikeRegressor(max_epochs=2))
    lagged.fit(pd.concat([X, Y], axis=1), Y)
    with pytest.raises(TypeError, match=r"include \['LagFeatures'\], which look across rows"):
        simulate_recurrent(lagged, X)


def test_a_target_passed_through_with_its_current_count_is_refused():
    X, Y = _recording(200)
    with pytest.raises(ValueError, match="column 'b' of X equals target 1 of y but is not in `counts`"):
        SpikeHistory(counts=["a"]).fit(pd.concat([X, Y], axis=1), Y)
    with pytest.raises(ValueError, match="column 'x3' of X equals target 1 of y"):  # arrays: by the values
        SpikeHistory(counts=[2]).fit(np.c_[X, Y], Y.to_numpy())
    silent = Y.assign(c=0)  # a constant covariate equal to a silent neuron's counts is no leak
    SpikeHistory(counts=["a", "b"]).fit(pd.concat([X.assign(flag=0), silent[["a", "b"]]], axis=1), silent)


def test_count_columns_by_label_or_by_position_around_the_trial_column():
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(12, 2))
    frame = pd.DataFrame({9: rng.normal(size=12), 3: counts[:, 0], 7: counts[:, 1]})
    by_label = SpikeHistory(counts=[3, 7], n_lags=2, basis=None).fit(frame)  # unit keys, as bin_spikes(TsGroup)
    np.testing.assert_array_equal(by_label.counts_, [1, 2])
    array = np.c_[np.repeat([0, 1], 6), counts, frame[9]]  # trial, a, b, speed
    by_position = SpikeHistory(counts=[1, 2], n_lags=2, basis=None, trial_col=0).fit(array)
    np.testing.assert_array_equal(by_position.counts_, [0, 1])  # a and b, not b and speed
    out = by_position.transform(array)
    np.testing.assert_array_equal(out[:, 0], frame[9])
    np.testing.assert_array_equal(out[6, 1:], [0, 0, 0, 0])  # the second trial starts without history
    names = by_position.get_feature_names_out(["trial", "a", "b", "speed"])
    assert list(names) == ["speed", "a_lag1", "b_lag1", "a_lag2", "b_lag2"]
    with pytest.raises(ValueError, match="counts lists column 0, which is the trial_col"):
        SpikeHistory(counts=[0, 1], trial_col=0).fit(array)
    with pytest.raises(ValueError, match="counts is empty"):
        SpikeHistory(counts=[]).fit(array)
    assert segment_labels([]).shape == (0,)


def test_covariate_lags_and_spike_history_side_by_side_in_a_column_transformer():
    from sklearn.compose import ColumnTransformer

    X, Y = _recording(600)
    data = pd.concat([X, Y], axis=1).assign(trial=np.repeat([0, 1, 2], 200))
    features = ColumnTransformer([
        ("history", SpikeHistory(counts=NEURONS, n_lags=4, n_basis=2, trial_col="trial"), NEURONS + ["trial"]),
        ("kinematics", LagFeatures(n_lags=2, trial_col="trial"), ["speed", "lean", "trial"]),
    ])
    model = make_pipeline(features, PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0))
    model.fit(data, Y)
    names = list(model[0].get_feature_names_out())
    assert names[:2] == ["history__a_hist1", "history__b_hist1"] and "kinematics__speed_lag2" in names
    assert len(names) == 3 * 2 + 2 * 3
    changed = data.copy()
    changed.loc[300, NEURONS] = [9, 9, 9]
    np.testing.assert_array_equal(model.predict(changed)[:301], model.predict(data)[:301])
