"""Every parameter that accepts ``"auto"`` fits when it is given ``"auto"`` explicitly, alone and together with all
the estimator's others: the constraint that lets ``"auto"`` through and the rule that resolves it must agree."""

import numpy as np
import pytest
from sklearn.utils._param_validation import make_constraint

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder

ESTIMATORS = [PoissonSpikeRegressor, GaussianUncertaintyRegressor, TripletEmbedder]


def auto_parameters(cls):
    """The parameters of ``cls`` whose constraints take ``"auto"`` as a keyword (not merely as any string)."""
    names = []
    for name, constraints in cls._parameter_constraints.items():
        constraints = [make_constraint(c) for c in constraints]
        if any(c.is_satisfied_by("auto") for c in constraints) and not any(
                c.is_satisfied_by("not-a-keyword") for c in constraints):
            names.append(name)
    return names


def _data(cls, images=False):
    rng = np.random.default_rng(0)
    if cls is TripletEmbedder:
        X = rng.normal(size=(40, 8, 8) if images else (40, 6)).astype(np.float32)
        return X, np.repeat(np.arange(8), 5)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    if cls is PoissonSpikeRegressor:
        return X, rng.poisson(1.0, size=60)
    return X, rng.normal(size=60)


def _small(cls):
    """Parameters that keep a fit short; an ``"auto"`` under test replaces them."""
    small = {"max_epochs": 2, "random_state": 0, "hidden_layer_sizes": (4,)}
    if cls is TripletEmbedder:
        small.update(embedding_dim=4, n_members=1, cnn_width=4, cnn_blocks=1, input_size=(8, 8))
    return small


def test_every_estimator_has_its_auto_parameters_found():
    assert {"n_members", "hidden_layer_sizes", "clip_inputs", "batch_size", "n_threads", "device"} <= set(
        auto_parameters(PoissonSpikeRegressor))
    assert "linear_weight" in auto_parameters(GaussianUncertaintyRegressor)
    assert {"module", "input_size", "n_members", "augment", "cnn_width", "cnn_blocks", "max_epochs",
            "n_iter_no_change", "miner", "batch_size"} <= set(auto_parameters(TripletEmbedder))
    assert "loss" not in auto_parameters(TripletEmbedder)  # any string is a loss name: "auto" is not a keyword


@pytest.mark.parametrize("cls, name", [(cls, name) for cls in ESTIMATORS for name in auto_parameters(cls)])
def test_each_auto_parameter_alone_fits(cls, name):
    params = {**_small(cls), name: "auto"}
    if name == "max_epochs":
        params["n_iter_no_change"] = 1  # early stopping ends the fit soon
    X, y = _data(cls, images=cls is TripletEmbedder)
    model = cls(**params).fit(X, y)
    assert model.get_params()[name] == "auto" and model.n_iter_ >= 1


@pytest.mark.parametrize("short", [{"n_iter_no_change": 1}, {"max_epochs": 2}])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_all_auto_parameters_together_fit(cls, short):
    """Every "auto" parameter given as "auto" at once (the defaults may differ: TripletEmbedder's batch_size is
    128), but for the one in ``short`` that keeps the fit short; each of those two is "auto" in one of the runs."""
    autos = {name: "auto" for name in auto_parameters(cls) if name not in short}
    model = cls(**{**_small(cls), **short, **autos}).fit(*_data(cls))
    assert model.n_iter_ >= 1
    if cls is TripletEmbedder and "max_epochs" in autos:  # epochs from the steps of the resolved batch (16 rows)
        assert model.max_epochs_ == 300


def test_deep_ensemble_members_take_every_auto_parameter():
    """DeepEnsembleRegressor has no "auto" parameter of its own: its members' are those of the regressor."""
    member = GaussianUncertaintyRegressor(**{**_small(GaussianUncertaintyRegressor),
                                             **{name: "auto" for name in auto_parameters(GaussianUncertaintyRegressor)
                                                if name not in ("max_epochs", "hidden_layer_sizes")}})
    assert not [name for name in auto_parameters(DeepEnsembleRegressor)]
    X, y = _data(GaussianUncertaintyRegressor)
    ensemble = DeepEnsembleRegressor(member, n_estimators=2, random_state=0).fit(X, y)
    assert np.isfinite(ensemble.predict(X)).all()
