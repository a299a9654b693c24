"""Count likelihoods for spike counts: Poisson, negative binomial, zero-inflated Poisson, and a least-squares baseline.

Every ``nll`` includes ``log k!`` so that it equals ``-scipy.stats.<dist>.logpmf``. The training objective
(``training_loss``) leaves it out: it does not depend on the parameters, and ``lgamma`` of every count in every
batch was a quarter of the time of a training step on many neurons.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.utils._param_validation import StrOptions

from .base import MAX_LOG, CountLoss, _defined_by, inverse_positive, positive
from .registry import register_loss

#: The constraints of the losses whose only parameter is the rate link.
_RATE_LINK = {"rate_link": [StrOptions({"log", "softplus"})]}


def _log_rate(raw, rate_link):
    """``(rate, log rate)`` from raw outputs; for the log link the log rate is the raw value itself (no underflow)."""
    if rate_link == "log":
        log_rate = raw.clamp(-MAX_LOG, MAX_LOG)
        return torch.exp(log_rate), log_rate
    rate = positive(raw, rate_link)
    return rate, torch.log(rate)


def _poisson_nll(rate, log_rate, y):
    return _poisson_objective(rate, log_rate, y) + torch.lgamma(y + 1)


def _poisson_objective(rate, log_rate, y):
    """The Poisson NLL without ``log k!``: what training minimises."""
    return rate - y * log_rate


def _raw_rate(mean_count, rate_link):
    mean_count = mean_count.clamp_min(1e-4)
    return torch.log(mean_count) if rate_link == "log" else inverse_positive(mean_count, "softplus")


@register_loss
class PoissonLoss(CountLoss):
    """Poisson likelihood of spike counts: ``-log p(k) = lambda - k log lambda + log k!``.

    Parameters
    ----------
    rate_link : {"log", "softplus"}, default="log"
        Maps the raw output to the rate. ``"log"`` (exp of the output) is the canonical GLM link;
        ``"softplus"`` grows linearly for large outputs, which tames exploding rates.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``PoissonSpikeRegressor(loss="poisson")``.

    >>> import torch
    >>> loss = PoissonLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 1)), torch.tensor([0.0, 3.0]))
    tensor([1.0000, 2.7918])
    """

    name = "poisson"
    _parameter_constraints: dict = _RATE_LINK
    parameter_names = ("rate",)

    def __init__(self, rate_link="log"):
        self.rate_link = rate_link

    def link(self, raw):
        rate, log_rate = _log_rate(raw[..., 0], self.rate_link)
        return {"rate": rate, "log_rate": log_rate}

    def nll(self, params, y):
        return _poisson_nll(params["rate"], params["log_rate"], y)

    def _nll_without_log_factorial(self, params, y):
        return _poisson_objective(params["rate"], params["log_rate"], y)

    def _training_link(self, raw):
        # The log link without the clamp that keeps every rate within float32 for any output: its backward pass was
        # a third of the loss's time in a training step. An output that training could reach beyond the clamp
        # (a rate above e**60) is a runaway, and the loss it gives (inf or nan) stops the fit (the divergence guard).
        # A subclass with its own link keeps it.
        if self.rate_link != "log" or _defined_by(type(self), "link") is not PoissonLoss:
            return self.link(raw)
        log_rate = raw[..., 0]
        return {"rate": torch.exp(log_rate), "log_rate": log_rate}

    def mean(self, params):
        return params["rate"]

    def std(self, params):
        return torch.sqrt(params["rate"])

    def sample(self, params, rng):
        return rng.poisson(params["rate"])

    def scipy_distribution(self, params):
        """The predictive distribution as ``scipy.stats.poisson`` of NumPy parameters (its CDF and quantiles)."""
        return stats.poisson(params["rate"])

    def init_raw(self, y):
        return _raw_rate(y.mean(0), self.rate_link)[:, None]


@register_loss
class NegativeBinomialLoss(CountLoss):
    """Negative binomial (gamma-Poisson) likelihood for over-dispersed counts, one learned dispersion per neuron.

    With mean ``mu`` and dispersion ``alpha`` the variance is ``mu + alpha * mu**2``; as ``alpha -> 0`` the
    distribution tends to the Poisson. In ``scipy.stats.nbinom(n, p)`` terms, ``n = 1 / alpha`` and
    ``p = n / (n + mu)``.

    Parameters
    ----------
    rate_link : {"log", "softplus"}, default="log"
        Maps the raw output to the mean count.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``PoissonSpikeRegressor(loss="negative_binomial")``.

    >>> import torch
    >>> loss = NegativeBinomialLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.6931, 2.7726])
    """

    name = "negative_binomial"
    _parameter_constraints: dict = _RATE_LINK
    parameter_names = ("rate", "dispersion")
    shared_parameters = ("dispersion",)

    def __init__(self, rate_link="log"):
        self.rate_link = rate_link

    def link(self, raw):
        rate, log_rate = _log_rate(raw[..., 0], self.rate_link)
        log_alpha = raw[..., 1].clamp(-20.0, 10.0)
        return {"rate": rate, "log_rate": log_rate, "dispersion": torch.exp(log_alpha), "log_dispersion": log_alpha}

    def nll(self, params, y):
        return self._nll_without_log_factorial(params, y) + torch.lgamma(y + 1)

    def _nll_without_log_factorial(self, params, y):
        log_mu, log_alpha = params["log_rate"], params["log_dispersion"]
        # The lgamma difference cancels catastrophically in float32 when 1/alpha is large: take it in float64.
        n = torch.exp(-log_alpha.double())
        lgamma_ratio = (torch.lgamma(y.double() + n) - torch.lgamma(n)).to(y.dtype)
        log1p_alpha_mu = F.softplus(log_alpha + log_mu)  # log(1 + alpha * mu)
        n = n.to(y.dtype)
        return -(lgamma_ratio - n * log1p_alpha_mu + y * (log_alpha + log_mu - log1p_alpha_mu))

    def mean(self, params):
        return params["rate"]

    def std(self, params):
        mu = params["rate"]
        return torch.sqrt(mu + params["dispersion"] * mu**2)

    def sample(self, params, rng):
        n = 1.0 / params["dispersion"]
        return rng.poisson(rng.gamma(n, params["rate"] / n))

    def scipy_distribution(self, params):
        """The predictive distribution as ``scipy.stats.nbinom(1 / alpha, 1 / (1 + alpha mu))``."""
        n = 1.0 / params["dispersion"]
        return stats.nbinom(n, n / (n + params["rate"]))

    def init_raw(self, y):
        mean = y.mean(0)
        variance = y.var(0) if len(y) > 1 else torch.zeros_like(mean)  # one row: no spread to estimate
        excess = (variance - mean) / mean.clamp_min(1e-4) ** 2
        alpha = excess.clamp(0.01, 10.0)
        return torch.stack([_raw_rate(mean, self.rate_link), torch.log(alpha)], dim=-1)


class ZeroInflatedPoisson:
    """A zero-inflated Poisson distribution of NumPy parameters, with the methods of a frozen ``scipy.stats``
    distribution that the predictive distribution uses: ``cdf``, ``ppf``, ``mean`` and ``std``.

    Examples
    --------
    >>> dist = ZeroInflatedPoisson(2.0, 0.25)
    >>> float(dist.cdf(0)), float(dist.mean()), float(dist.ppf(0.3))
    (0.3515014624274595, 1.5, 0.0)
    """

    def __init__(self, rate, zero_probability):
        self.rate = np.asarray(rate, dtype=np.float64)
        self.zero_probability = np.asarray(zero_probability, dtype=np.float64)

    def cdf(self, k):
        k = np.asarray(k, dtype=np.float64)
        return np.where(k >= 0, self.zero_probability + (1 - self.zero_probability) * stats.poisson.cdf(k, self.rate),
                        0.0)

    def ppf(self, q):
        # P(K <= k) >= q  <=>  Poisson CDF(k) >= (q - pi) / (1 - pi)
        level = np.clip((np.asarray(q, dtype=np.float64) - self.zero_probability) / (1 - self.zero_probability), 0, 1)
        return np.maximum(stats.poisson.ppf(level, self.rate), 0.0)

    def mean(self):
        return (1 - self.zero_probability) * self.rate

    def std(self):
        pi = self.zero_probability
        return np.sqrt((1 - pi) * self.rate * (1 + pi * self.rate))


@register_loss
class ZeroInflatedPoissonLoss(CountLoss):
    """Zero-inflated Poisson: with probability ``pi`` a structural zero, else Poisson(``lambda``).

    ``p(0) = pi + (1 - pi) exp(-lambda)``, ``p(k > 0) = (1 - pi) Poisson(k; lambda)``; mean ``(1 - pi) lambda``.
    Both ``lambda`` and ``pi`` depend on the inputs.

    Parameters
    ----------
    rate_link : {"log", "softplus"}, default="log"
        Maps the raw output to the Poisson rate.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``PoissonSpikeRegressor(loss="zero_inflated_poisson")``.

    >>> import torch
    >>> loss = ZeroInflatedPoissonLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 2)), torch.tensor([0.0, 3.0]))
    tensor([0.3799, 3.4849])
    """

    name = "zero_inflated_poisson"
    _parameter_constraints: dict = _RATE_LINK
    parameter_names = ("rate", "zero_probability")

    def __init__(self, rate_link="log"):
        self.rate_link = rate_link

    def link(self, raw):
        rate, log_rate = _log_rate(raw[..., 0], self.rate_link)
        logit = raw[..., 1].clamp(-MAX_LOG, MAX_LOG)
        return {"rate": rate, "log_rate": log_rate, "zero_probability": torch.sigmoid(logit), "zero_logit": logit}

    def nll(self, params, y):
        return self._nll_without_log_factorial(params, y) + torch.lgamma(y + 1)  # log 0! = 0 for the zeros

    def _nll_without_log_factorial(self, params, y):
        rate, logit = params["rate"], params["zero_logit"]
        log_pi, log_1m_pi = -F.softplus(-logit), -F.softplus(logit)
        log_p0 = torch.logaddexp(log_pi, log_1m_pi - rate)
        log_pk = log_1m_pi - _poisson_objective(rate, params["log_rate"], y)
        return -torch.where(y == 0, log_p0, log_pk)

    def mean(self, params):
        # (1 - pi) * lambda in log space: 1 - sigmoid(logit) rounds to 0 in float32 for logit > 17
        log_mean = params["log_rate"] - F.softplus(params["zero_logit"])
        return torch.exp(log_mean).clamp_min(torch.finfo(log_mean.dtype).tiny)

    def std(self, params):
        # sqrt((1 - pi) lambda (1 + pi lambda)) in log space, as the mean: near-certain zeros keep a positive std
        log_variance = (params["log_rate"] - F.softplus(params["zero_logit"])
                        + torch.log1p(params["zero_probability"] * params["rate"]))
        return torch.exp(log_variance / 2).clamp_min(torch.finfo(log_variance.dtype).tiny)

    def sample(self, params, rng):
        structural_zero = rng.random(params["rate"].shape) < params["zero_probability"]
        return rng.poisson(params["rate"]) * ~structural_zero

    def scipy_distribution(self, params):
        """The predictive distribution: a :class:`ZeroInflatedPoisson` (scipy has no zero-inflated Poisson)."""
        return ZeroInflatedPoisson(params["rate"], params["zero_probability"])

    def init_raw(self, y):
        return torch.stack([_raw_rate(y.mean(0), self.rate_link), torch.full_like(y[0], -3.0)], dim=-1)


@register_loss
class SquaredErrorCountLoss(PoissonLoss):
    """Least-squares baseline on counts: training minimises ``(k - mu)**2 / 2``.

    The mean goes through a softplus so that it stays a valid (positive) rate. Likelihoods, samples and the std are
    those of a Poisson with that mean, so that its log-likelihood can be compared with the other count losses;
    only the training objective ignores the count distribution.

    Examples
    --------
    The negative log-likelihood of two targets, 0 and 3, at raw network outputs of zero; an estimator takes the
    loss by its name, ``PoissonSpikeRegressor(loss="mse")``.

    >>> import torch
    >>> loss = SquaredErrorCountLoss()
    >>> loss.nll(loss.link(torch.zeros(2, 1)), torch.tensor([0.0, 3.0]))
    tensor([0.6931, 3.5844])
    """

    name = "mse"
    rate_link = "softplus"

    def __init__(self):
        pass

    def training_loss(self, params, y):
        return 0.5 * (y - params["rate"]) ** 2
