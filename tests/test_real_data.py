"""Checks on the real benchmark data (../shared/data): skipped, with the reason, where it is absent."""

import numpy as np
import pytest
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import KFold

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.datasets import load_faces, load_omniglot, load_stevenson_m1, load_uci
from sklearn_costs.metrics import one_shot_accuracy
from sklearn_costs.modules import ResizeImages
from sklearn_costs.preprocessing import LagFeatures, bin_spikes
from sklearn_costs.triplet import resolve_embedder_settings

from .conftest import real_data_or_skip

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def m1():
    real_data_or_skip()
    return load_stevenson_m1()


def test_spike_times_rebuilt_from_real_counts_bin_back_exactly(m1):
    counts = m1.counts.to_numpy()
    rng = np.random.default_rng(0)
    t0, width = 0.0, 0.05
    bins, neurons = np.nonzero(counts)
    repeats = counts[bins, neurons]
    bins, neurons = np.repeat(bins, repeats), np.repeat(neurons, repeats)
    times = t0 + width * (bins + rng.uniform(0.0, 1.0 - 1e-6, size=len(bins)))  # uniform inside each bin
    order = rng.permutation(len(times))  # and unsorted
    times, neurons = times[order], neurons[order]  # once: permuting 2.4 million spikes per neuron took 10 s
    spikes = {f"n{i:03d}": times[neurons == i] for i in range(counts.shape[1])}
    rebuilt = bin_spikes(spikes, width, t0, t0 + width * len(counts), neurons=list(m1.counts.columns))
    np.testing.assert_array_equal(rebuilt.to_numpy(), counts)


def test_a_second_of_kinematic_history_on_m1_is_28_inputs(m1):
    # M1 neurons answer the movement of the last few hundred ms; the D2 that this history adds to one network is
    # ``python benchmarks/spikes.py --claims kinematic-history`` (docs/benchmarks.rst)
    X = m1.kinematics.to_numpy()
    history = LagFeatures(n_lags=20, basis="raised_cosine", n_basis=6).fit_transform(X)
    assert history.shape == (len(X), 4 * 7) and np.isfinite(history).all()


# The accuracy of the defaults on real tables and recordings that a fit of 5-15 s shows (yacht's Gaussian against a
# constant std, naval's 10,000 rows against BayesianRidge, 150 M1 neurons against per-neuron GLMs) is measured by
# ``python benchmarks/uncertainty.py --claims`` and ``python benchmarks/spikes.py --claims`` (docs/benchmarks.rst,
# "Claims that were unit tests"). The tests below check the data and what the defaults resolve on it.


def test_a_uci_set_comes_with_its_published_splits():
    real_data_or_skip()
    data = load_uci("yacht")
    assert data.X.shape == (308, 6) and len(data.splits) == 20
    train, test = data.splits[0]
    assert len(train) == 277 and len(np.intersect1d(train, test)) == 0


# The accuracy of the default embedder on people and alphabets never seen takes a fit of minutes: it is measured by
# ``python benchmarks/faces.py --claims`` (docs/benchmarks.rst, "Claims that were unit tests"), with the split and
# margin these tests once asserted. Here, a short fit on the real images as given checks what the defaults make of
# them.


def _settings_of_the_defaults_on(model, n_samples, n_identities):
    """What ``TripletEmbedder()`` resolves on ``n_samples`` images of ``model``'s input shape (the benchmark's fit)."""
    return resolve_embedder_settings(model.input_shape_, n_samples, model.batch_size, TripletEmbedder().get_params(),
                                     n_identities=n_identities)


def _check_member_embeddings(emb, n, members, dim=64):
    assert emb.shape == (n, members * dim) and np.isfinite(emb).all()
    norms = np.linalg.norm(emb.reshape(n, members, dim), axis=2)
    np.testing.assert_allclose(norms, 1 / np.sqrt(members), rtol=1e-4)  # each member its own unit embedding


