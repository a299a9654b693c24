"""Every constructor parameter of every public estimator and loss is checked at the start of ``fit``, by one
mechanism (scikit-learn's ``_parameter_constraints``), before any training or change of state."""

import inspect
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)

import sklearn_costs.ensemble
from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.base import NeuralCostEstimator
from sklearn_costs.losses import (
    BetaNLLLoss,
    ContrastiveLoss,
    GaussianLoss,
    PoissonLoss,
    TripletLoss,
    available_losses,
    get_loss,
)
from sklearn_costs.preprocessing import LagFeatures, SpikeHistory

ESTIMATORS = [PoissonSpikeRegressor, GaussianUncertaintyRegressor, TripletEmbedder, DeepEnsembleRegressor, LagFeatures,
              SpikeHistory]


def _data(cls):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    if cls is PoissonSpikeRegressor:
        return X, rng.poisson(1.0, size=40)
    if cls is TripletEmbedder:
        return X, np.repeat(np.arange(4), 10)
    if cls is SpikeHistory:
        return rng.poisson(1.0, size=(40, 3)), None
    return X, rng.normal(size=40)


def _tiny(cls):
    if cls is LagFeatures:
        return LagFeatures(n_lags=2)
    if cls is SpikeHistory:
        return SpikeHistory(n_lags=4, n_basis=2)
    if cls is DeepEnsembleRegressor:
        return DeepEnsembleRegressor(_tiny(GaussianUncertaintyRegressor), n_estimators=2, random_state=0)
    extra = {"embedding_dim": 4} if cls is TripletEmbedder else {}
    return cls(hidden_layer_sizes=(4,), max_epochs=2, random_state=0, **extra)


def _output(estimator, X):
    return estimator.transform(X) if hasattr(estimator, "transform") else estimator.predict(X)


@pytest.fixture(scope="module")
def fitted():
    """One tiny fitted estimator per class, with its data and its output on that data."""
    out = {}
    for cls in ESTIMATORS:
        X, y = _data(cls)
        estimator = _tiny(cls).fit(X, y)
        out[cls] = (estimator, X, y, _output(estimator, X))
    return out


@pytest.fixture
def no_training(monkeypatch):
    """Make any start of training fail loudly, so that an error raised by fit is known to come before it."""

    def training_started(*args, **kwargs):
        raise AssertionError("training started before the parameters were checked")

    monkeypatch.setattr(NeuralCostEstimator, "_fit_tensors", training_started)
    monkeypatch.setattr(sklearn_costs.ensemble, "_train_member", training_started)


def _fitted_state(estimator):
    return {k: v for k, v in vars(estimator).items() if k.endswith("_")}


def _assert_refused_and_state_kept(fitted, cls, params, match):
    estimator, X, y, before = fitted[cls]
    state = _fitted_state(estimator)
    original = {name: getattr(estimator, name) for name in params}
    estimator.set_params(**params)
    try:
        with pytest.raises(InvalidParameterError, match=match) as info:
            estimator.fit(X, y)
    finally:
        estimator.set_params(**original)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    after = _fitted_state(estimator)
    assert after.keys() == state.keys() and all(after[k] is state[k] for k in state)
    np.testing.assert_array_equal(_output(estimator, X), before)


# ------------------------------------------------------------------------------------- every parameter declared


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_constructor_parameter_has_a_constraint(cls):
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cls._parameter_constraints) == parameters


def test_every_builtin_loss_parameter_has_a_constraint():
    for info in available_losses():
        if info.source != "sklearn-costs":
            continue
        parameters = set(inspect.signature(info.cls.__init__).parameters) - {"self"}
        missing = parameters - set(info.cls._parameter_constraints)
        assert not missing, f"{info.cls.__name__} declares no constraint for {missing}"


def test_subclasses_extend_the_shared_constraints():
    shared = NeuralCostEstimator._parameter_constraints
    for cls in (PoissonSpikeRegressor, GaussianUncertaintyRegressor, TripletEmbedder):
        assert set(shared) <= set(cls._parameter_constraints)
    # a loss option's range is the loss's own, plus None for the loss's default
    assert GaussianUncertaintyRegressor._parameter_constraints["min_std"] == [
        *GaussianLoss._parameter_constraints["min_std"], None]


# --------------------------------------------------------------------------------- bad values from constraints


class BadType:
    def __repr__(self):
        return "BadType()"


def _generated_bad_values(cls):
    """(parameter, bad value): an object of no valid type for each parameter, and for each constraint that can
    generate one a value of a valid type outside its range (kept only when no other constraint accepts it)."""
    cases = []
    for name, constraints in cls._parameter_constraints.items():
        cases.append((name, BadType()))
        constraints = [make_constraint(c) for c in constraints]
        for constraint in constraints:
            try:
                bad = generate_invalid_param_val(constraint)
            except NotImplementedError:
                continue
            if not any(c.is_satisfied_by(bad) for c in constraints):
                cases.append((name, bad))
    return cases


