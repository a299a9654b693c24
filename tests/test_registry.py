import importlib.metadata
import warnings

import numpy as np
import pytest
import torch

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs import losses as L
from sklearn_costs.losses import registry

GOOD_PLUGIN = """
from sklearn_costs.losses import PoissonLoss

class Renamed(PoissonLoss):
    name = "renamed_poisson"
"""


def names(task):
    return {i.name for i in L.available_losses(task)}


def test_builtin_losses_are_registered_per_task():
    assert {"poisson", "negative_binomial", "zero_inflated_poisson", "mse"} <= names("counts")
    assert {"gaussian", "laplace", "student_t", "beta_nll", "mse"} <= names("continuous")
    assert {"triplet", "soft_margin_triplet", "contrastive", "multi_similarity", "proxy_anchor"} <= names("embedding")
    info = next(i for i in L.available_losses("counts") if i.name == "poisson")
    assert info.source == "sklearn-costs" and info.cls is L.PoissonLoss


def test_get_loss_accepts_name_class_and_instance():
    assert isinstance(L.get_loss("poisson", "counts"), L.PoissonLoss)
    assert isinstance(L.get_loss(L.NegativeBinomialLoss, "counts"), L.NegativeBinomialLoss)
    mine = L.PoissonLoss(rate_link="softplus")
    got = L.get_loss(mine, "counts")
    assert got is not mine and got.rate_link == "softplus"


def test_same_name_resolves_per_task():
    assert isinstance(L.get_loss("mse", "counts"), L.SquaredErrorCountLoss)
    assert isinstance(L.get_loss("mse", "continuous"), L.SquaredErrorLoss)


def test_options_reach_names_classes_and_copies_of_instances():
    loss = L.get_loss("triplet", "embedding", margin=0.5, miner="batch_hard")
    assert (loss.margin, loss.miner) == (0.5, "batch_hard")
    assert L.get_loss(L.TripletLoss, "embedding", margin=0.5).margin == 0.5
    given = L.TripletLoss(margin=0.1)
    assert L.get_loss(given, "embedding", margin=0.5).margin == 0.5
    assert given.margin == 0.1  # the user's instance is not changed
    assert L.get_loss(given, "embedding").margin == 0.1  # no option: the instance's own value


@pytest.mark.parametrize("loss", ["soft_margin_triplet", L.SoftMarginTripletLoss, L.SoftMarginTripletLoss()])
def test_an_option_the_loss_does_not_take_is_refused_naming_those_it_takes(loss):
    with pytest.raises(ValueError, match=r"takes no option 'margin' \(its options: miner, distance\)"):
        L.get_loss(loss, "embedding", estimator="TripletEmbedder", margin=0.5)


def test_unknown_name_lists_available_losses_and_suggests_a_close_one():
    with pytest.raises(ValueError) as err:
        L.get_loss("poison", "counts")
    message = str(err.value)
    assert "unknown 'counts' loss 'poison'" in message
    assert "Did you mean 'poisson'?" in message
    assert "negative_binomial" in message and "zero_inflated_poisson" in message
    assert "gaussian" not in message  # only the names of the asked task


def test_loss_of_another_task_is_refused_with_the_task_named():
    expected = "loss 'triplet' serves the 'embedding' task, but MyEstimator needs a 'counts'"
    with pytest.raises(ValueError, match=expected):
        L.get_loss("triplet", "counts", estimator="MyEstimator")
    with pytest.raises(ValueError, match="serves the 'continuous' task"):
        L.get_loss(L.GaussianLoss(), "counts")


def test_anything_else_is_a_type_error():
    with pytest.raises(TypeError, match="registered name, a sklearn_costs.losses.Loss subclass or instance"):
        L.get_loss(42, "counts")


def test_discovery_is_lazy_and_cached(monkeypatch):
    calls = []
    real = registry.entry_points

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counting)
    L.refresh()
    assert calls == []  # nothing scanned until asked
    L.get_loss("poisson", "counts")
    L.available_losses()
    L.get_loss("gaussian", "continuous")
    assert calls == [{"group": "sklearn_costs.losses"}]
    L.refresh()


def test_plugin_from_an_entry_point_is_found(fake_distribution):
    fake_distribution("fake-good", "fakeplugin_good", GOOD_PLUGIN, {"renamed_poisson": "fakeplugin_good:Renamed"})
    info = next(i for i in L.available_losses("counts") if i.name == "renamed_poisson")
    assert info.source == "fake-good"
    assert type(L.get_loss("renamed_poisson", "counts")).__name__ == "Renamed"