def test_default_embedder_reads_64x64_faces_as_given_and_resolves_its_settings():
    """Olivetti's 64x64 photos as they come, one epoch on ten people: one grey channel, brought down to 24x24 inside
    the network, two blocks, five members, augmented; embeddings of the ten people never seen."""
    real_data_or_skip()
    faces = load_faces("olivetti")
    assert faces.images.shape == (400, 64, 64) and faces.images.dtype == np.uint8
    X = faces.images.astype(np.float32) / 255.0
    new = np.isin(faces.target, np.random.default_rng(0).permutation(40)[:10])
    train = np.isin(faces.target, np.unique(faces.target[~new])[:10])
    model = TripletEmbedder(max_epochs=1, n_threads=1, random_state=0).fit(X[train], faces.target[train])
    assert model.input_shape_ == (1, 64, 64) and model.n_features_in_ == 64 * 64
    assert (model.module_kind_, model.input_size_, model.cnn_blocks_, model.cnn_width_, model.n_members_,
            model.augment_) == ("cnn", (24, 24), 2, 16, 5, True)
    assert [m.size for m in model.net_.module_.modules() if isinstance(m, ResizeImages)] == [(24, 24)]
    emb = model.transform(X[new])
    _check_member_embeddings(emb, 100, 5)
    assert one_shot_accuracy(emb, faces.target[new]) > 0.3  # 10-way, chance 0.1: faces, not noise
    # on all 30 training people, the benchmark's fit: the same input and network, 300 epochs, patience 60
    full = _settings_of_the_defaults_on(model, (~new).sum(), 30)
    assert (full["input_size"], full["cnn_blocks"], full["n_members"], full["max_epochs"],
            full["n_iter_no_change"]) == ((24, 24), 2, 5, 300, 60)


def test_omniglot_reads_only_the_alphabets_asked_for_each_drawing_once():
    real_data_or_skip()
    latin, both = load_omniglot(alphabets="Latin"), load_omniglot(alphabets=["Tagalog", "Latin"])
    # Latin stands in both zips: 26 characters x 20 drawers, each drawing once
    assert latin.images.shape == (520, 105, 105) and set(latin.alphabet) == {"Latin"}
    assert len(set(latin.target)) == 26 and sorted(set(latin.drawer)) == list(range(1, 21))
    assert len(both.images) == 520 + 17 * 20
    in_latin = both.alphabet == "Latin"
    np.testing.assert_array_equal(both.images[in_latin], latin.images)
    np.testing.assert_array_equal(both.target[in_latin], latin.target)
    with pytest.raises(ValueError, match=r"\['Klingon'\] are not in .* they hold \['Balinese'"):
        load_omniglot(alphabets=["Latin", "Klingon"])
    with pytest.raises(ValueError, match="alphabets is empty"):
        load_omniglot(alphabets=[])


def test_default_embedder_reads_105x105_characters_as_given_and_sees_them_better_than_pixels():
    """Omniglot's 105x105 drawings as they come (ink 1, paper 0), one epoch on ten characters of the six training
    alphabets: 24x24 inside the network; even so little training tells the characters of an unseen alphabet apart
    better than their raw pixels do (by 0.09-0.13 for three choices of characters and seeds; the full fit's lead,
    0.2 and more, is the benchmark's)."""
    real_data_or_skip()
    data = load_omniglot()
    new = np.isin(data.alphabet, ["Balinese", "Tagalog"])
    train = np.isin(data.target, np.unique(data.target[~new])[:10])
    model = TripletEmbedder(max_epochs=1, n_threads=1, random_state=0).fit(data.images[train], data.target[train])
    assert model.input_shape_ == (1, 105, 105)
    assert (model.module_kind_, model.input_size_, model.cnn_blocks_, model.n_members_, model.augment_) == (
        "cnn", (24, 24), 2, 5, True)
    tagalog = (data.alphabet == "Tagalog") & (data.drawer <= 10)  # 17 characters, 10 drawings of each
    emb = model.transform(data.images[tagalog])
    _check_member_embeddings(emb, tagalog.sum(), 5)
    pixels = one_shot_accuracy(data.images[tagalog].reshape(tagalog.sum(), -1), data.target[tagalog])
    assert one_shot_accuracy(emb, data.target[tagalog]) > pixels + 0.05
    # on the six alphabets (4,020 drawings), the benchmark's fit: one member
    full = _settings_of_the_defaults_on(model, (~new).sum(), len(np.unique(data.target[~new])))
    assert (full["input_size"], full["cnn_blocks"], full["n_members"]) == ((24, 24), 2, 1)


def _bayesian_ridge_nll(X_train, y_train, X_test, y_test):
    from scipy.stats import norm

    mean, std = BayesianRidge().fit(X_train, y_train).predict(X_test, return_std=True)
    return -norm.logpdf(y_test, mean, std).mean()