GENERATED = [(cls, name, bad) for cls in ESTIMATORS for name, bad in _generated_bad_values(cls)]


# ids by the type of the bad value, not its text: a value generated from a StrOptions names the options in set order,
# which differs between processes (pytest-xdist's workers must collect the same ids)
@pytest.mark.parametrize("cls, name, bad", GENERATED,
                         ids=[f"{c.__name__}-{n}-{type(b).__name__}-{i}" for i, (c, n, b) in enumerate(GENERATED)])
def test_generated_bad_values_are_refused_before_training(fitted, no_training, cls, name, bad):
    _assert_refused_and_state_kept(fitted, cls, {name: bad}, rf"The '{name}' parameter of {cls.__name__} must be")


# ----------------------------------------------------------------------------------- the reported defects, by hand

REGRESSORS = [PoissonSpikeRegressor, GaussianUncertaintyRegressor]
NEURAL = [*REGRESSORS, TripletEmbedder]

HAND = [
    # reported: trained nothing, silently, or crashed somewhere inside
    (TripletEmbedder, {"margin": -1.0}, r"'margin' .* must be a float in the range \(0.0, inf\)"),
    (TripletEmbedder, {"margin": 0.0}, r"'margin' .* must be a float in the range \(0.0, inf\)"),
    (TripletEmbedder, {"images_per_identity": 1}, r"'images_per_identity' .* must be an int in the range \[2, inf\)"),
    (TripletEmbedder, {"images_per_identity": 0}, r"'images_per_identity' .* must be an int in the range \[2, inf\)"),
    (GaussianUncertaintyRegressor, {"min_std": -1.0}, r"'min_std' .* must be a float in the range \(0.0, inf\)"),
    (GaussianUncertaintyRegressor, {"min_std": 0.0}, r"'min_std' .* must be a float in the range \(0.0, inf\)"),
    (GaussianUncertaintyRegressor, {"linear_weight": 1.5},
     r"'linear_weight' .* must be a float in the range \[0.0, 1.0\] or a str among {'auto'}"),
    *[(cls, {"n_iter_no_change": v}, r"'n_iter_no_change' .* must be an int in the range \[1, inf\)")
      for cls in NEURAL for v in (0, -3)],
    *[(cls, {"n_threads": 0}, r"'n_threads' .* must be an int in the range \[1, inf\)") for cls in NEURAL],
    *[(cls, {"n_members": 0}, r"'n_members' .* must be an int in the range \[1, inf\)")
      for cls in (PoissonSpikeRegressor, GaussianUncertaintyRegressor)],
    # the other ranges
    *[(cls, params, message) for cls in NEURAL for params, message in [
        ({"max_epochs": 2.5}, "'max_epochs'"),
        ({"batch_size": -2}, "'batch_size'"),
        ({"batch_size": "big"}, "'batch_size'"),
        ({"lr": 0}, r"'lr' .* \(0.0, inf\)"),
        ({"lr": float("nan")}, "'lr'"),
        ({"weight_decay": -0.1}, r"'weight_decay' .* \[0.0, inf\)"),
        ({"dropout": 1.0}, r"'dropout' .* \[0.0, 1.0\)"),
        ({"validation_fraction": 0.0}, r"'validation_fraction' .* \(0.0, 1.0\)"),
        ({"hidden_layer_sizes": (8.5,)}, "'hidden_layer_sizes' .* tuple of positive ints"),
        ({"hidden_layer_sizes": "64"}, "'hidden_layer_sizes'"),
        ({"activation": "swish"}, "'activation'"),
        ({"optimizer": torch.nn.Linear}, "'optimizer' .* torch.optim.Optimizer subclass"),
        ({"device": "gpu"}, "'device' .* 'cpu', 'cuda', 'cuda:N' or 'auto'"),
        ({"device": "cuda:x"}, "'device'"),
        ({"precision": "float16"}, "'precision'"),
        ({"random_state": "seed"}, "'random_state'"),
        ({"verbose": -1}, "'verbose'"),
        ({"early_stopping": "no"}, "'early_stopping'"),
        ({"loss": 3}, "'loss' .* registered loss name"),
    ]],
    (GaussianUncertaintyRegressor, {"std_link": "log"}, "'std_link'"),
    (TripletEmbedder, {"embedding_dim": 0}, "'embedding_dim'"),
    (TripletEmbedder, {"cnn_width": 0}, "'cnn_width'"),
    (TripletEmbedder, {"cnn_blocks": -1}, "'cnn_blocks'"),
    (TripletEmbedder, {"augment": "yes"}, "'augment'"),
    (TripletEmbedder, {"miner": "hardest"}, "'miner'"),
    (TripletEmbedder, {"module": "resnet"}, "'module'"),
    (TripletEmbedder, {"image_shape": (8,)}, r"'image_shape' .* \(H, W\) or \(C, H, W\)"),
    (TripletEmbedder, {"image_shape": (0, 8)}, "'image_shape'"),
    (TripletEmbedder, {"normalize": None}, "'normalize'"),
    (DeepEnsembleRegressor, {"n_estimators": 0}, "'n_estimators'"),
    (DeepEnsembleRegressor, {"n_jobs": 0}, "'n_jobs' .* non-zero int"),
    (DeepEnsembleRegressor, {"estimator": LagFeatures()}, "'estimator' .* GaussianUncertaintyRegressor or a "
                                                          "PoissonSpikeRegressor"),
    # a bad member parameter is refused before any member trains
    (DeepEnsembleRegressor, {"estimator": GaussianUncertaintyRegressor(min_std=-1.0)},
     "'min_std' parameter of GaussianUncertaintyRegressor"),
    (LagFeatures, {"n_lags": 0}, "'n_lags'"),
    (LagFeatures, {"n_basis": 0}, "'n_basis'"),
    (LagFeatures, {"include_current": "yes"}, "'include_current'"),
]


