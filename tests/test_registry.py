import importlib.metadata
import warnings

import pytest

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
    assert {"triplet", "soft_margin_triplet", "contrastive"} <= names("embedding")
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


def test_defaults_reach_only_losses_that_accept_them():
    loss = L.get_loss("triplet", "embedding", margin=0.5, miner="batch_hard", unrelated=1)
    assert (loss.margin, loss.miner) == (0.5, "batch_hard")
    assert L.get_loss(L.TripletLoss(margin=0.1), "embedding", margin=0.5).margin == 0.1


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
