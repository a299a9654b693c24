"""
Writing a loss: the generalised Poisson for under- and over-dispersed counts
============================================================================

A loss is a small class: it names its distribution's parameters, maps the network's raw outputs to valid values
(``link``), and gives the negative log-likelihood with every constant (``nll``). Registered under a name, it is
available to every estimator of its task, to ``GridSearchCV`` and to ``sklearn-costs losses``.

Here: the generalised Poisson distribution (Consul and Jain 1973), whose dispersion :math:`\\xi` can make counts
more regular than Poisson (:math:`\\xi < 0`, as for neurons with a refractory period) or burstier
(:math:`\\xi > 0`). Its log-probability is

.. math:: \\log p(k) = \\log\\theta + (k - 1)\\log(\\theta + \\xi k) - \\theta - \\xi k - \\log k!,

with mean :math:`\\theta / (1 - \\xi)`. To ship it in a package, declare it in that package's ``pyproject.toml``::

    [project.entry-points."sklearn_costs.losses"]
    generalized_poisson = "my_package.losses:GeneralizedPoissonLoss"
"""

# %%
import numpy as np
import torch

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.losses import CountLoss, available_losses, register_loss


@register_loss
class GeneralizedPoissonLoss(CountLoss):
    """Generalised Poisson counts with a learned dispersion per neuron, ``-0.5 < xi < 0.9``."""

    name = "generalized_poisson"
    parameter_names = ("theta", "xi")
    shared_parameters = ("xi",)

    def link(self, raw):
        log_theta = raw[..., 0].clamp(-30.0, 30.0)
        xi = 0.7 * torch.tanh(raw[..., 1]) + 0.2  # within (-0.5, 0.9)
        return {"theta": torch.exp(log_theta), "log_theta": log_theta, "xi": xi}

    def nll(self, params, y):
        theta, xi = params["theta"], params["xi"]
        inner = (theta + xi * y).clamp_min(1e-12)
        return -(params["log_theta"] + (y - 1) * torch.log(inner) - inner - torch.lgamma(y + 1))

    def mean(self, params):
        return params["theta"] / (1 - params["xi"])

    def std(self, params):
        return torch.sqrt(params["theta"]) / (1 - params["xi"]) ** 1.5

    def init_raw(self, y):
        return torch.stack([torch.log(y.mean(0).clamp_min(1e-4)), torch.zeros_like(y[0])], dim=-1)


print(available_losses("counts"))

# %%
# Check the likelihood before training with it
# --------------------------------------------
# Probabilities over k must sum to one, and with xi = 0 it must be the Poisson distribution.
from scipy.stats import poisson

loss = GeneralizedPoissonLoss()
k = torch.arange(0, 200, dtype=torch.float64)
for xi in (-0.3, 0.0, 0.5):
    raw = torch.tensor([[np.log(2.0), np.arctanh((xi - 0.2) / 0.7)]], dtype=torch.float64)
    total = torch.exp(-loss.nll(loss.link(raw), k)).sum().item()
    print(f"xi={xi:+.1f}: sum of p(k) = {total:.6f}")
poisson_nll = -poisson.logpmf(k.numpy(), 2.0)
raw0 = torch.tensor([[np.log(2.0), np.arctanh(-0.2 / 0.7)]], dtype=torch.float64)
print("equals Poisson at xi=0:", np.allclose(loss.nll(loss.link(raw0), k).numpy(), poisson_nll))

# %%
# Train with it by name
# ---------------------
# ``register_loss`` (the decorator the built-in losses use) made the name known in this session; a package's
# entry point makes it known wherever the package is installed.
# Counts more regular than Poisson: a binomial with the same mean has variance below the mean.
rng = np.random.default_rng(0)
X = rng.normal(size=(3000, 3))
rate = np.exp(0.5 + 0.4 * X[:, 0] - 0.3 * X[:, 1])
Y = rng.binomial(8, rate / (rate.max() + 1.0))
for name in ("poisson", "generalized_poisson"):
    model = PoissonSpikeRegressor(loss=name, hidden_layer_sizes=(32,), max_epochs=60, random_state=0).fit(X, Y)
    log_lik = model.log_likelihood(X, Y).mean()
    print(f"{name:>20}: mean log-likelihood per bin {log_lik:.4f}, D2 {model.score(X, Y):.3f}")
xi = model.predict_distribution(X[:1])["xi"][:, 0]  # one value per member of the model (n_members_)
print(f"learned dispersion xi of the {model.n_members_} members: {np.round(xi, 3)} (negative: more regular than "
      "Poisson)")
