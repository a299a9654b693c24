"""Scores of predicted counts and predicted distributions, and the scikit-learn scorers built on them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer

_EPS = np.spacing(1)


def poisson_d2_per_target(y_true, y_pred, y_null=None):
    """Fraction of Poisson deviance explained (pseudo-R2, D2) for each column.

    ``D2 = 1 - D(y, y_pred) / D(y, y_null)`` with ``D`` the Poisson deviance and ``y_null`` the column means of
    ``y_true`` (scikit-learn's ``d2_tweedie_score(power=1)``), or given null predictions (the training mean, as in
    Benjamin et al. 2018). Columns without any count are undefined and come back as NaN.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_targets)
        Observed counts.
    y_pred : array-like, same shape
        Predicted means (> 0).
    y_null : array-like of shape (n_targets,), optional
        Null-model rate per column; default the mean of ``y_true``.

    Returns
    -------
    ndarray of shape (n_targets,)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[0, 1], [2, 1], [4, 1]])
    >>> poisson_d2_per_target(y, np.array([[0.1, 1], [2, 1], [3.9, 1]])).round(3)
    array([0.963,   nan])
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    null = y_true.mean(0) if y_null is None else np.asarray(y_null, dtype=np.float64).reshape(-1)
    log_sat = np.sum(y_true * np.log(_EPS + y_true) - y_true, axis=0)
    log_model = np.sum(y_true * np.log(_EPS + y_pred) - y_pred, axis=0)
    log_null = np.sum(y_true * np.log(_EPS + null) - null, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = 1.0 - (log_sat - log_model) / (log_sat - log_null)
    d2[~(log_sat - log_null > 0)] = np.nan
    return d2


def poisson_d2_score(y_true, y_pred, y_null=None):
    """Mean over targets of :func:`poisson_d2_per_target`, ignoring undefined (all-constant) targets."""
    d2 = poisson_d2_per_target(y_true, y_pred, y_null)
    return float(np.nanmean(d2)) if np.isfinite(d2).any() else float("nan")


def gaussian_crps(y_true, mean, std):
    """Continuous ranked probability score of Gaussian predictions (closed form, lower is better), per element."""
    from scipy.stats import norm

    z = (np.asarray(y_true) - mean) / std
    return std * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))


def neg_log_likelihood_scorer(estimator, X, y):
    """Scorer: mean log-likelihood per target value (greater is better, as scikit-learn scorers are).

    Named like ``neg_mean_squared_error``: it is the negative of the mean negative log-likelihood.
    """
    return float(np.mean(estimator.log_likelihood(X, y)))


poisson_d2_scorer = make_scorer(poisson_d2_score)
