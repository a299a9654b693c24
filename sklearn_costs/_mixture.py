"""The mixture of several predictive distributions: its mean and std, density, CDF, quantiles and draws (its
CRPS: :mod:`sklearn_costs._crps`).

One set of rules for both ensembles of the package: the members an estimator trains side by side
(``n_members``, with the Gaussian regressor's linear component) and the separate estimators of
:class:`~sklearn_costs.DeepEnsembleRegressor`. Every function takes the components' values stacked along a first
axis and their mixture weights (``None``: equal weights; otherwise non-negative, summing to 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def _weights(weights, n_components, ndim, dtype=np.float64):
    """The weights as ``dtype``, shaped to broadcast against components stacked along a first axis of ``ndim``."""
    weights = np.full(n_components, 1.0 / n_components) if weights is None else np.asarray(weights, np.float64)
    return weights.astype(dtype).reshape((n_components,) + (1,) * (ndim - 1))


def _floats(values):
    """``values`` as a float array: float32 and float64 as they are (no copy of a large float32 output), anything
    else as float64."""
    values = np.asarray(values)
    return values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)


def mixture_mean(means, weights=None):
    """The mixture's mean, from the components' means ``(components, ...)``, in their float dtype."""
    means = _floats(means)
    if weights is None:
        # one component is its own mean (exactly what mean(0) gives, without its pass over the array)
        return means[0] if len(means) == 1 else means.mean(0)
    return (_weights(weights, len(means), means.ndim, means.dtype) * means).sum(0)


def mixture_mean_std(means, stds, weights=None):
    """Mean and std of the mixture of components with these means and stds, each ``(components, ...)``: the std
    is the square root of the components' mean variance plus the variance of their means (the law of total
    variance), the latter from the deviations of the means, which float32 keeps accurate for targets far from 0."""
    means, stds = _floats(means), _floats(stds)
    mean = mixture_mean(means, weights)
    if len(means) == 1:
        return mean, stds[0]
    w = _weights(weights, len(means), means.ndim, np.result_type(means, stds))
    return mean, np.sqrt((w * (stds**2 + (means - mean) ** 2)).sum(0))


def mixture_log_prob(log_probs, weights=None):
    """``log sum_m w_m p_m``, from the components' log-probabilities ``(components, ...)``."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if weights is None:
        return logsumexp(log_probs, axis=0) - np.log(len(log_probs))
    return logsumexp(log_probs, axis=0, b=_weights(weights, len(log_probs), log_probs.ndim))


def mixture_cdf(cdfs, weights=None):
    """The mixture's CDF from its components' CDFs stacked along a first axis, ``(components, ...)``."""
    cdfs = np.asarray(cdfs, dtype=np.float64)
    return (_weights(weights, len(cdfs), cdfs.ndim) * cdfs).sum(0)


def mixture_quantile(component_quantiles, cdf, q, discrete=False):
    """The mixture's ``q``-quantile, elementwise: the smallest ``x`` with ``cdf(x) >= q``.

    ``component_quantiles`` are the components' own ``q``-quantiles ``(components, ...)`` and ``cdf`` the
    mixture's CDF of an array of their shape. The quantile lies between the components' smallest and largest
    quantile (below the smallest, every component's CDF is below ``q``; at the largest, every one has reached
    it), and bisection between them reaches float64 resolution in 60 halvings; for counts (``discrete``) it halves
    over the integers until they meet. One component is its own mixture: its quantile, exactly.
    """
    component_quantiles = np.asarray(component_quantiles, dtype=np.float64)
    if len(component_quantiles) == 1:
        return component_quantiles[0]
    lo, hi = component_quantiles.min(0), component_quantiles.max(0)
    if discrete:
        while np.any(lo < hi):
            mid = np.floor(0.5 * (lo + hi))
            reached = cdf(mid) >= q
            lo, hi = np.where(reached, lo, mid + 1), np.where(reached, mid, hi)
        return lo
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = cdf(mid) < q
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
