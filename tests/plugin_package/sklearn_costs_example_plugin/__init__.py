"""An example loss plugin: the geometric distribution of counts (a negative binomial with dispersion 1)."""

import torch
import torch.nn.functional as F

from sklearn_costs.losses import CountLoss


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
