"""An example loss plugin, written from the contract page alone: the geometric distribution of counts (a negative
binomial with dispersion 1) and the logistic distribution of real targets."""

import math

import torch
import torch.nn.functional as F
from scipy import stats

from sklearn_costs.losses import ContinuousLoss, CountLoss, inverse_positive, positive


class GeometricLoss(CountLoss):
    """Geometric counts ``p(k) = (1 - q) q**k`` with mean ``mu = q / (1 - q)``, through a log link on ``mu``.

    Equals ``scipy.stats.geom(1 - q, loc=-1)``; the variance ``mu + mu**2`` suits very bursty neurons.
    """

    name = "geometric"
    parameter_names = ("rate",)

    def link(self, raw):
        log_mu = raw[..., 0].clamp(-60.0, 60.0)
        return {"rate": torch.exp(log_mu), "log_rate": log_mu}

    def nll(self, params, y):
        log_mu = params["log_rate"]
        log1p_mu = F.softplus(log_mu)  # log(1 + mu)
        return log1p_mu - y * (log_mu - log1p_mu)

    def mean(self, params):
        return params["rate"]

    def std(self, params):
        mu = params["rate"]
        return torch.sqrt(mu + mu**2)

    def sample(self, params, rng):
        mu = params["rate"]
        return rng.geometric(1.0 / (1.0 + mu)) - 1

    def init_raw(self, y):
        return torch.log(y.mean(0).clamp_min(1e-4))[:, None]


class LogisticLoss(ContinuousLoss):
    """Logistic noise ``p(y) = exp(-z) / (s (1 + exp(-z))**2)``, ``z = (y - mu) / s``: Gaussian-like, heavier tails.

    Equals ``scipy.stats.logistic(mu, s)``; its std is ``s * pi / sqrt(3)``.
    """

    name = "logistic"
    parameter_names = ("mean", "scale")
    scale_parameters = ("scale",)

    def __init__(self, min_scale=1e-4):
        self.min_scale = min_scale

    def link(self, raw):
        return {"mean": raw[..., 0], "scale": positive(raw[..., 1], "softplus", self.min_scale)}

    def nll(self, params, y):
        s = params["scale"]
        z = (y - params["mean"]) / s
        return z + 2.0 * F.softplus(-z) + torch.log(s)

    def mean(self, params):
        return params["mean"]

    def std(self, params):
        return params["scale"] * (math.pi / math.sqrt(3.0))

    def scipy_distribution(self, params):
        return stats.logistic(params["mean"], params["scale"])

    def init_raw(self, y):
        scale = (y.std(0) * math.sqrt(3.0) / math.pi).clamp_min(1e-3)
        return torch.stack([y.mean(0), inverse_positive(scale, "softplus")], dim=-1)
