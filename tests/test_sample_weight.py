"""sample_weight in fit and score: a weighted likelihood, checked against repeating rows (integer weights)."""

import numpy as np
import pytest

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.metrics import poisson_d2_score

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
COUNTS = rng.poisson(np.exp(0.5 * X[:, 0]))
REAL = 2 * X[:, 0] + rng.normal(size=60) * (0.5 + np.abs(X[:, 1]))
WEIGHTS = rng.integers(0, 4, size=60)
REPEATED = np.repeat(np.arange(60), WEIGHTS)
# A GLM trained to convergence on the full batch: its optimum is the weighted MLE, whatever the starting point,
# so a weighted fit and a fit on repeated rows must agree.
GLM = dict(hidden_layer_sizes=(), optimizer="lbfgs", lr=0.1, max_epochs=60, batch_size=-1, early_stopping=False,
           random_state=0)


@pytest.mark.parametrize("make, y", [
    (lambda: PoissonSpikeRegressor(**GLM), COUNTS),
    (lambda: PoissonSpikeRegressor(loss="negative_binomial", **GLM), COUNTS),
    (lambda: GaussianUncertaintyRegressor(**GLM), REAL),
    (lambda: GaussianUncertaintyRegressor(loss="mse", **GLM), REAL),  # its std is fitted in closed form after
])
def test_integer_weights_fit_as_repeated_rows(make, y):
    weighted = make().fit(X, y, sample_weight=WEIGHTS)
    repeated = make().fit(X[REPEATED], y[REPEATED])
    for a, b in zip(weighted.predict(X, return_std=True), repeated.predict(X, return_std=True)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)
    unweighted = make().fit(X, y)
    assert np.abs(unweighted.predict(X) - weighted.predict(X)).max() > 1e-2  # the weights changed the fit
    assert weighted.score(X, y, sample_weight=WEIGHTS) == pytest.approx(repeated.score(X[REPEATED], y[REPEATED]),
                                                                        rel=1e-5)


def test_uniform_weights_are_the_unweighted_fit_exactly():
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    plain = GaussianUncertaintyRegressor(**params).fit(X, REAL)
    uniform = GaussianUncertaintyRegressor(**params).fit(X, REAL, sample_weight=np.full(60, 3.0))
    np.testing.assert_array_equal(plain.predict(X), uniform.predict(X))


@pytest.mark.parametrize("score_of", [
    lambda m, X, y, w: m.score(X, y, sample_weight=w),
    lambda m, X, y, w: poisson_d2_score(y, m.predict(X), sample_weight=w),
])
def test_weighted_scores_equal_scores_of_repeated_rows(score_of):
    model = PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=5, random_state=0).fit(X, COUNTS)
    assert score_of(model, X, COUNTS, WEIGHTS) == pytest.approx(score_of(model, X[REPEATED], COUNTS[REPEATED], None))
    gaussian = GaussianUncertaintyRegressor(hidden_layer_sizes=(4,), max_epochs=5, random_state=0).fit(X, REAL)
    assert gaussian.score(X, REAL, sample_weight=WEIGHTS) == pytest.approx(gaussian.score(X[REPEATED], REAL[REPEATED]))


def test_an_ensemble_passes_the_weights_to_its_members():
    member = PoissonSpikeRegressor(**GLM)
    ensemble = DeepEnsembleRegressor(member, n_estimators=2, random_state=0).fit(X, COUNTS, sample_weight=WEIGHTS)
    repeated = member.fit(X[REPEATED], COUNTS[REPEATED])
    np.testing.assert_allclose(ensemble.predict(X), repeated.predict(X), rtol=2e-4, atol=2e-4)
    assert ensemble.score(X, COUNTS, sample_weight=WEIGHTS) == pytest.approx(
        ensemble.score(X[REPEATED], COUNTS[REPEATED]))


