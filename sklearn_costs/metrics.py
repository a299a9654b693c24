"""Scores of predicted counts and predicted distributions, and the scikit-learn scorers built on them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer
from sklearn.pipeline import Pipeline

from . import _targets, _validation

_EPS = np.spacing(1)


def _answering_step(estimator, X, method, what):
    """The estimator that answers ``method`` (a Pipeline's last step) and ``X`` as it sees it (transformed by the
    steps before it); a ``TypeError`` saying which estimators can answer when it has no ``method``."""
    if isinstance(estimator, Pipeline):
        estimator, X = estimator[-1], estimator[:-1].transform(X)
    if not hasattr(estimator, method):
        raise TypeError(
            f"{what} needs {method}(), which {type(estimator).__name__} does not have: "
            + _CAN_ANSWER.get(method, f"use an estimator with {method}()")
        )
    return estimator, X


_CAN_ANSWER = {
    "predict_cdf": "it needs a continuous predictive distribution (GaussianUncertaintyRegressor, or a "
                   "DeepEnsembleRegressor of them); spike counts have none",
    "predict_distribution": "it needs a predicted distribution (GaussianUncertaintyRegressor, "
                            "PoissonSpikeRegressor or a DeepEnsembleRegressor of either)",
}


def poisson_d2_per_target(y_true, y_pred, y_null=None, sample_weight=None):
    """Fraction of Poisson deviance explained (pseudo-R2, D2) for each column.

    ``D2 = 1 - D(y, y_pred) / D(y, y_null)`` with ``D`` the Poisson deviance and ``y_null`` the column means of
    ``y_true`` (scikit-learn's ``d2_tweedie_score(power=1)``), or given null predictions (the training mean, as in
    Benjamin et al. 2018). Columns whose null deviance is 0 are undefined and come back as NaN: with the default
    null, the columns without any count; with a given positive ``y_null`` such a column is defined (``1 -
    sum(y_pred) / sum(y_null)``), and it is for the caller to leave it out (as the spykesML protocol does).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_targets)
        Observed counts.
    y_pred : array-like, same shape
        Predicted means (> 0).
    y_null : array-like of shape (n_targets,), optional
        Null-model rate per column; default the mean of ``y_true`` (weighted by ``sample_weight``).
    sample_weight : array-like of shape (n_samples,), optional
        Weight of each row in the deviances (an integer weight counts a row as that many copies).

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
    y_true = np.asarray(_targets.numeric_targets(y_true, "y_true"), dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(_targets.numeric_targets(y_pred, "y_pred"), dtype=np.float64).reshape(len(y_pred), -1)
    for name, values, what in (("y_true", y_true, "observed counts"), ("y_pred", y_pred, "predicted rates")):
        bad = ~(values >= 0)  # negative or NaN
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} must hold non-negative {what} (the Poisson deviance is undefined otherwise); found "
                f"{float(values[row, column])!r} at row {row}, column {column}. Targets that are not counts are "
                "scored by neg_log_likelihood_scorer or the estimator's own score."
            )
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same rows and columns (one "
                         "predicted rate per observed count); a 1-D y counts as one column")
    w = _validation.validated_sample_weight(sample_weight, y_true)
    w = (np.ones(len(y_true)) if w is None else w).reshape(-1, 1)
    if y_null is None:
        null = np.average(y_true, axis=0, weights=w[:, 0])
    else:
        null = np.asarray(y_null, dtype=np.float64).reshape(-1)
        if len(null) not in (1, y_true.shape[1]):
            raise ValueError(f"y_null must hold one rate per column of y_true ({y_true.shape[1]}); got {len(null)}")
    log_sat = np.sum(w * (y_true * np.log(_EPS + y_true) - y_true), axis=0)
    log_model = np.sum(w * (y_true * np.log(_EPS + y_pred) - y_pred), axis=0)
    log_null = np.sum(w * (y_true * np.log(_EPS + null) - null), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = 1.0 - (log_sat - log_model) / (log_sat - log_null)
    d2[~(log_sat - log_null > 0)] = np.nan
    return d2


def poisson_d2_score(y_true, y_pred, y_null=None, sample_weight=None):
    """Mean over targets of :func:`poisson_d2_per_target`, ignoring undefined (all-constant) targets.

    Examples
    --------
    >>> round(poisson_d2_score([[0, 2], [2, 4]], [[0.1, 2.5], [1.9, 3.5]]), 3)
    0.834
    """
    d2 = poisson_d2_per_target(y_true, y_pred, y_null, sample_weight)
    return float(np.nanmean(d2)) if np.isfinite(d2).any() else float("nan")


def gaussian_crps(y_true, mean, std):
    """Continuous ranked probability score of Gaussian predictions (closed form, lower is better), per element.

    Examples
    --------
    >>> import numpy as np
    >>> gaussian_crps(np.array([0.0, 0.0]), mean=np.array([0.0, 1.0]), std=np.array([1.0, 1.0])).round(3)
    array([0.234, 0.602])
    """
    from scipy.stats import norm

    shape = np.broadcast_shapes(np.shape(mean), np.shape(std))
    y_true = _targets.targets_like(y_true, shape, "y_true") if shape else np.asarray(y_true, dtype=np.float64)
    z = (y_true - mean) / std
    return std * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))


