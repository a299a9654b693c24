"""The Bayesian linear regression that :class:`~sklearn_costs.GaussianUncertaintyRegressor` mixes into its
predictive distribution, and the rule that weighs it against the networks (``linear_weight="auto"``).

On a table of tens of rows a network, even five of them side by side, can be confidently wrong on a few test
points, and those dominate a mean NLL: at 50 training rows a linear Gaussian (``BayesianRidge``) beat the
networks' mixture on four of the six UCI sets. A mixture ``(1 - w) * networks + w * linear`` keeps the better of
the two where the evidence is clear and hedges where it is not. The weight ``w`` is what the data say about it:
its posterior mean under a uniform prior, given the likelihood of the mixture on the rows held out for early
stopping (a one-parameter Bayesian stacking). With a handful of held-out rows the posterior is broad and ``w``
stays near the middle; with hundreds it is sharp, and ``w`` goes to 0 wherever the networks are better, so the
networks' own predictions are kept on large data.

The component is stored as plain arrays (the estimator's files hold no pickled objects): the input
standardisation, and for each target the coefficients, intercept, posterior covariance of the coefficients and
noise variance of scikit-learn's ``BayesianRidge`` (evidence maximisation, its default priors).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.linear_model import BayesianRidge

#: Points of the grid on [0, 1] on which the weight's posterior is computed (a step of 0.005).
WEIGHT_GRID = 201
#: The linear part is fitted, and its weight judged, on at most this many rows (evenly spaced): a linear model of
#: up to a few hundred inputs is pinned down long before, its fit makes float64 copies of the rows it sees, and on
#: tables this large the networks are far better (the weight is 0-0.03 on the full UCI sets).
LINEAR_ROWS = 100_000


def fit_bayesian_linear(X, y, sample_weight=None, min_std=0.0) -> dict:
    """A Bayesian linear regression of each column of ``y`` on the standardised ``X`` (NumPy arrays or CPU
    tensors), as the arrays :func:`bayesian_linear_predict` needs; its predictive std is held at ``min_std`` or
    above (the floor of the networks' scale: on targets that are a noiseless linear function of the inputs the
    evidence drives the noise variance to ~1e-8, a std that a single rounding error of ``y`` makes a huge NLL).

    ``sample_weight`` weighs the rows as ``BayesianRidge`` does (a weight of 2 counts a row twice); the estimator
    hands it weights whose mean is 1, so that, as for its networks, their scale does not matter."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    loc = np.average(X, axis=0, weights=w)
    scale = np.sqrt(np.average((X - loc) ** 2, axis=0, weights=w))
    scale = np.where(scale > 0, scale, 1.0)
    Xs = (X - loc) / scale
    fits = [BayesianRidge().fit(Xs, column, sample_weight=w) for column in y.T]
    return {
        "x_loc": loc,
        "x_scale": scale,
        "coef": np.stack([f.coef_ for f in fits]),
        "intercept": np.array([f.intercept_ for f in fits], dtype=np.float64),
        "coef_cov": np.stack([f.sigma_ for f in fits]),
        "noise_var": np.array([1.0 / f.alpha_ for f in fits], dtype=np.float64),
        "min_std": float(min_std),
    }


def bayesian_linear_predict(component: dict, X):
    """The predictive mean and std, each ``(n_rows, n_targets)``, of :func:`fit_bayesian_linear`'s component
    for ``X``: the std adds the coefficients' uncertainty (which grows away from the training data) to the noise,
    as ``BayesianRidge.predict(X, return_std=True)`` computes it, and is never below the component's ``min_std``
    (components saved before it had one: no floor)."""
    Xs = (np.asarray(X, dtype=np.float64) - component["x_loc"]) / component["x_scale"]
    mean = Xs @ component["coef"].T + component["intercept"]
    spread = np.einsum("np,tpq,nq->nt", Xs, component["coef_cov"], Xs)
    return mean, np.maximum(np.sqrt(spread + component["noise_var"]), component.get("min_std", 0.0))


def stacking_weight(log_p_networks, log_p_linear, sample_weight=None) -> float:
    """The posterior mean of the linear component's weight ``w`` under a uniform prior on [0, 1], given the
    held-out rows' log-probabilities under the networks' mixture and under the linear component (each
    ``(n_rows, n_targets)``; optionally weighted rows). The likelihood of ``w`` is
    ``prod_rows prod_targets ((1 - w) p_networks + w p_linear) ** sample_weight``; without rows it is the prior's
    mean, 0.5."""
    log_p_networks, log_p_linear = (np.asarray(a, dtype=np.float64) for a in (log_p_networks, log_p_linear))
    if log_p_networks.ndim == 1:  # one target
        log_p_networks, log_p_linear = log_p_networks[:, None], log_p_linear[:, None]
    row_weight = np.ones(len(log_p_networks)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    grid = np.linspace(0.0, 1.0, WEIGHT_GRID)
    log_likelihood = np.empty(WEIGHT_GRID)
    with np.errstate(divide="ignore"):  # log(0) at the grid's ends: that component drops out
        for i, w in enumerate(grid):  # one grid point at a time: memory of the held-out rows, not 201 times it
            log_mix = np.logaddexp(np.log1p(-w) + log_p_networks, np.log(w) + log_p_linear)
            log_likelihood[i] = row_weight @ log_mix.sum(1)
    posterior = np.exp(log_likelihood - logsumexp(log_likelihood))
    return float(posterior @ grid)
