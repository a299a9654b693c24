"""History features: each covariate's values in the previous bins, raw or through a raised-cosine basis."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from .._pynapple import EPOCH_LABELS, time_indexed
from .._validation import POSITIVE_INT
from .segments import history_blocks, segment_starts, split_column, without_trial_column


def raised_cosine_basis(n_lags, n_basis, log_scale=True):
    """Raised-cosine bumps over lags ``1..n_lags`` (Pillow et al. 2008), shape ``(n_lags, n_basis)``.

    With ``log_scale`` the bumps are narrow at short lags and wide at long ones, so recent history is resolved
    finely and the distant past smoothly. Neighbouring bumps overlap by half, so they sum to exactly 1 at every
    lag.

    Examples
    --------
    >>> basis = raised_cosine_basis(n_lags=6, n_basis=3)
    >>> basis.shape
    (6, 3)
    """
    if n_basis < 1 or n_lags < 1:
        raise ValueError("n_lags and n_basis must be at least 1")
    if n_basis > n_lags:
        raise ValueError(f"n_basis={n_basis} raised-cosine bumps cannot be told apart on n_lags={n_lags} lags; use "
                         "n_basis <= n_lags, or basis=None for one column per lag")
    lags = np.arange(1, n_lags + 1, dtype=np.float64)
    warp = np.log(lags + 1.0) if log_scale else lags
    centres = np.linspace(warp[0], warp[-1], n_basis)
    width = (centres[1] - centres[0]) if n_basis > 1 else (warp[-1] - warp[0] + 1.0)
    phase = np.clip((warp[:, None] - centres[None, :]) * np.pi / width, -np.pi, np.pi)
    return 0.5 * (1.0 + np.cos(phase))


class _LagTransformer(TransformerMixin, BaseEstimator):
    """What the lag transformers share: an optional trial column, the lag basis, and the names of lag columns."""

    def _split_trials(self, X):
        """``(trial labels or None, X without the trial column)``. Without ``trial_col``, a time-indexed X over
        several epochs (a pynapple TsdFrame restricted to them) has its epochs as trials."""
        if self.trial_col is None:
            epochs = X.attrs.get(EPOCH_LABELS) if isinstance(X, pd.DataFrame) else None
            return (epochs if epochs is not None and len(epochs) == len(X) else None), X
        return split_column(X, self.trial_col)

    def _basis(self):
        """The ``(n_lags, n_basis)`` raised-cosine basis, or None for raw lags."""
        return raised_cosine_basis(self.n_lags, self.n_basis) if self.basis == "raised_cosine" else None

    def _lag_names(self, names):
        """Names of the history columns of ``names``, lag-or-bump major: ``x_lag1, y_lag1, x_lag2, ...``."""
        suffix, n = ("lag", self.n_lags) if self.basis is None else ("hist", self.n_basis)
        return [f"{name}_{suffix}{j + 1}" for j in range(n) for name in names]


class LagFeatures(_LagTransformer):
    """Add each covariate's values in the ``n_lags`` previous rows (time bins) as new columns.

    The rows must be consecutive time bins in order; with ``trial_col`` they are consecutive within each trial
    (or epoch, or piece of recording between gaps: see :func:`segment_labels`), and no lag crosses from one trial
    into the next. The first ``n_lags`` rows (of each trial) have no complete history: they are padded
    (``fill="edge"`` repeats the first row, ``"zero"`` uses 0) so that the output keeps one row per input row, as a
    step of a :class:`~sklearn.pipeline.Pipeline` must; ``fill="nan"`` marks the lags they lack as NaN, for a
    model that handles missing values (``HistGradientBoostingRegressor``) or to drop those rows and their targets
    together (``mask = ~np.isnan(Z).any(axis=1)``); ``fill="drop"`` removes them (then slice the targets the
    same way yourself; without trials: ``Y[lags.n_lags:]``).

    A pynapple ``TsdFrame`` in gives a ``TsdFrame`` out, with the same times (with ``fill="drop"``, an array; with
    ``set_output(transform="pandas")``, a DataFrame indexed by them); a one-column ``Tsd`` is read as an unnamed
    column.

    For lags of spike *counts* (a neuron's own history, coupling between neurons) use :class:`SpikeHistory`, which
    never lets a bin's own count into its features.

    Parameters
    ----------
    n_lags : int >= 1, default=1
        How many previous bins to add (1 gives the "current and previous bin" inputs).
    basis : {None, "raised_cosine"}, default=None
        None adds one column per covariate and lag; ``"raised_cosine"`` projects the ``n_lags`` previous values on
        ``n_basis`` smooth log-spaced bumps, fewer columns for long histories.
    n_basis : int >= 1, default=4
        Number of raised-cosine bumps.
    fill : {"edge", "zero", "nan", "drop"}, default="edge"
        What the lags before a trial's first row are: its first row, 0, NaN (with a basis, a bump is NaN where a
        lag it weighs is missing), or the rows without a complete history are dropped.
    include_current : bool, default=True
        Keep the current bin's values as the first columns.
    trial_col : str, int or None, default=None
        The column of ``X`` (a name, or a position for an array) that labels each row's trial; lags restart at
        every change of label, and the column is not in the output.
        Without it, a pynapple ``TsdFrame`` whose time support has several epochs has its epochs as trials.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns, ``trial_col`` excluded.
    feature_names_in_ : ndarray of str
        Present when fitted on a DataFrame with string columns (``trial_col`` excluded).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"speed": [1.0, 2.0, 3.0]})
    >>> LagFeatures(n_lags=1).set_output(transform="pandas").fit_transform(X)
       speed  speed_lag1
    0    1.0         1.0
    1    2.0         1.0
    2    3.0         2.0
    """

    _parameter_constraints: dict = {
        "n_lags": [POSITIVE_INT],
        "basis": [StrOptions({"raised_cosine"}), None],
        "n_basis": [POSITIVE_INT],
        "fill": [StrOptions({"edge", "zero", "nan", "drop"})],
        "include_current": ["boolean"],
        "trial_col": [str, numbers.Integral, None],
    }

    def __init__(self, n_lags=1, basis=None, n_basis=4, fill="edge", include_current=True, trial_col=None):
        self.n_lags = n_lags
        self.basis = basis
        self.n_basis = n_basis
        self.fill = fill
        self.include_current = include_current
        self.trial_col = trial_col

    @time_indexed()
    def fit(self, X, y=None):
        self._validate_params()
        self._basis()  # refuses more bumps than lags now, not at transform
        validate_data(self, self._split_trials(X)[1], reset=True, dtype=np.float64)
        return self

    @time_indexed(columns=lambda self: self.get_feature_names_out())
    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        trials, X = self._split_trials(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        starts = segment_starts(trials, len(X))
        fill = "edge" if self.fill == "drop" else self.fill  # the rows without a full history go anyway
        blocks = [X] if self.include_current else []
        blocks += history_blocks(X, self.n_lags, starts, fill, self._basis())
        out = np.concatenate(blocks, axis=1)
        if self.fill == "drop":
            out = out[np.arange(len(X)) - starts >= self.n_lags]
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_features_in_")
        input_features = without_trial_column(input_features, self.trial_col)
        names = _check_feature_names_in(self, input_features)
        out = list(names) if self.include_current else []
        return np.asarray(out + self._lag_names(names), dtype=object)
