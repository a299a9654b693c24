"""The equal mixture of several predictive distributions: its mean and std, density, CDF, quantiles and draws.

One set of rules for both ensembles of the package: the members an estimator trains side by side
(``n_members``) and the separate estimators of :class:`~sklearn_costs.DeepEnsembleRegressor`. Every function
takes the members' values stacked along a first axis.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def mixture_mean_std(means, stds):
    """Mean and std of the mixture of members with these means and stds, each ``(members, ...)``: the std is the
    square root of the members' mean variance plus the variance of their means (the law of total variance)."""
    means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
    mean = means.mean(0)
    return mean, np.sqrt(np.maximum((stds**2 + means**2).mean(0) - mean**2, 0.0))


def mixture_log_prob(log_probs):
    """``log mean_m p_m``, from the members' log-probabilities ``(members, ...)``."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    return logsumexp(log_probs, axis=0) - np.log(len(log_probs))


def mixture_cdf(dists, y):
    """The mixture's CDF at ``y``: the mean of the members' frozen ``scipy.stats`` distributions' CDFs."""
    return np.mean([d.cdf(y) for d in dists], axis=0)


def mixture_quantile(dists, q):
    """The mixture's ``q``-quantile, elementwise, for frozen ``scipy.stats`` distributions of one shape.

    It lies between the members' own quantiles, and bisection on the mixture's CDF between them reaches float64
    resolution in 60 halvings. One member is its own mixture: its ``ppf``, exactly.
    """
    if len(dists) == 1:
        return dists[0].ppf(q)
    member_quantiles = [d.ppf(q) for d in dists]
    lo, hi = np.min(member_quantiles, axis=0), np.max(member_quantiles, axis=0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(dists, mid) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def mixture_sample(draws, rng):
    """Draws of the mixture from the members' draws ``(members, n_samples, n_rows, ...)``: each draw of each row
    takes every target from one member picked at random (the row's targets stay jointly distributed as that
    member has them)."""
    draws = np.asarray(draws)
    if len(draws) == 1:
        return draws[0]
    pick = rng.randint(len(draws), size=draws.shape[1:3]) if isinstance(rng, np.random.RandomState) else \
        rng.integers(len(draws), size=draws.shape[1:3])
    pick = pick.reshape(pick.shape + (1,) * (draws.ndim - 3))
    return np.take_along_axis(draws, pick[None], axis=0)[0]