@pytest.mark.parametrize("cls, params, match", HAND,
                         ids=[f"{c.__name__}-{p}" for c, p, _ in HAND])
def test_bad_values_are_refused_before_training(fitted, no_training, cls, params, match):
    _assert_refused_and_state_kept(fitted, cls, params, match)


def test_messages_name_the_parameter_the_estimator_and_the_value():
    X, y = _data(TripletEmbedder)
    with pytest.raises(ValueError) as info:
        TripletEmbedder(margin=-1.0).fit(X, y)
    assert str(info.value) == ("The 'margin' parameter of TripletEmbedder must be a float in the range (0.0, inf) "
                               "or None. Got -1.0 instead.")


def test_lbfgs_weight_decay_is_a_rule_between_parameters(fitted, no_training):
    estimator, X, y, before = fitted[PoissonSpikeRegressor]
    with pytest.raises(ValueError, match="lbfgs' has no weight_decay"):
        clone(estimator).set_params(optimizer="lbfgs", weight_decay=0.1).fit(X, y)


@pytest.mark.parametrize("params", [{"max_epochs": "auto"}, {"cnn_blocks": "auto"}, {"cnn_width": "auto"},
                                    {"augment": "auto"}, {"n_iter_no_change": "auto"}, {"batch_size": "auto"}])
def test_triplet_embedder_constraints_accept_auto(params):
    TripletEmbedder(**params)._validate_params()


@pytest.mark.parametrize("cls", REGRESSORS)
@pytest.mark.parametrize("name", ["lr", "weight_decay", "n_iter_no_change", "max_epochs"])
def test_regressors_refuse_auto_they_cannot_resolve(cls, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}'"):
        cls(**{name: "auto"})._validate_params()


@pytest.mark.parametrize("cls", REGRESSORS)
def test_regressors_resolve_their_auto_defaults(cls):
    assert {cls().get_params()[name] for name in ("hidden_layer_sizes", "n_members", "n_threads")} == {"auto"}


@pytest.mark.parametrize("value", [(), (8,), [8, 4], 8, np.int64(3)])
def test_hidden_layer_sizes_accepts_tuples_lists_and_ints(value):
    PoissonSpikeRegressor(hidden_layer_sizes=value)._validate_params()


@pytest.mark.parametrize("device", ["cpu", "auto", "cuda", "cuda:1", torch.device("cpu")])
def test_device_syntax_is_accepted_and_availability_is_checked_at_fit(device):
    PoissonSpikeRegressor(device=device)._validate_params()


# ------------------------------------------------------------------------------------------------------- losses


@pytest.mark.parametrize(
    "loss, task, match",
    [
        (TripletLoss(margin=0.0), "embedding", r"'margin' parameter of TripletLoss must be a float in the range \(0"),
        (TripletLoss(miner="hardest"), "embedding", "'miner' parameter of TripletLoss"),
        (TripletLoss(distance="cosine"), "embedding", "'distance' parameter of TripletLoss"),
        (ContrastiveLoss(margin=-1.0), "embedding", "'margin' parameter of ContrastiveLoss"),
        (GaussianLoss(min_std=-1.0), "continuous", "'min_std' parameter of GaussianLoss"),
        (GaussianLoss(std_link="relu"), "continuous", "'std_link' parameter of GaussianLoss"),
        (BetaNLLLoss(beta=2.0), "continuous", r"'beta' parameter of BetaNLLLoss must be a float in the range \[0.0, 1"),
        (PoissonLoss(rate_link="exp"), "counts", "'rate_link' parameter of PoissonLoss"),
    ],
)
def test_bad_loss_parameters_are_refused_when_the_loss_is_taken(loss, task, match):
    with pytest.raises(InvalidParameterError, match=match):
        get_loss(loss, task)
    with pytest.raises(InvalidParameterError, match=match):
        get_loss(type(loss), task, **loss.get_params())


