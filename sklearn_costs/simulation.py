"""Closed-loop simulation of a spike model with history: the simulated spikes of each bin become the history of
the next ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ._pynapple import EPOCH_LABELS, features_to_pandas
from .preprocessing.history import SpikeHistory
from .preprocessing.lags import LagFeatures
from .preprocessing.segments import segment_starts, split_column

#: A predicted count per bin beyond which a simulation has run away (NumPy's Poisson sampler stops near 1e19).
MAX_RATE = 1e6


def _covariates(history, X):
    """``(trials, covariates)``: the non-count input columns of ``history`` taken from ``X`` (by name from a
    DataFrame, in input order from an array), as float64."""
    names = list(getattr(history, "feature_names_in_", []))
    others = np.setdiff1d(np.arange(history.n_features_in_), history.counts_)  # the columns passed through
    trials = None
    if isinstance(X, pd.DataFrame):
        if history.trial_col is not None:
            trials, X = split_column(X, history.trial_col)
        else:  # a TsdFrame over several epochs: its epochs are the trials
            epochs = X.attrs.get(EPOCH_LABELS)
            trials = epochs if epochs is not None and len(epochs) == len(X) else None
        if names and any(isinstance(c, str) for c in X.columns):  # else by position, as scikit-learn reads it
            wanted = [names[i] for i in others]
            missing = [c for c in wanted if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks the covariate columns {missing[:5]} the model was fitted with")
            X = X[wanted]
    elif history.trial_col is not None:
        raise ValueError("the model's SpikeHistory has a trial_col: pass X as a DataFrame holding that column and "
                         "the covariates")
    X = check_array(X, dtype=np.float64, input_name="X", ensure_min_features=0)  # a model of history alone
    if X.shape[1] != len(others):
        raise ValueError(f"X has {X.shape[1]} columns; the model's inputs without the {len(history.counts_)} count "
                         f"columns are {len(others)} covariates")
    return trials, X


def _trials(starts):
    """The first bin and the length of each trial, from each bin's trial start (``segment_starts``)."""
    first = np.unique(starts)
    return first, np.diff(np.r_[first, len(starts)])


def _rate_and_sampler(final, rows):
    """The expected counts of ``rows``, and a function of a random state that draws one count of each: from one
    predicted distribution where the model gives one, else from ``predict`` and ``sample``."""
    if hasattr(final, "predict_distribution"):
        dist = final.predict_distribution(rows)
        return np.asarray(dist.mean), lambda rng: np.asarray(dist.sample(1, random_state=rng))
    return np.asarray(final.predict(rows)), lambda rng: np.asarray(final.sample(rows, random_state=rng))