BAD_WEIGHTS = [
    (-np.ones(60), "sample_weight must be non-negative; found -1.0 at row 0"),
    (np.zeros(60), "sample_weight is zero for every row, so there is nothing to fit or score"),
    (np.ones(59), r"X has 60 rows, sample_weight has shape \(59,\)"),
    (np.r_[np.nan, np.ones(59)], "sample_weight must be finite; found nan at row 0"),
    (np.array(["a"] * 60), "sample_weight must hold numbers"),
]


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("weight, message", BAD_WEIGHTS)
def test_bad_weights_are_refused_and_the_fitted_model_kept(weight, message, method):
    model = PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0).fit(X, COUNTS)
    before = model.predict(X)
    with pytest.raises(ValueError, match=message):
        getattr(model, method)(X, COUNTS, sample_weight=weight)
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize("weight, message", BAD_WEIGHTS)
def test_bad_weights_are_refused_by_every_estimator_alike(weight, message, embedder_data):
    images, labels = embedder_data
    for model, Xs, y in [(GaussianUncertaintyRegressor(max_epochs=1), X, REAL),
                         (DeepEnsembleRegressor(PoissonSpikeRegressor(max_epochs=1), n_estimators=2), X, COUNTS),
                         (TripletEmbedder(hidden_layer_sizes=(4,), max_epochs=1), images, labels)]:
        with pytest.raises(ValueError, match=message):
            model.fit(Xs, y, sample_weight=weight)


@pytest.fixture(scope="module")
def embedder_data():
    labels = np.repeat(np.arange(15), 4)
    return X + labels[:, None], labels


@pytest.fixture(scope="module")
def fitted_models(embedder_data):
    small = dict(hidden_layer_sizes=(4,), max_epochs=1, random_state=0)
    return [(PoissonSpikeRegressor(**small).fit(X, COUNTS), X, COUNTS),
            (GaussianUncertaintyRegressor(**small).fit(X, REAL), X, REAL),
            (DeepEnsembleRegressor(PoissonSpikeRegressor(**small), n_estimators=2).fit(X, COUNTS), X, COUNTS),
            (TripletEmbedder(**small).fit(*embedder_data), *embedder_data)]


@pytest.mark.parametrize("weight, message", BAD_WEIGHTS)
def test_bad_weights_are_refused_by_every_score(weight, message, fitted_models):
    for model, Xs, y in fitted_models:
        with pytest.raises(ValueError, match=message):
            model.score(Xs, y, sample_weight=weight)


def test_zero_weight_on_every_row_held_out_for_early_stopping_is_refused_with_the_way_out():
    weight = np.ones(60)
    weight[-6:] = 0.0  # the spike regressor holds out the last tenth of the bins
    model = PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=3, random_state=0)
    with pytest.raises(ValueError, match=r"sample_weight is zero on all 6 rows held out for early stopping \(the last "
                                         r"rows, in time order\).*early_stopping=False"):
        model.fit(X, COUNTS, sample_weight=weight)
    assert not hasattr(model, "net_")
    model.set_params(early_stopping=False).fit(X, COUNTS, sample_weight=weight)  # the way out it names
    assert model.n_iter_ == 3


def test_weight_only_on_the_rows_held_out_for_early_stopping_is_refused_with_the_way_out():
    model = PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=2, random_state=0).fit(X, COUNTS)
    before = model.predict(X)
    held_out = np.zeros(60)
    held_out[-6:] = 1.0  # the spike regressor holds out the last tenth of the bins
    with pytest.raises(ValueError, match="every row with a positive sample_weight fell among the 6 rows held out"):
        model.fit(X, COUNTS, sample_weight=held_out)
    np.testing.assert_array_equal(model.predict(X), before)
    refit = model.set_params(early_stopping=False).fit(X, COUNTS, sample_weight=held_out)  # the way out it names
    assert np.isfinite(refit.predict(X)).all()


# ------------------------------------------------------------------------------------------ weighted triplets