def test_a_bad_loss_instance_is_refused_by_fit_before_training(fitted, no_training):
    _assert_refused_and_state_kept(fitted, TripletEmbedder, {"loss": TripletLoss(margin=-0.5)},
                                   "'margin' parameter of TripletLoss")
    _assert_refused_and_state_kept(fitted, GaussianUncertaintyRegressor, {"loss": GaussianLoss(min_std=0.0)},
                                   "'min_std' parameter of GaussianLoss")


def test_a_plugin_loss_without_constraints_is_not_checked():
    class Plain(PoissonLoss):
        name = "plain_poisson_test"
        _parameter_constraints = {}

        def __init__(self, rate_link="anything"):
            super().__init__(rate_link=rate_link)

    assert get_loss(Plain(), "counts").rate_link == "anything"


# ------------------------------------------------------------------------------------------------ small defects


def test_type_errors_name_the_public_estimator():
    X, y = _data(PoissonSpikeRegressor)
    for cls in REGRESSORS:
        with pytest.raises(TypeError, match=rf"^{cls.__name__}\.fit\(\) got an unexpected keyword argument "
                                            "'sample_weights'") as info:
            cls().fit(X, y, sample_weights=np.ones(len(y)))
        assert "DistributionRegressor" not in str(info.value)
    with pytest.raises(TypeError, match=r"^PoissonSpikeRegressor\.fit\(\) missing a required argument: 'y'"):
        PoissonSpikeRegressor().fit(X)


def test_type_errors_of_fitted_methods_name_the_public_estimator(fitted):
    model, X, _, _ = fitted[PoissonSpikeRegressor]
    with pytest.raises(TypeError, match=r"^PoissonSpikeRegressor\.predict\(\) got an unexpected keyword argument "
                                        "'return_var'"):
        model.predict(X, return_var=True)
    with pytest.raises(TypeError, match=r"^PoissonSpikeRegressor\.sample\(\)"):
        model.sample(X, size=3)
    # the signatures scikit-learn inspects are still the real ones
    assert list(inspect.signature(PoissonSpikeRegressor.fit).parameters) == ["self", "X", "y", "sample_weight"]


def _fit_verbose(capsys):
    X, y = _data(PoissonSpikeRegressor)
    PoissonSpikeRegressor(hidden_layer_sizes=(4,), max_epochs=2, verbose=1, random_state=0).fit(X, y)
    return capsys.readouterr().out


def test_verbose_epoch_table_has_no_colour_codes_when_not_a_terminal(capsys):
    out = _fit_verbose(capsys)
    assert "train_loss" in out and re.search(r"^\s+1\s+\d", out, re.M)
    assert "\x1b[" not in out


def test_verbose_epoch_table_is_coloured_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr("sklearn_costs._lifecycle._is_terminal", lambda stream: True)
    assert "\x1b[" in _fit_verbose(capsys)


def test_triplet_get_feature_names_out_checks_its_input():
    X, y = _data(TripletEmbedder)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = _tiny(TripletEmbedder).fit(frame, y)
    names = [f"embedding{i}" for i in range(4 * model.n_members_)]
    assert list(model.get_feature_names_out()) == names
    assert list(model.get_feature_names_out(["a", "b", "c"])) == names
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        model.get_feature_names_out(["wrong"])
    model = _tiny(TripletEmbedder).fit(X, y)
    with pytest.raises(ValueError, match="input_features should have length equal to number of features"):
        model.get_feature_names_out(["wrong"])


def test_lag_features_get_feature_names_out_checks_its_input():
    frame = pd.DataFrame({"speed": [1.0, 2.0, 3.0]})
    lags = LagFeatures(n_lags=1).fit(frame)
    assert list(lags.get_feature_names_out()) == ["speed", "speed_lag1"]
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        lags.get_feature_names_out(["wrong"])
    lags = LagFeatures(n_lags=1).fit(frame.to_numpy())
    assert list(lags.get_feature_names_out()) == ["x0", "x0_lag1"]
    assert list(lags.get_feature_names_out(["v"])) == ["v", "v_lag1"]
    with pytest.raises(ValueError, match="input_features should have length equal to number of features"):
        lags.get_feature_names_out(["v", "w"])