def neg_log_likelihood_scorer(estimator, X, y):
    """Scorer: mean log-likelihood per target value (greater is better, as scikit-learn scorers are).

    Named like ``neg_mean_squared_error``: it is the negative of the mean negative log-likelihood. A
    :class:`~sklearn.pipeline.Pipeline` is scored by its last step on the data transformed by the others.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_costs import PoissonSpikeRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(200, 2)), rng.poisson(2.0, size=200)
    >>> model = PoissonSpikeRegressor(max_epochs=20, random_state=0).fit(X, y)
    >>> bool(neg_log_likelihood_scorer(model, X, y) < 0)
    True
    """
    estimator, X = _answering_step(estimator, X, "predict_distribution", "neg_log_likelihood_scorer")
    return float(np.mean(estimator.predict_distribution(X).log_pdf(y)))


poisson_d2_scorer = make_scorer(poisson_d2_score)


# ------------------------------------------------------------------------------------------ predictive uncertainty


def interval_coverage(y_true, lower, upper):
    """Fraction of targets inside their prediction interval ``[lower, upper]``.

    Examples
    --------
    >>> interval_coverage([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [2, 2, 2, 2])
    0.5
    """
    y_true = _targets.targets_like(y_true, np.shape(lower), "y_true")
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


def mean_interval_width(lower, upper):
    """Mean width of prediction intervals (sharpness: narrower is better at equal coverage).

    Examples
    --------
    >>> mean_interval_width([0.0, 1.0], [2.0, 2.0])
    1.5
    """
    return float(np.mean(np.asarray(upper) - np.asarray(lower)))


def calibration_curve(pit, levels=None):
    """Observed against expected frequencies of a regression model's quantiles (Kuleshov et al. 2018).

    ``pit`` are the predictive CDF values at the observed targets (``estimator.predict_cdf(X, y)``). For each
    level ``p`` the observed frequency is the fraction of ``pit <= p``; a calibrated model gives ``p``.

    Returns
    -------
    levels, observed : ndarrays

    Examples
    --------
    >>> import numpy as np
    >>> levels, observed = calibration_curve(np.array([0.1, 0.3, 0.5, 0.7, 0.9]), levels=[0.2, 0.6])
    >>> observed
    array([0.2, 0.6])
    """
    pit = np.ravel(pit)
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels)
    return levels, np.array([np.mean(pit <= p) for p in levels])


def regression_calibration_error(pit, levels=None):
    """Expected calibration error for regression: mean ``|observed - expected|`` over the levels of
    :func:`calibration_curve` (0 is perfect).

    Examples
    --------
    >>> import numpy as np
    >>> pit = (np.arange(1000) + 0.5) / 1000  # uniform: calibrated
    >>> round(regression_calibration_error(pit), 3)
    0.0
    >>> round(regression_calibration_error(pit**2), 3)  # predictive CDF too high: miscalibrated
    0.173
    """
    levels, observed = calibration_curve(pit, levels)
    return float(np.mean(np.abs(observed - levels)))