def simulate_recurrent(model, X, *, random_state=None):
    """Simulate spike counts bin by bin from a fitted model with spike history, feeding each bin's simulated
    counts back as the history of the following bins (compare nemos' ``simulate_recurrent``).

    Parameters
    ----------
    model : Pipeline
        Fitted, with a :class:`~sklearn_costs.preprocessing.SpikeHistory` first and a count regressor with
        ``sample`` (e.g. :class:`~sklearn_costs.PoissonSpikeRegressor`) last, whose targets are the history's
        count columns in the same order (a coupled population model, or a one-neuron model of its own history).
    X : DataFrame or array-like of shape (n_bins, n_covariates)
        The covariates of each bin in time order: the model's input columns other than the counts (by name from
        a DataFrame; in input order from an array), and the history's ``trial_col``, at each change of which the
        history restarts at zero. A pynapple ``TsdFrame`` over several epochs (and no ``trial_col``) restarts it
        at each epoch. The trials are simulated side by side: bin ``k`` of every trial in one prediction.
    random_state : int, RandomState or None

    Returns
    -------
    counts : ndarray or DataFrame of shape (n_bins, n_neurons)
        The simulated counts (a DataFrame indexed like ``X``, columns named as the count columns, when ``X`` is
        a DataFrame).
    rates : same type and shape
        The expected count of each bin given the covariates and the simulated history before it.

    Raises
    ------
    RuntimeError
        The simulation ran away: a predicted count reached ``MAX_RATE`` (1e6 per bin), as an unstable feedback
        loop does.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_costs import PoissonSpikeRegressor, simulate_recurrent
    >>> from sklearn_costs.preprocessing import SpikeHistory
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"speed": rng.normal(size=500), "n1": rng.poisson(1.0, size=500)})
    >>> model = make_pipeline(SpikeHistory(counts=["n1"], n_lags=3, basis=None),
    ...                       PoissonSpikeRegressor(hidden_layer_sizes=(), max_epochs=5, random_state=0))
    >>> model = model.fit(X, X["n1"])
    >>> counts, rates = simulate_recurrent(model, X[["speed"]].iloc[:50], random_state=0)
    >>> counts.shape, rates.shape
    ((50, 1), (50, 1))
    """
    if not isinstance(model, Pipeline) or not isinstance(model[0], SpikeHistory):
        raise TypeError("model must be a fitted Pipeline whose first step is a SpikeHistory; got "
                        f"{type(model).__name__}")
    history, rest, final = model[0], model[1:], model[-1]
    check_is_fitted(history, "counts_")
    check_is_fitted(final)
    if not hasattr(final, "sample"):
        raise TypeError(f"the model's last step, {type(final).__name__}, cannot draw counts (it has no `sample`)")
    n_neurons = len(history.counts_)
    if getattr(final, "n_outputs_", n_neurons) != n_neurons:
        raise ValueError(f"the model predicts {final.n_outputs_} targets but its history has {n_neurons} count "
                         "columns: in closed loop each target's draws are its own count column's history")
    if getattr(final, "_target_names", None) is not None and hasattr(history, "feature_names_in_"):
        sources = [str(n) for n in history.feature_names_in_[history.counts_]]
        if list(final._target_names) != sources:
            raise ValueError(f"the model's targets {final._target_names[:5]} are not its history's count columns "
                             f"{sources[:5]} in the same order: in closed loop each target's draws become its own "
                             "column's history. Fit with y = X[counts]")
    crossing = [type(step).__name__ for step in rest[:-1] if isinstance(step, (SpikeHistory, LagFeatures))]
    if crossing:
        raise TypeError(f"the steps between SpikeHistory and the model include {crossing}, which look across rows; "
                        "the simulation feeds them one bin at a time. Build covariate lags before the pipeline")
    X = features_to_pandas(X)
    index = X.index if isinstance(X, pd.DataFrame) else None
    trials, covariates = _covariates(history, X)
    n_bins = len(covariates)
    basis = history.basis_ if history.basis_ is not None else np.eye(history.n_lags)
    rng = check_random_state(random_state)
    counts = np.zeros((n_bins, n_neurons))
    rates = np.zeros((n_bins, n_neurons))
    transform_rest = rest[:-1]
    # steps fitted on named columns (set_output(transform="pandas")) get them back, or they warn at every bin
    names = history.get_feature_names_out() if hasattr(rest[0], "feature_names_in_") else None
    first, length = _trials(segment_starts(trials, n_bins))
    # the trials are independent: step k simulates bin k of every trial that long at once
    for k in range(int(length.max(initial=0))):
        bins = (first + k)[length > k]
        depth = min(history.n_lags, k)
        # the counts 1..depth bins back, most recent first, projected on the basis (bump-major, as transform)
        past = counts[bins[:, None] - np.arange(1, depth + 1)]  # (trials, depth, neurons)
        features = np.einsum("db,tdn->tbn", basis[:depth], past).reshape(len(bins), -1)
        rows = np.concatenate([covariates[bins], features], axis=1)
        if names is not None:
            rows = pd.DataFrame(rows, columns=names)
        if len(transform_rest):
            rows = transform_rest.transform(rows)
        rate, sampler = _rate_and_sampler(final, rows)
        rate = rate.reshape(len(bins), n_neurons)
        runaway = ~(np.isfinite(rate) & (rate < MAX_RATE)).all(axis=1)
        if runaway.any():
            raise RuntimeError(
                f"the closed-loop simulation ran away at bin {bins[runaway].min()}: a predicted count of "
                f"{float(np.max(rate[runaway])):.3g} per bin. The model's history feedback is unstable (excitation "
                "feeding itself faster than the refractoriness damps it, a known property of fitted coupled GLMs); "
                "fit with more data or a penalty (weight_decay), fewer lags, or simulate shorter trials (history "
                "restarts at each trial)"
            )
        rates[bins], counts[bins] = rate, sampler(rng).reshape(len(bins), n_neurons)
    if index is None:
        return counts, rates
    inputs = np.asarray(getattr(history, "feature_names_in_", np.arange(history.n_features_in_)), dtype=object)
    columns = list(inputs[history.counts_])
    return (pd.DataFrame(counts.astype(np.int64), index=index, columns=columns),
            pd.DataFrame(rates, index=index, columns=columns))
