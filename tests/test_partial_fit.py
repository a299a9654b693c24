"""partial_fit: training on data that arrives in chunks, one epoch a call, continuing the same network."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.metrics import one_shot_accuracy

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(1200, 3)), columns=["speed", "lean", "throttle"])
COUNTS = rng.poisson(np.exp(0.3 + 0.6 * X["speed"] - 0.4 * X["lean"] ** 2))
REAL = 100 + 5 * np.sin(X["speed"]) + (0.2 + 0.5 * np.abs(X["lean"])) * rng.normal(size=1200)
CHUNKS = [slice(0, 400), slice(400, 800), slice(800, 1000)]  # the last 200 rows are held out
TEST = slice(1000, 1200)


def small(cls, **kw):
    return cls(hidden_layer_sizes=(16,), lr=3e-3, n_members=1, random_state=0, **kw)


@pytest.mark.parametrize("make, y", [
    (lambda: small(PoissonSpikeRegressor), COUNTS),
    (lambda: small(GaussianUncertaintyRegressor), REAL),
    (lambda: DeepEnsembleRegressor(small(GaussianUncertaintyRegressor), n_estimators=2, random_state=0), REAL),
])
def test_chunks_train_one_epoch_each_and_learn_as_fit_does(make, y):
    model = make()
    for _ in range(15):
        for chunk in CHUNKS:
            model.partial_fit(X[chunk], y[chunk])
    members = getattr(model, "estimators_", [model])
    assert all(m.n_iter_ == 15 * len(CHUNKS) for m in members)
    assert all(m.max_epochs == make().get_params().get("max_epochs", m.max_epochs) for m in members)
    assert all(not m.warm_start and m.early_stopping for m in members)  # the parameters are left as they were
    # as good as the same number of epochs over the whole training part at once
    prefix = "estimator__" if isinstance(model, DeepEnsembleRegressor) else ""
    whole = make().set_params(**{prefix + "max_epochs": 15, prefix + "early_stopping": False}).fit(X[:1000], y[:1000])
    chunked, at_once = model.score(X[TEST], y[TEST]), whole.score(X[TEST], y[TEST])
    assert chunked > at_once - 0.05 * abs(at_once)


def test_the_first_chunk_fixes_the_standardisation():
    model = small(GaussianUncertaintyRegressor).partial_fit(X[:400], REAL[:400])
    loc, scale, mean = model.y_loc_.copy(), model.y_scale_.copy(), model.net_.module_.standardize.mean.clone()
    model.partial_fit(X[400:800] * 10, REAL[400:800] * 10)
    np.testing.assert_array_equal(model.y_loc_, loc)
    np.testing.assert_array_equal(model.y_scale_, scale)
    assert bool((model.net_.module_.standardize.mean == mean).all())
    assert model.y_loc_ == pytest.approx(REAL[:400].mean())


def test_a_chunk_of_other_columns_is_refused_and_the_model_kept():
    model = small(PoissonSpikeRegressor).partial_fit(X[:400], COUNTS[:400])
    before = model.predict(X[TEST])
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        model.partial_fit(X[["lean", "speed", "throttle"]][400:800], COUNTS[400:800])
    with pytest.raises(ValueError, match="X has 2 features, but PoissonSpikeRegressor is expecting 3"):
        model.partial_fit(X.to_numpy()[400:800, :2], COUNTS[400:800])
    np.testing.assert_array_equal(model.predict(X[TEST]), before)
    assert model.n_iter_ == 1


def test_a_fit_after_partial_fit_starts_afresh():
    model = small(PoissonSpikeRegressor, max_epochs=3).partial_fit(X[:400], COUNTS[:400])
    model.fit(X[:400], COUNTS[:400])
    assert model.n_iter_ == 3


def test_embedder_trains_on_chunks_of_identities_it_keeps_adding():  # 0.9 s with the CNN channels last: not slow
    # the default CNN with one member and three epochs of each chunk, trained on every other image of the seen
    # digits (all of them: 2.6 times as long), clears both marks: recall@1 over all their images 0.966 (all: 0.976),
    # one-shot 0.683 (all: 0.658)
    digits = load_digits()
    images, labels = digits.images.astype(np.float32), digits.target
    seen = labels < 7
    trained = seen & (np.arange(len(labels)) % 2 == 0)
    model = TripletEmbedder(embedding_dim=16, n_members=1, random_state=0)
    first, second = trained & (labels < 4), trained & (labels >= 4)
    for _ in range(3):
        model.partial_fit(images[first], labels[first])
        model.partial_fit(images[second], labels[second])
    assert list(model.classes_) == list(range(7)) and model.n_iter_ == 6
    assert model.input_size_ == (16, 16) and model.max_epochs_ == 1  # the first chunk's settings, one epoch a call
    assert model.score(images[seen], labels[seen]) > 0.95  # recall@1 of the identities trained on, in two chunks
    assert one_shot_accuracy(model.transform(images[~seen]), labels[~seen]) > 0.6  # 3-way on unseen digits


def test_partial_fit_after_fit_trains_one_epoch_without_holding_out_rows():
    for model, y in ((small(PoissonSpikeRegressor, max_epochs=3), COUNTS),
                     (TripletEmbedder(embedding_dim=4, hidden_layer_sizes=(8,), max_epochs=3, random_state=0),
                      np.arange(1200) % 6)):
        model.fit(X[:400], y[:400])
        assert model.history_["valid_loss"].notna().all()
        model.partial_fit(X[400:800], y[400:800])
        assert model.n_iter_ == 4 and np.isnan(model.history_["valid_loss"].iloc[-1])


def test_each_partial_fit_draws_new_batches(monkeypatch):
    from sklearn_costs._training import SliceLoader

    orders = []
    original = SliceLoader._order

    def recorded(self):
        order = original(self)
        if order is not None:
            orders.append(order.clone())
        return order

    monkeypatch.setattr(SliceLoader, "_order", recorded)
    model = small(PoissonSpikeRegressor).set_params(n_members=1)
    for _ in range(3):
        model.partial_fit(X[:400], COUNTS[:400])
    assert len(orders) == 3 and not any(bool((orders[i] == orders[j]).all()) for i, j in ((0, 1), (1, 2), (0, 2)))


def test_a_warm_start_after_partial_fit_validates_again():
    model = small(PoissonSpikeRegressor).partial_fit(X[:800], COUNTS[:800])
    model.set_params(warm_start=True, max_epochs=2).fit(X[:800], COUNTS[:800])
    assert model.n_iter_ == 3 and model.history_["valid_loss"].iloc[1:].notna().all()


# ------------------------------------------------------------ what partial_fit and warm_start continue, or refuse

SHAPING_CHANGES = {"hidden_layer_sizes": (8,), "n_members": 4, "clip_inputs": False, "activation": "tanh",
                   "optimizer": "sgd", "loss": "laplace"}


@pytest.mark.parametrize("name, value", SHAPING_CHANGES.items())
@pytest.mark.parametrize("path", ["partial_fit", "warm_start"])
def test_a_changed_parameter_that_shapes_the_network_is_refused_on_either_path(name, value, path):
    model = GaussianUncertaintyRegressor(max_epochs=1, hidden_layer_sizes=(4,), n_members=1, random_state=0)
    chunk = slice(0, 100)
    if path == "partial_fit":
        model.partial_fit(X[chunk], REAL[chunk])
    else:
        model.set_params(warm_start=True).fit(X[chunk], REAL[chunk])
    before = model.predict(X[TEST])
    model.set_params(**{name: value})
    way_out = "call fit to train a new one" if path == "partial_fit" else "set warm_start=False"
    with pytest.raises(ValueError, match=rf"{name} changed from .*{way_out}"):
        model.partial_fit(X[chunk], REAL[chunk]) if path == "partial_fit" else model.fit(X[chunk], REAL[chunk])
    np.testing.assert_array_equal(model.predict(X[TEST]), before)


def test_explicit_values_equal_to_the_first_chunks_resolved_ones_continue():
    model = GaussianUncertaintyRegressor(max_epochs=1, random_state=0).partial_fit(X[:100], REAL[:100])
    model.set_params(hidden_layer_sizes=model.hidden_layer_sizes_, n_members=model.n_members_)
    assert model.partial_fit(X[100:200], REAL[100:200]).n_iter_ == 2


@pytest.mark.parametrize("path", ["partial_fit", "warm_start"])
def test_training_parameters_are_taken_by_the_next_call(path):
    model = PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=1, random_state=0,
                                  warm_start=path == "warm_start")
    train = model.partial_fit if path == "partial_fit" else model.fit
    train(X[:100], COUNTS[:100])
    model.set_params(lr=0.05, weight_decay=0.01, batch_size=25)
    train = model.partial_fit if path == "partial_fit" else model.fit
    train(X[:100], COUNTS[:100])
    group = model.net_.optimizer_.param_groups[0]
    assert (group["lr"], group["weight_decay"], model.net_.batch_size) == (0.05, 0.01, 25)
    assert model.n_iter_ == 2