def crps_from_samples(y_true, samples):
    """CRPS estimated from draws of the predictive distribution, ``E|X - y| - E|X - X'| / 2``, per element.

    ``samples`` has a leading axis of draws; any distribution that can be sampled is covered.

    Examples
    --------
    >>> import numpy as np
    >>> draws = np.random.default_rng(0).normal(size=(20000, 1))
    >>> float(crps_from_samples([0.0], draws)[0].round(2))  # closed form: 0.234
    0.23
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim < 2 or len(samples) < 2:
        raise ValueError(f"samples must hold at least 2 draws along its first axis, then the shape of y_true; got "
                         f"shape {samples.shape}")
    y_true = _targets.targets_like(y_true, samples.shape[1:], "y_true")
    first = np.mean(np.abs(samples - y_true), axis=0)
    half = len(samples) // 2
    second = np.mean(np.abs(samples[:half] - samples[half : 2 * half]), axis=0)
    return first - 0.5 * second


def uncertainty_report(estimator, X, y, coverage=0.9):
    """Every uncertainty metric of a fitted continuous regressor on ``(X, y)``: a
    :class:`~sklearn_costs.GaussianUncertaintyRegressor`, a :class:`~sklearn_costs.DeepEnsembleRegressor` of them,
    or a Pipeline ending in either.

    Each is computed from the estimator's predictive distribution, ``predict_distribution(X)`` (the mixture of
    its members and linear component), and ``y`` is compared with it in the shape of the predictions (a Series
    and a one-column DataFrame give the same numbers). Returns a dict: ``nll`` (mean negative log predictive
    density), ``rmse`` and ``r2`` of the mean, ``crps`` (the mixture's exact CRPS:
    :meth:`~sklearn_costs.distributions.PredictiveDistribution.crps`), ``coverage`` and ``width`` of the central
    ``coverage`` interval, and ``calibration_error``.

    Examples
    --------
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(300, random_state=0)
    >>> model = GaussianUncertaintyRegressor(max_epochs=20, random_state=0).fit(data.X, data.y)
    >>> sorted(uncertainty_report(model, data.X, data.y))
    ['calibration_error', 'coverage', 'crps', 'nll', 'r2', 'rmse', 'width']
    """
    from sklearn.metrics import r2_score

    estimator, X = _answering_step(estimator, X, "predict_cdf", "uncertainty_report")
    dist = estimator.predict_distribution(X)
    y = _targets.targets_like(y, dist.shape)
    mean = dist.mean
    lower, upper = dist.interval(coverage)
    return {
        "nll": -float(np.mean(dist.log_pdf(y))),
        "rmse": float(np.sqrt(np.mean((y - mean) ** 2))),
        "r2": float(r2_score(y, mean)),
        "crps": float(np.mean(dist.crps(y))),
        "coverage": interval_coverage(y, lower, upper),
        "width": mean_interval_width(lower, upper),
        "calibration_error": regression_calibration_error(dist.cdf(y)),
    }


def neg_calibration_error_scorer(estimator, X, y):
    """Scorer: minus the regression calibration error of ``estimator`` on ``(X, y)`` (greater is better).

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(300, random_state=0)
    >>> model = GaussianUncertaintyRegressor(max_epochs=10, random_state=0)
    >>> scores = cross_val_score(model, data.X, data.y, cv=2, scoring=neg_calibration_error_scorer)
    >>> bool((scores <= 0).all())
    True
    """
    estimator, X = _answering_step(estimator, X, "predict_cdf", "neg_calibration_error_scorer")
    return -regression_calibration_error(estimator.predict_distribution(X).cdf(y))


# ----------------------------------------------------------------------------------------------------- retrieval


def recall_at_1(embeddings, labels, sample_weight=None):
    """Leave-one-out 1-NN accuracy: the fraction of samples whose nearest other sample (Euclidean) shares its label.

    Samples whose label occurs only once cannot be matched and are left out; ``sample_weight`` weighs the
    queries.

    Examples
    --------
    >>> import numpy as np
    >>> recall_at_1(np.array([[0.0], [0.1], [5.0], [5.2], [9.0]]), np.array([0, 0, 1, 1, 2]))
    1.0
    """
    from scipy.spatial.distance import cdist

    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    dist = cdist(embeddings, embeddings, "sqeuclidean")
    np.fill_diagonal(dist, np.inf)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    matchable = counts[inverse] > 1
    if not matchable.any():
        raise ValueError("recall@1 needs at least one label that occurs twice")
    hit = labels[np.argmin(dist, axis=1)] == labels
    weight = _validation.validated_sample_weight(sample_weight, labels)
    if weight is not None:
        weight = weight[matchable]
        if not weight.sum() > 0:
            raise ValueError("sample_weight is zero for every sample whose label occurs twice or more, so no query "
                             "counts: give some of them a positive weight")
    return float(np.average(hit[matchable], weights=weight))


def few_shot_accuracy(embeddings, labels, shots=1, n_trials=20, random_state=0):
    """N-way k-shot accuracy: per trial ``shots`` random samples of each label are enrolled, the others are
    classified by the label of their nearest enrolled sample; the mean accuracy over ``n_trials`` random
    enrolments.

    Every label needs at least ``shots`` samples; a label with exactly ``shots`` is enrolled each time and only
    competes with the others (a gallery identity without queries).

    Examples
    --------
    >>> import numpy as np
    >>> embeddings = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.3]])
    >>> few_shot_accuracy(embeddings, np.array([0, 0, 0, 1, 1, 1]), shots=2)
    1.0
    """
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(random_state)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    _validation.check_positive_int(shots, "shots")
    if counts.min() < shots:
        smallest = classes[counts.argmin()].tolist()
        raise ValueError(
            f"label {smallest!r} has {counts.min()} samples; {shots}-shot accuracy enrols {shots} of every label: "
            "lower shots or leave out the labels with fewer samples"
        )
    if counts.max() <= shots:
        raise ValueError(f"no sample is left to classify: every label has at most shots={shots} samples")
    members = [np.flatnonzero(labels == c) for c in classes]
    scores = []
    for _ in range(n_trials):
        enrolled = np.concatenate([rng.choice(rows, shots, replace=False) for rows in members])
        queries = np.setdiff1d(np.arange(len(labels)), enrolled)
        nearest = np.argmin(cdist(embeddings[queries], embeddings[enrolled], "sqeuclidean"), axis=1)
        scores.append(np.mean(labels[enrolled][nearest] == labels[queries]))
    return float(np.mean(scores))


def one_shot_accuracy(embeddings, labels, n_trials=20, random_state=0):
    """N-way one-shot accuracy: :func:`few_shot_accuracy` with one enrolled sample per label.

    Examples
    --------
    >>> import numpy as np
    >>> embeddings = np.array([[0.0], [0.1], [5.0], [5.1], [9.0], [9.2]])
    >>> one_shot_accuracy(embeddings, np.array([0, 0, 1, 1, 2, 2]))
    1.0
    """
    return few_shot_accuracy(embeddings, labels, shots=1, n_trials=n_trials, random_state=random_state)
