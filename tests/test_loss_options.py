"""The loss owns its options' defaults; an estimator hands over only the options its user set, and an option the
chosen loss does not take is refused by name (issue 29, item 9; issue 28, "one owner for each value")."""

import numpy as np
import pytest

from sklearn_costs import GaussianUncertaintyRegressor, TripletEmbedder
from sklearn_costs.losses import DEFAULT_MIN_STD, GaussianLoss, TripletLoss


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    return X, X[:, 0] + 0.1 * rng.normal(size=60)


@pytest.fixture(scope="module")
def identities():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 4)
    return rng.normal(size=(24, 5)) + labels[:, None], labels


def _gaussian(**params):
    return GaussianUncertaintyRegressor(n_members=1, hidden_layer_sizes=(4,), max_epochs=1, linear_weight=0,
                                        random_state=0, **params)


def test_the_estimator_default_is_the_loss_default(table):
    model = _gaussian().fit(*table)
    assert model.min_std is None and model.loss_.min_std == DEFAULT_MIN_STD == GaussianLoss().min_std


def test_an_option_set_on_the_estimator_applies_to_a_loss_given_as_an_instance(table):
    given = GaussianLoss()
    model = _gaussian(loss=given, min_std=0.3).fit(*table)
    assert model.loss_.min_std == 0.3 and given.min_std == DEFAULT_MIN_STD
    _, std = model.predict(table[0], return_std=True)
    assert std.min() >= 0.3 * model.y_scale_[0]


def test_an_option_the_loss_does_not_take_is_refused_with_those_it_takes(table):
    with pytest.raises(ValueError, match=r"loss 'mse' takes no option 'std_link' \(its options: min_std\)"):
        _gaussian(loss="mse", std_link="exp").fit(*table)


def test_a_plugin_loss_without_a_std_floor_refuses_min_std(table):
    with pytest.raises(ValueError, match=r"loss 'logistic' takes no option 'min_std' \(its options: min_scale\)"):
        _gaussian(loss="logistic", min_std=0.1).fit(*table)
    assert _gaussian(loss="logistic").fit(*table).loss_.min_scale == 1e-4  # left alone, its own default


def _embedder(**params):
    return TripletEmbedder(hidden_layer_sizes=(8,), embedding_dim=4, max_epochs=1, random_state=0, **params)


def test_soft_margin_refuses_a_margin_and_keeps_its_own_miner(identities):
    with pytest.raises(ValueError, match=r"takes no option 'margin'.*Leave margin at None"):
        _embedder(loss="soft_margin_triplet", margin=0.5).fit(*identities)
    model = _embedder(loss="soft_margin_triplet").fit(*identities)
    assert model.miner_ == "batch_hard" == model.loss_.miner


def test_the_margin_reaches_triplet_and_contrastive_losses_and_instances(identities):
    default = _embedder(loss="triplet").fit(*identities)
    assert (default.loss_.margin, default.miner_) == (TripletLoss().margin, "semi_hard")
    assert _embedder(loss="contrastive").fit(*identities).loss_.margin == 1.0  # the contrastive loss's own
    model = _embedder(loss=TripletLoss(margin=0.1, miner="all"), margin=0.7).fit(*identities)
    assert (model.loss_.margin, model.miner_) == (0.7, "all")
