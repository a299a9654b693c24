"""The mixture of several predictive distributions: its mean and std, density, CDF, quantiles and draws.

One set of rules for both ensembles of the package: the members an estimator trains side by side
(``n_members``, with the Gaussian regressor's linear component) and the separate estimators of
:class:`~sklearn_costs.DeepEnsembleRegressor`. Every function takes the components' values stacked along a first
axis and their mixture weights (``None``: equal weights; otherwise non-negative, summing to 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def _weights(weights, n_components, ndim):
    """The weights as float64, shaped to broadcast against components stacked along a first axis of ``ndim``."""
    weights = np.full(n_components, 1.0 / n_components) if weights is None else np.asarray(weights, np.float64)
    return weights.reshape((n_components,) + (1,) * (ndim - 1))


def mixture_mean(means, weights=None):
    """The mixture's mean, from the components' means ``(components, ...)``."""
    means = np.asarray(means, dtype=np.float64)
    if weights is None:
        # one component is its own mean (exactly what mean(0) gives, without its pass over the array)
        return means[0] if len(means) == 1 else means.mean(0)
    return (_weights(weights, len(means), means.ndim) * means).sum(0)


def mixture_mean_std(means, stds, weights=None):
    """Mean and std of the mixture of components with these means and stds, each ``(components, ...)``: the std
    is the square root of the components' mean variance plus the variance of their means (the law of total
    variance)."""
    means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
    mean = mixture_mean(means, weights)
    w = _weights(weights, len(means), means.ndim)
    return mean, np.sqrt(np.maximum((w * (stds**2 + means**2)).sum(0) - mean**2, 0.0))


def mixture_log_prob(log_probs, weights=None):
    """``log sum_m w_m p_m``, from the components' log-probabilities ``(components, ...)``."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if weights is None:
        return logsumexp(log_probs, axis=0) - np.log(len(log_probs))
    return logsumexp(log_probs, axis=0, b=_weights(weights, len(log_probs), log_probs.ndim))


def mixture_cdf(dists, y, weights=None):
    """The mixture's CDF at ``y``: the weighted mean of the components' frozen ``scipy.stats`` distributions'
    CDFs."""
    cdfs = np.asarray([d.cdf(y) for d in dists])
    return (_weights(weights, len(dists), cdfs.ndim) * cdfs).sum(0)


def mixture_quantile(dists, q, weights=None):
    """The mixture's ``q``-quantile, elementwise, for frozen ``scipy.stats`` distributions of one shape.

    It lies between the components' own quantiles, and bisection on the mixture's CDF between them reaches
    float64 resolution in 60 halvings. One component is its own mixture: its ``ppf``, exactly.
    """
    if len(dists) == 1:
        return dists[0].ppf(q)
    component_quantiles = [d.ppf(q) for d in dists]
    lo, hi = np.min(component_quantiles, axis=0), np.max(component_quantiles, axis=0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(dists, mid, weights) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def mixture_sample(draws, rng, weights=None):
    """Draws of the mixture from the components' draws ``(components, n_samples, n_rows, ...)``: each draw of
    each row takes every target from one component picked at random with the mixture's weights (the row's
    targets stay jointly distributed as that component has them)."""
    draws = np.asarray(draws)
    if len(draws) == 1:
        return draws[0]
    size = draws.shape[1:3]
    if weights is not None:
        pick = rng.choice(len(draws), size=size, p=np.asarray(weights, dtype=np.float64))
    elif isinstance(rng, np.random.RandomState):
        pick = rng.randint(len(draws), size=size)
    else:
        pick = rng.integers(len(draws), size=size)
    pick = pick.reshape(pick.shape + (1,) * (draws.ndim - 3))
    return np.take_along_axis(draws, pick[None], axis=0)[0]