def test_default_regressor_on_a_50_row_table_beats_a_linear_gaussian():
    real_data_or_skip()
    data = load_uci("energy")
    train, test = data.splits[0]
    train = train[:50]
    model = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    assert (model.hidden_layer_sizes_, model.n_members_) == ((64, 64), 5)
    nll = -model.score(data.X[test], data.y[test])
    assert nll < _bayesian_ridge_nll(data.X[train], data.y[train], data.X[test], data.y[test]) - 0.1


def test_default_regressor_on_10000_naval_rows_resolves_five_members_and_weighs_its_linear_part():
    """One epoch of the benchmark's fit (``--claims naval-defaults``): the settings, and a linear part weighed by
    the thousand held-out rows (its weight is the posterior mean of a uniform prior, within (0, 1))."""
    real_data_or_skip()
    data = load_uci("naval")
    train, test = data.splits[0]
    train = train[:10_000]
    model = GaussianUncertaintyRegressor(max_epochs=1, random_state=0).fit(data.X[train], data.y[train])
    assert (model.hidden_layer_sizes_, model.n_members_, model.clip_inputs_) == ((64, 64), 5, True)
    assert 0 < model.linear_weight_ < 1
    mean, std = model.predict(data.X[test], return_std=True)
    assert mean.shape == (len(test),) and np.isfinite(mean).all() and (std > 0).all()


def test_on_fifty_rows_the_linear_part_catches_the_networks_over_confident_points():
    # kin8nm, split 0, 50 training rows: the members alone put a few test points' std at a tenth of their error
    # (test NLL 1.65); five held-out rows weigh the linear part at 0.29, and the mixture is at the linear model's
    # level (-0.02 against BayesianRidge's -0.11)
    real_data_or_skip()
    data = load_uci("kin8nm")
    train, test = data.splits[0]
    train = train[:50]
    model = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    alone = GaussianUncertaintyRegressor(random_state=0, linear_weight=0).fit(data.X[train], data.y[train])
    assert 0.1 < model.linear_weight_ < 0.9
    nll = -model.score(data.X[test], data.y[test])
    assert nll < -alone.score(data.X[test], data.y[test]) - 1.0
    assert nll < _bayesian_ridge_nll(data.X[train], data.y[train], data.X[test], data.y[test]) + 0.2


def test_default_regressor_is_not_thrown_by_test_points_far_outside_its_training_range():
    # protein, split 1, 200 training rows: two test points lie 40-45 training stds beyond the range on a feature;
    # unclipped, the networks put their mean at 40-60 (targets 0-21) and the mean test NLL at 1449
    real_data_or_skip()
    data = load_uci("protein")
    train, test = data.splits[1]
    train = train[:200]
    far = (data.X[test] - data.X[train].max(0)) / data.X[train].std(0)
    assert far.max() > 30
    model = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    assert model.clip_inputs_ is True
    nll = -model.score(data.X[test], data.y[test])
    assert nll < _bayesian_ridge_nll(data.X[train], data.y[train], data.X[test], data.y[test]) + 0.1


def test_default_spike_regressor_on_150_real_neurons_resolves_its_settings(m1):
    """One epoch of the benchmark's fit (``python benchmarks/spikes.py --claims``): 150 neurons, the first 4,800
    bins; two hidden layers of 128, five members side by side, a positive rate for every bin and neuron."""
    X, Y = m1.kinematics.to_numpy()[:6000], m1.counts.to_numpy()[:6000, :150]
    model = PoissonSpikeRegressor(max_epochs=1, random_state=0).fit(X[:4800], Y[:4800])
    assert (model.hidden_layer_sizes_, model.n_members_, model.n_outputs_) == ((128, 128), 5, 150)
    rates = model.predict(X[4800:])
    assert rates.shape == (1200, 150) and np.isfinite(rates).all() and (rates > 0).all()


def test_defaults_on_forty_rows_that_over_fit_end_at_their_best_epoch():
    # the first 50 training rows of concrete's third split, less a fifth: the validation NLL of the 4 held-out rows
    # soars to 2e4 nats as the members over-fit, which the divergence guard once took for a runaway
    real_data_or_skip()
    data = load_uci("concrete")
    rows = data.splits[2][0][:50]
    train = rows[list(KFold(5, shuffle=True, random_state=0).split(rows))[4][0]]
    model = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    valid = model.history_["valid_loss"]
    assert valid.max() - valid.min() > 1e3  # the case the test is about
    assert len(valid) == valid.idxmin() + model.n_iter_no_change  # stopped early (epochs count from 1)
    test = data.splits[2][1]
    assert model.score(data.X[test], data.y[test]) > -5  # the best epoch's weights, not the over-fitted last ones