def test_broken_plugin_warns_at_discovery_and_errors_only_when_asked(fake_distribution):
    fake_distribution(
        "fake-broken", "fakeplugin_broken", "import not_a_module_anywhere\n", {"shiny": "fakeplugin_broken:Shiny"}
    )
    with pytest.warns(L.LossPluginWarning, match="loss plugin 'shiny' from distribution 'fake-broken'.*ModuleNotFound"):
        available = names("counts")
    assert "poisson" in available  # the other losses are unharmed
    assert isinstance(L.get_loss("poisson", "counts"), L.PoissonLoss)
    with pytest.raises(L.LossPluginError, match="'fake-broken'.*failed to load") as err:
        L.get_loss("shiny", "counts")
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_entry_point_that_is_not_a_loss_is_reported_as_broken(fake_distribution):
    fake_distribution("fake-notaloss", "fakeplugin_notaloss", "class Thing:\n    pass\n",
                      {"thing": "fakeplugin_notaloss:Thing"})
    with pytest.warns(L.LossPluginWarning, match="must be a subclass of sklearn_costs.losses.Loss"):
        L.available_losses()
    with pytest.raises(L.LossPluginError) as err:
        L.get_loss("thing", "counts")
    assert isinstance(err.value.__cause__, TypeError)


def test_two_plugins_with_one_name_warn_naming_both(fake_distribution, tmp_path):
    fake_distribution("fake-one", "fakeplugin_one", GOOD_PLUGIN, {"dup": "fakeplugin_one:Renamed"})
    fake_distribution("fake-two", "fakeplugin_two", GOOD_PLUGIN, {"dup": "fakeplugin_two:Renamed"})
    with pytest.warns(L.LossPluginWarning, match="two distributions register the 'counts' loss 'dup': 'fake-one' and "
                                                 "'fake-two'"):
        L.available_losses()
    assert L.get_loss("dup", "counts").__module__ == "fakeplugin_one"


def test_plugin_clashing_with_a_builtin_keeps_the_builtin(fake_distribution):
    fake_distribution("fake-clash", "fakeplugin_clash", GOOD_PLUGIN, {"poisson": "fakeplugin_clash:Renamed"})
    with pytest.warns(L.LossPluginWarning, match="'sklearn-costs' and 'fake-clash'"):
        loss = L.get_loss("poisson", "counts")
    assert type(loss) is L.PoissonLoss


def _example_plugin_installed():
    try:
        importlib.metadata.distribution("sklearn-costs-example-plugin")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_example_plugin = pytest.mark.skipif(
    not _example_plugin_installed(),
    reason="tests/plugin_package is not installed (pip install ./tests/plugin_package, as the README's test command "
    "does)",
)


@needs_example_plugin
def test_installed_example_plugin_is_registered():
    L.refresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error", L.LossPluginWarning)
        info = next(i for i in L.available_losses("counts") if i.name == "geometric")
    assert info.source == "sklearn-costs-example-plugin"
    assert type(L.get_loss("geometric", "counts")).__name__ == "GeometricLoss"


# ------------------------------------------------------------------------------------------ the loss contract

def _distribution_loss_subclass(task):
    """A loss written against the old wording of the contract ("subclass DistributionLoss"): it fits, but the
    continuous one has no scipy distribution and the counts one no count check."""

    class Direct(L.DistributionLoss):
        name = f"direct_{task}"
        parameter_names = ("mean", "std")

        def link(self, raw):
            return {"mean": raw[..., 0], "std": L.positive(raw[..., 1], "softplus", 1e-3)}

        def nll(self, params, y):
            return torch.log(params["std"]) + 0.5 * ((y - params["mean"]) / params["std"]) ** 2

        def mean(self, params):
            return params["mean"]

        def std(self, params):
            return params["std"]

    Direct.task = task
    return Direct


@pytest.mark.parametrize("task, base, provides", [
    ("continuous", "ContinuousLoss", "gives sampling, intervals and the CDF from scipy_distribution"),
    ("counts", "CountLoss", "checks that y holds non-negative integer counts"),
])
def test_register_refuses_a_distribution_loss_that_skips_its_task_base_class(task, base, provides):
    with pytest.raises(TypeError, match=rf"does not follow the loss contract: a '{task}' loss must subclass "
                                        rf"sklearn_costs.losses.{base} \(which {provides}"):
        L.register_loss(_distribution_loss_subclass(task))
    assert f"direct_{task}" not in names(task)


