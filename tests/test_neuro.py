"""The neuroscience ecosystem: pynapple's TsGroup, Tsd and TsdFrame in and out, and NWB files (the neuro extra)."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.pipeline import make_pipeline

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.datasets import load_nwb
from sklearn_costs.preprocessing import LagFeatures, SpikeHistory, bin_covariates, bin_spikes, segment_labels

nap = pytest.importorskip("pynapple", reason="pynapple is not installed (pip install 'sklearn-costs[neuro]')")


def _tsgroup(seed=0, support=None):
    rng = np.random.default_rng(seed)
    units = {k: nap.Ts(np.sort(rng.uniform(0.3, 10.0, n))) for k, n in [(0, 120), (3, 60), (7, 30)]}
    return nap.TsGroup(units, time_support=support) if support is not None else nap.TsGroup(units)


def test_bin_spikes_of_a_tsgroup_matches_pynapples_count():
    tsg = _tsgroup()
    counts = bin_spikes(tsg, bin_width=0.05)
    reference = tsg.count(0.05)  # whole bins from the support's start, indexed by their centres
    assert list(counts.columns) == [0, 3, 7]
    np.testing.assert_array_equal(counts.to_numpy()[: len(reference)], np.asarray(reference))
    np.testing.assert_allclose(counts.index[: len(reference)] + 0.025, reference.t, atol=1e-9)
    assert counts.to_numpy().sum() == 210  # no spike lost: the last, partial bin is kept
    support = tsg.time_support  # {key: Ts}, as dict(tsg) gives, binned on the same window
    from_dict = bin_spikes(dict(tsg), 0.05, t_start=support.start[0], t_stop=support.end[0])
    np.testing.assert_array_equal(from_dict.to_numpy(), counts)


def test_bin_spikes_keeps_only_the_bins_inside_a_tsgroups_epochs():
    tsg = _tsgroup(support=nap.IntervalSet(start=[0.0, 5.0], end=[2.0, 8.0]))
    counts = bin_spikes(tsg, bin_width=0.5)
    np.testing.assert_allclose(counts.index, [0, 0.5, 1, 1.5, 5, 5.5, 6, 6.5, 7, 7.5])
    np.testing.assert_array_equal(counts.to_numpy(), np.asarray(tsg.count(0.5)))
    np.testing.assert_array_equal(segment_labels(counts.index), np.repeat([0, 1], [4, 6]))


def _time_indexed_recording(n_bins=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins) * 0.05
    x = rng.normal(size=(n_bins, 2))
    counts = rng.poisson(np.exp(0.2 + x @ [[0.5, -0.3], [0.2, 0.4]]))
    X = nap.TsdFrame(t=t, d=np.c_[x, counts], columns=["speed", "lean", "n1", "n2"])
    return X, X.loc[["n1", "n2"]]


def test_estimators_take_tsdframes_and_return_them_time_indexed():
    X, Y = _time_indexed_recording()
    covariates = X.loc[["speed", "lean"]]
    model = PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(covariates, Y)
    assert list(model.feature_names_in_) == ["speed", "lean"]
    rates = model.predict(covariates)
    assert isinstance(rates, nap.TsdFrame) and list(rates.columns) == ["n1", "n2"]
    np.testing.assert_array_equal(rates.t, X.t)
    np.testing.assert_array_equal(np.asarray(rates), model.predict(covariates.as_dataframe()))
    mean, std = model.predict(covariates, return_std=True)
    assert isinstance(std, nap.TsdFrame)
    one = PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(covariates, X["n1"])
    assert isinstance(one.predict(covariates), nap.Tsd)
    assert np.isfinite(model.score(covariates, Y))


def test_history_pipelines_run_on_tsdframes_end_to_end():
    X, Y = _time_indexed_recording()
    history = SpikeHistory(counts=["n1", "n2"], n_lags=4, n_basis=2)
    features = history.fit_transform(X)
    assert isinstance(features, nap.TsdFrame) and list(features.columns) == list(history.get_feature_names_out())
    np.testing.assert_array_equal(np.asarray(features), history.transform(X.as_dataframe()))
    lags = LagFeatures(n_lags=2).fit_transform(X.loc[["speed", "lean"]])
    assert isinstance(lags, nap.TsdFrame) and lags.shape == (400, 6)
    model = make_pipeline(history, PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0))
    rates = model.fit(X, Y).predict(X)
    assert isinstance(rates, nap.TsdFrame) and list(rates.columns) == ["n1", "n2"]


def test_lags_of_a_tsdframe_over_several_epochs_do_not_cross_the_gaps():
    X, Y = _time_indexed_recording()
    epochs = nap.IntervalSet(start=[0.0, 10.0], end=[5.0, 19.99])  # bins 0-100 and 200-399: a gap between
    restricted = X.restrict(epochs)
    frame = restricted.as_dataframe()
    assert len(restricted.time_support) == 2
    pieces = [frame.loc[a:b] for a, b in zip(epochs.start, epochs.end)]
    for transformer in (LagFeatures(n_lags=3, fill="zero"), SpikeHistory(counts=["n1", "n2"], n_lags=3, n_basis=2)):
        out = np.asarray(transformer.fit_transform(restricted))
        alone = np.concatenate([transformer.fit_transform(piece) for piece in pieces])
        np.testing.assert_array_equal(out, alone)
        # the same rows as a plain frame are one stretch: lags run across the gap
        assert not np.array_equal(transformer.fit_transform(frame), alone)
    # the closed-loop simulation restarts the history at the second epoch too
    history = SpikeHistory(counts=["n1", "n2"], n_lags=3, n_basis=2)
    model = make_pipeline(history, PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=3, random_state=0))
    model.fit(restricted, restricted.loc[["n1", "n2"]])
    from sklearn_costs import simulate_recurrent

    covariates = restricted.loc[["speed", "lean"]]
    counts, rates = simulate_recurrent(model, covariates, random_state=0)
    _, first = simulate_recurrent(model, covariates.restrict(epochs[1]), random_state=0)
    # the second epoch starts afresh: its first bin's rate is that of a simulation of the second epoch alone
    np.testing.assert_allclose(np.asarray(rates)[len(pieces[0])], np.asarray(first)[0])


@pytest.mark.parametrize("make", [lambda: LagFeatures(n_lags=2),
                                  lambda: SpikeHistory(counts=["n1", "n2"], n_lags=3, n_basis=2)])
def test_pandas_output_of_a_tsdframe_is_a_dataframe_indexed_by_time(make):
    # issue 29 item 12: set_output(transform="pandas") on a TsdFrame raised "DataFrame constructor not properly
    # called!"; the default output stays a TsdFrame
    X, _ = _time_indexed_recording(n_bins=60)
    default = make().fit_transform(X)
    assert isinstance(default, nap.TsdFrame)
    transformer = make().set_output(transform="pandas")
    for out in (transformer.fit_transform(X), transformer.transform(X)):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(transformer.get_feature_names_out()) == list(default.columns)
        np.testing.assert_array_equal(out.index, X.t)
        np.testing.assert_array_equal(out.to_numpy(), np.asarray(default))
    with sklearn.config_context(transform_output="pandas"):  # scikit-learn's global setting as well
        out = make().fit_transform(X)
    assert isinstance(out, pd.DataFrame) and out.index.equals(pd.Index(X.t))


def test_a_pipeline_with_pandas_output_runs_on_tsdframes_over_several_epochs():
    X, Y = _time_indexed_recording(n_bins=120)
    restricted = X.restrict(nap.IntervalSet(start=[0.0, 3.0], end=[2.5, 5.99]))  # a gap between the epochs
    Y = restricted.loc[["n1", "n2"]]

    def make():
        return make_pipeline(LagFeatures(n_lags=1), SpikeHistory(counts=["n1", "n2"], n_lags=2, n_basis=2),
                             PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=2, random_state=0))

    pandas_model = make().set_output(transform="pandas").fit(restricted, Y)
    features = pandas_model[:-1].transform(restricted)
    assert isinstance(features, pd.DataFrame) and features.index.equals(pd.Index(restricted.t))
    assert list(features.columns) == list(pandas_model[:-1].get_feature_names_out())
    default_model = make().fit(restricted, Y)
    # the epochs still reach the second step as trials: the same features and predictions as the default output
    np.testing.assert_array_equal(features.to_numpy(), np.asarray(default_model[:-1].transform(restricted)))
    np.testing.assert_allclose(pandas_model.predict(restricted), np.asarray(default_model.predict(restricted)),
                               rtol=1e-5)  # float32 networks: the same features in another memory layout


def test_a_one_column_tsd_is_an_x_like_a_one_column_tsdframe():
    # issue 29 item 14: pynapple gives a Tsd for tdf[["speed"]], which simulate_recurrent (and the transformers)
    # refused with scikit-learn's "Expected a 2-dimensional container"
    from sklearn_costs import simulate_recurrent

    X, _ = _time_indexed_recording(n_bins=80)
    X = X.restrict(nap.IntervalSet(start=[0.0, 2.0], end=[1.5, 3.99]))
    frame = nap.TsdFrame(t=X.t, d=X.loc[["speed", "lean", "n1"]].d, columns=["speed", "lean", "n1"],
                         time_support=X.time_support)
    speed = frame[["speed"]]
    assert isinstance(speed, nap.Tsd)  # what pynapple returns for one column
    model = make_pipeline(SpikeHistory(counts=["n1"], n_lags=2, basis=None),
                          PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=2, random_state=0))
    model.fit(frame.loc[["speed", "n1"]], frame["n1"])
    one_column = nap.TsdFrame(t=X.t, d=speed.d[:, None], columns=["speed"], time_support=X.time_support)
    counts, rates = simulate_recurrent(model, speed, random_state=0)
    expected_counts, expected_rates = simulate_recurrent(model, one_column, random_state=0)
    assert list(counts.columns) == ["n1"] and counts.index.equals(expected_counts.index)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(rates, expected_rates)  # the history restarts at the second epoch as well
    lags = LagFeatures(n_lags=1).fit(speed)
    assert isinstance(lags.transform(speed), nap.TsdFrame) and lags.transform(speed).shape == (len(speed), 2)
    expected = LagFeatures(n_lags=1).fit_transform(one_column)
    np.testing.assert_array_equal(np.asarray(lags.transform(speed)), np.asarray(expected))


# --------------------------------------------------------------------------------------------------------- NWB


def _write_nwb(path):
    """A small NWB file: 3 units, a 2-D hand position at 100 Hz, a 1-D speed at 50 Hz, two trials."""
    pynwb = pytest.importorskip("pynwb", reason="pynwb is not installed (pip install 'sklearn-costs[neuro]')")
    from pynwb.behavior import Position, SpatialSeries

    rng = np.random.default_rng(0)
    nwb = pynwb.NWBFile(session_description="sklearn-costs test", identifier="test-session",
                        session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    spikes = {k: np.sort(rng.uniform(0.0, 10.0, n)) for k, n in enumerate([200, 80, 40])}
    for times in spikes.values():
        nwb.add_unit(spike_times=times)
    hand = rng.normal(size=(1000, 2)).cumsum(0)
    position = Position(name="Position")
    position.add_spatial_series(SpatialSeries(name="hand", data=hand, reference_frame="origin",
                                              timestamps=np.arange(1000) * 0.01))
    nwb.create_processing_module("behavior", "behaviour").add(position)
    speed = rng.normal(size=500)
    nwb.add_acquisition(pynwb.TimeSeries(name="speed", data=speed, unit="m/s", rate=50.0, starting_time=0.0))
    nwb.add_trial(start_time=0.0, stop_time=4.0)
    nwb.add_trial(start_time=5.0, stop_time=9.0)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return spikes, hand, speed


def test_load_nwb_bins_units_and_behaviour(tmp_path):
    spikes, hand, speed = _write_nwb(tmp_path / "session.nwb")
    data = load_nwb(tmp_path / "session.nwb", bin_width=0.1, t_start=0.0, t_stop=10.0)
    assert list(data.counts.columns) == ["unit0", "unit1", "unit2"]
    np.testing.assert_array_equal(data.counts.to_numpy(), bin_spikes(spikes, 0.1, t_start=0.0, t_stop=10.0))
    assert set(data.covariates.columns) == {"hand_x", "hand_y", "speed"}
    expected = bin_covariates(pd.DataFrame(hand, index=np.arange(1000) * 0.01, columns=["hand_x", "hand_y"]),
                              data.counts.index, bin_width=0.1)
    np.testing.assert_allclose(data.covariates[["hand_x", "hand_y"]], expected)
    np.testing.assert_allclose(data.covariates["speed"].iloc[0], speed[:5].mean())
    pd.testing.assert_frame_equal(data.trials, pd.DataFrame({"start": [0.0, 5.0], "end": [4.0, 9.0]}))
    only = load_nwb(tmp_path / "session.nwb", bin_width=0.1, covariates=["speed"])
    assert list(only.covariates.columns) == ["speed"]
    with pytest.raises(ValueError, match="no time series 'gaze'"):
        load_nwb(tmp_path / "session.nwb", covariates=["gaze"])
    with pytest.raises(ValueError, match="no units table 'cells'"):
        load_nwb(tmp_path / "session.nwb", units="cells")


def test_a_model_with_history_fits_an_nwb_file_by_trial(tmp_path):
    _write_nwb(tmp_path / "session.nwb")
    data = load_nwb(tmp_path / "session.nwb", bin_width=0.05, t_start=0.0, t_stop=10.0)
    trial = segment_labels(data.counts.index, epochs=data.trials)
    inside = trial >= 0
    X = data.covariates.join(data.counts)[inside].assign(trial=trial[inside])
    Y = data.counts[inside]
    model = make_pipeline(SpikeHistory(counts=list(Y.columns), n_lags=4, n_basis=2, trial_col="trial"),
                          PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0))
    rates = model.fit(X, Y).predict(X)
    assert rates.shape == (160, 3) and np.isfinite(rates).all()


def test_an_epoch_off_the_bin_grid_warns_of_the_spikes_it_loses():
    tsg = _tsgroup(support=nap.IntervalSet(start=[0.0, 5.01], end=[2.0, 8.0]))
    with pytest.warns(UserWarning, match="spikes fall in bins that start outside the TsGroup's epochs"):
        bin_spikes(tsg, bin_width=0.5)


def test_load_nwb_refuses_what_is_not_a_time_series(tmp_path):
    _write_nwb(tmp_path / "session.nwb")
    with pytest.raises(ValueError, match="'trials' in the NWB file is a IntervalSet, not a time series"):
        load_nwb(tmp_path / "session.nwb", covariates=["trials"])