def test_triplet_losses_weight_each_triplet_by_its_anchor():
    import torch

    from sklearn_costs.losses import ContrastiveLoss, TripletLoss

    emb = torch.nn.functional.normalize(torch.randn(12, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.arange(12) % 3
    ones, weight = torch.ones(12), torch.rand(12, generator=torch.Generator().manual_seed(1))
    for loss in (TripletLoss(miner="all"), ContrastiveLoss()):
        assert loss(emb, labels, ones).item() == pytest.approx(loss(emb, labels).item(), rel=1e-6)
    # all triplets, each weighted by its anchor: the weighted mean of the per-anchor sums of hinges
    loss = TripletLoss(miner="all")
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    terms, weights = [], []
    for a in range(12):
        for p in range(12):
            for n in range(12):
                if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
                    terms.append(torch.relu(d[a, p] - d[a, n] + 0.2))
                    weights.append(weight[a])
    expected = (torch.stack(terms) * torch.stack(weights)).sum() / torch.stack(weights).sum()
    assert loss(emb, labels, weight).item() == pytest.approx(expected.item(), rel=1e-5)


def test_embedder_takes_sample_weight_in_fit_and_score():
    from sklearn.datasets import load_digits

    from sklearn_costs import TripletEmbedder
    from sklearn_costs.metrics import recall_at_1

    digits = load_digits()
    images, labels = digits.images[:300].astype(np.float32), digits.target[:300]
    weight = np.where(labels < 5, 1.0, 0.0)  # the digits 5-9 do not count
    # without early stopping: the identities it would hold out (seed 0) are among the weightless ones, which is
    # refused (test_zero_weight_on_every_row_held_out_for_early_stopping_is_refused_with_the_way_out)
    params = dict(embedding_dim=8, n_members=1, max_epochs=3, early_stopping=False, random_state=0)
    plain = TripletEmbedder(**params).fit(images, labels)
    weighted = TripletEmbedder(**params).fit(images, labels, sample_weight=weight)
    assert not np.allclose(plain.transform(images[:5]), weighted.transform(images[:5]))
    np.testing.assert_array_equal(  # uniform weights: the unweighted fit exactly
        TripletEmbedder(**params).fit(images, labels, sample_weight=np.full(300, 2.0)).transform(images[:5]),
        plain.transform(images[:5]))
    emb = weighted.transform(images)
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    hits = labels[d.argmin(1)] == labels  # neighbours among all samples, queries weighted
    assert weighted.score(images, labels, sample_weight=weight) == pytest.approx(hits[labels < 5].mean())
    assert recall_at_1(emb, labels, sample_weight=np.ones(300)) == pytest.approx(hits.mean())


def test_the_scale_of_the_weights_does_not_matter():
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    weight = rng.uniform(0.1, 3.0, size=60)
    fits = [GaussianUncertaintyRegressor(**params).fit(X, REAL, sample_weight=weight * scale)
            for scale in (1.0, 1 / weight.sum(), 1e-30, 1e20)]
    for other in fits[1:]:
        np.testing.assert_allclose(other.predict(X), fits[0].predict(X), rtol=1e-5, atol=1e-5)


def test_recall_at_1_says_when_no_weighted_query_is_left():
    from sklearn_costs.metrics import recall_at_1

    emb, labels = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]]), np.array([0, 0, 1, 1, 2])
    assert recall_at_1(emb, labels, sample_weight=[0, 0, 1, 0, 3]) == 1.0  # the lone label 2 is no query
    with pytest.raises(ValueError, match="zero for every sample whose label occurs twice"):
        recall_at_1(emb, labels, sample_weight=[0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="one weight per row"):
        recall_at_1(emb, labels, sample_weight=[1, 1])
    with pytest.raises(ValueError, match="non-negative; found -1.0 at row 1"):
        recall_at_1(emb, labels, sample_weight=[1, -1, 1, 1, 1])
