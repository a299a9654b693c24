"""The continuous ranked probability score (CRPS) of a mixture, ``integral (F(x) - 1{x >= y})**2 dx``, computed
for the mixture itself (not for one distribution of its mean and std): in closed form for Gaussian mixtures, by
quadrature for other continuous ones, and as a sum over the integers for counts.

Every function takes the components as frozen ``scipy.stats`` distributions over arrays of one shape, their
weights (summing to 1) and observed ``y`` of that shape, and returns the CRPS per element.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: Probability levels at whose quantiles (of every component) the quadrature splits the real line, denser in the
#: tails, where a heavy-tailed component's CDF changes on a long scale; the mass beyond the outermost level
#: (1e-9 on each side) contributes less than 1e-9 times the spread.
SPLIT_LEVELS = np.array([1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95, 0.99, 0.999,
                         1 - 1e-4, 1 - 1e-6, 1 - 1e-9])
#: Gauss-Legendre nodes per piece: exact for polynomials of degree 7 on each piece between two quantiles. Against
#: adaptive quadrature of mixtures of five Student-t (df 2.05-30) or Laplace components the relative error was below
#: 4e-9 (8 nodes: 1e-12, at twice the CDF evaluations, the score's cost).
NODES, NODE_WEIGHTS = np.polynomial.legendre.leggauss(4)
#: Counts: each element's sum runs over its own window, from the components' lowest ``COUNT_TAIL`` quantile to
#: their highest ``1 - COUNT_TAIL`` one. A count outside it adds ``F(k)**2`` or ``(1 - F(k))**2``, below 1e-14,
#: or, between ``y`` and the window, a term within 2e-7 of 1, counted as 1. Against the sum over every count up to
#: 50 times the largest quantile the relative difference was below 1e-8 (NB at the dispersion clamp included).
COUNT_TAIL = 1e-7


def is_gaussian(dist) -> bool:
    """Whether the frozen scipy distribution ``dist`` is a normal one (freezing copies ``stats.norm``: its
    ``dist`` is another instance of the same class)."""
    return isinstance(getattr(dist, "dist", None), type(stats.norm))


def _expected_abs_normal(mean, std):
    """``E|Z|`` for ``Z ~ N(mean, std**2)``: ``std sqrt(2/pi) exp(-mean**2 / (2 std**2)) + mean (1 - 2 Phi(-mean /
    std))``."""
    z = mean / std
    return std * np.sqrt(2 / np.pi) * np.exp(-0.5 * z * z) + mean * (1 - 2 * stats.norm.cdf(-z))


def gaussian_mixture_crps(means, stds, weights, y):
    """CRPS of the Gaussian mixture ``sum_i w_i N(means[i], stds[i]**2)`` at ``y`` (Grimit et al. 2006):
    ``sum_i w_i E|X_i - y| - 1/2 sum_ij w_i w_j E|X_i - X_j|``, each term the mean absolute value of a normal."""
    y = np.asarray(y, dtype=np.float64)
    score = sum(w * _expected_abs_normal(m - y, s) for w, m, s in zip(weights, means, stds))
    spread = 0.0
    for i, (wi, mi, si) in enumerate(zip(weights, means, stds)):
        spread = spread + wi * wi * _expected_abs_normal(0.0 * mi, np.sqrt(2.0) * si)
        for wj, mj, sj in zip(weights[i + 1 :], means[i + 1 :], stds[i + 1 :]):
            spread = spread + 2 * wi * wj * _expected_abs_normal(mi - mj, np.sqrt(si * si + sj * sj))
    return score - 0.5 * spread


def _mixture_cdf(dists, weights, x):
    return sum(w * d.cdf(x) for w, d in zip(weights, dists))


def integrated_crps(dists, weights, y):
    """CRPS of a continuous mixture by Gauss-Legendre quadrature of ``(F(x) - 1{x >= y})**2``.

    The line is cut at ``y`` (where the integrand jumps) and at every component's quantiles of ``SPLIT_LEVELS``
    (so that each piece holds a smooth part of the CDF, the median of a Laplace's kink included), and each piece
    is integrated with ``NODES``. Against adaptive quadrature (``scipy.integrate.quad``) of Laplace and Student-t
    mixtures the relative error was below 1e-8.
    """
    y = np.asarray(y, dtype=np.float64)
    levels = SPLIT_LEVELS.reshape((-1,) + (1,) * y.ndim)
    cuts = np.sort(np.concatenate([np.broadcast_to(d.ppf(levels), levels.shape[:1] + y.shape) for d in dists]
                                  + [y[None]]), axis=0)
    nodes = NODES.reshape((-1,) + (1,) * y.ndim)
    total = np.zeros_like(y)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        half = 0.5 * (hi - lo)
        x = lo + half * (nodes + 1)
        integrand = (_mixture_cdf(dists, weights, x) - (x >= y)) ** 2
        total += half * np.tensordot(NODE_WEIGHTS, integrand, axes=1)
    return total


def count_crps(dists, weights, y):
    """CRPS of a mixture of count distributions: ``sum_{k >= 0} (F(k) - 1{k >= y})**2``, the integral of the
    step function ``F``.

    Each element is summed over its own window of counts where ``F`` is neither about 0 nor about 1
    (``COUNT_TAIL``), all elements in step (the ``j``-th count of each window at once); the counts between ``y`` and
    the window each add 1. So the work grows with the widest window (about ``1 / COUNT_TAIL`` quantiles of the
    most spread element), not with the largest mean or ``y``: a rate of 1e4 sums about 1,100 counts, not 1e4, and
    an outlying ``y`` of 1e6 costs nothing more.
    """
    y = np.asarray(y, dtype=np.float64)
    first = np.min([np.broadcast_to(d.ppf(COUNT_TAIL), y.shape) for d in dists], axis=0)
    last = np.max([np.broadcast_to(d.ppf(1 - COUNT_TAIL), y.shape) for d in dists], axis=0)
    first = np.maximum(np.nan_to_num(first, nan=0.0), 0.0)  # ppf(q) of a count distribution is -1 below F(0)
    last = np.maximum(last, first)
    step = np.ceil(y)  # 1{k >= y} = 1{k >= ceil(y)} for integers k
    total = np.maximum(first - step, 0.0) + np.maximum(step - last - 1, 0.0)  # y below or above the window
    for j in range(int(np.max(last - first, initial=0.0)) + 1):
        k = first + j
        inside = k <= last
        total += np.where(inside, (_mixture_cdf(dists, weights, k) - (k >= step)) ** 2, 0.0)
    return total