def test_register_names_every_method_a_loss_leaves_unimplemented():
    class HalfDone(L.ContinuousLoss):
        name = "half_done"

        def link(self, raw):
            return {"mean": raw[..., 0], "std": L.positive(raw[..., 1], "softplus")}

    with pytest.raises(TypeError, match="it does not implement nll; it does not implement mean; it does not "
                                        r"implement scipy_distribution; it does not implement std \(or set "
                                        r"has_std = False\)"):
        L.register_loss(HalfDone)
    HalfDone.has_std = False
    with pytest.raises(TypeError) as err:
        L.register_loss(HalfDone)
    assert "std" not in str(err.value)


@pytest.mark.parametrize("estimator, task", [(GaussianUncertaintyRegressor, "continuous"),
                                             (PoissonSpikeRegressor, "counts")])
def test_an_unregistered_loss_is_checked_against_the_contract_before_training(estimator, task, monkeypatch):
    def training_started(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("sklearn_costs.base.NeuralCostEstimator._fit_tensors", training_started)
    X, y = np.zeros((30, 2)), np.ones(30)
    for loss in (_distribution_loss_subclass(task), _distribution_loss_subclass(task)()):
        with pytest.raises(TypeError, match=r"loss=Direct does not follow the loss contract"):
            estimator(loss=loss, max_epochs=1).fit(X, y)


def test_entry_point_that_breaks_the_contract_is_reported_as_broken(fake_distribution):
    source = ("from sklearn_costs.losses import ContinuousLoss\n\n"
              "class Sketch(ContinuousLoss):\n    name = 'sketch'\n")
    fake_distribution("fake-sketch", "fakeplugin_sketch", source, {"sketch": "fakeplugin_sketch:Sketch"})
    with pytest.warns(L.LossPluginWarning, match="'sketch'.*does not follow the loss contract: it does not implement "
                                                 "link"):
        available = names("continuous")
    assert "sketch" not in available and "gaussian" in available
    with pytest.raises(L.LossPluginError):
        L.get_loss("sketch", "continuous")


@needs_example_plugin
def test_example_continuous_plugin_serves_every_prediction_of_the_regressor():
    """The example package's LogisticLoss, written from the contract page alone: mean and std, intervals, CDF,
    calibration metrics, likelihood and samples all work through it and agree with scipy's logistic."""
    from scipy import stats

    from sklearn_costs.datasets import make_heteroscedastic_regression
    from sklearn_costs.metrics import neg_calibration_error_scorer, uncertainty_report

    L.refresh()
    data = make_heteroscedastic_regression(600, random_state=0)
    X, y = data.X.to_numpy(), data.y
    # one network: its distribution is one logistic (the mixture of members is tested in tests/test_members.py)
    # and without the linear part, so that the prediction is that logistic alone
    model = GaussianUncertaintyRegressor(loss="logistic", n_members=1, linear_weight=0, max_epochs=60,
                                         random_state=0).fit(X[:400], y[:400])
    assert type(model.loss_).__name__ == "LogisticLoss"
    params = model.predict_distribution(X[400:])
    mean, std = model.predict(X[400:], return_std=True)
    np.testing.assert_allclose(mean, params["mean"], rtol=1e-6)
    np.testing.assert_allclose(std, params["scale"] * np.pi / np.sqrt(3), rtol=1e-5)
    dist = stats.logistic(params["mean"], params["scale"])
    lower, upper = model.predict_interval(X[400:], coverage=0.8)
    np.testing.assert_allclose(lower, dist.ppf(0.1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upper, dist.ppf(0.9), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_cdf(X[400:], y[400:]), dist.cdf(y[400:]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.log_likelihood(X[400:], y[400:]), dist.logpdf(y[400:]), rtol=1e-4, atol=1e-5)
    assert 0.65 < np.mean((y[400:] >= lower) & (y[400:] <= upper)) < 0.95  # the 80% interval is roughly right
    assert model.sample(X[400:], n_samples=3, random_state=0).shape == (3, 200)
    report = uncertainty_report(model, X[400:], y[400:])
    assert np.isfinite(list(report.values())).all() and report["calibration_error"] < 0.15  # gaussian: 0.08
    assert neg_calibration_error_scorer(model, X[400:], y[400:]) == -report["calibration_error"]
