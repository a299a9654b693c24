"""Spike-history features: the counts of chosen neurons in the previous bins (a neuron's own history, coupling
between neurons), never the current bin's."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_array, check_is_fitted, validate_data

from .._pynapple import time_indexed
from .._validation import POSITIVE_INT
from .lags import _LagTransformer
from .segments import history_blocks, segment_starts, without_trial_column


class SpikeHistory(_LagTransformer):
    """Replace the spike-count columns of ``X`` by their history: each neuron's counts in the ``n_lags``
    previous bins, raw or on a raised-cosine basis; the other columns (the covariates) pass through.

    The models fitted to population recordings (Pillow et al. 2008; the GLMs of nemos) see, besides the
    behaviour, each neuron's own recent spikes (refractoriness, bursts) and the other neurons' (coupling). Put the
    counts into ``X`` beside the covariates, list them in ``counts``, and use this as the first step of a
    :class:`~sklearn.pipeline.Pipeline` whose ``y`` is the counts: the features of bin ``t`` are built from the
    counts of bins ``t - 1, ..., t - n_lags`` only, so the current bin's count, the target, can never leak into
    its own prediction. List one neuron for its own history in a one-neuron model, all of them for coupling.

    The bins must be consecutive in time; with ``trial_col`` they are consecutive within each trial (see
    :func:`segment_labels` for epochs and gaps), and history restarts at 0 at the start of every trial, as at the
    start of the recording: no spike before the first bin is known. The same holds for the first bins of a test
    block transformed on its own (e.g. inside ``cross_val_score`` on contiguous folds): they see no history, as
    a new trial would (features built on the whole recording instead give them their real past; then leave the
    ``n_lags`` training bins after each test block out, whose history holds the test block's counts).
    :func:`~sklearn_costs.simulate_recurrent` runs a fitted pipeline in closed loop. A pynapple
    ``TsdFrame`` in gives a ``TsdFrame`` out, with the same times (with ``set_output(transform="pandas")``, a
    DataFrame indexed by them); a one-column ``Tsd`` is read as an unnamed column.

    Parameters
    ----------
    counts : list of column labels or positions, or None, default=None
        The columns of ``X`` that hold spike counts: labels of a DataFrame's columns (of any type, e.g. the integer
        unit keys of ``bin_spikes(TsGroup)``), or positions in an array's columns (``trial_col`` counted); None:
        every column (``trial_col`` excepted). List every target here: ``fit`` refuses a target that would pass
        through with its current count.
    n_lags : int >= 1, default=10
        How many previous bins of history (10 bins of 50 ms: half a second).
    basis : {"raised_cosine"} or None, default="raised_cosine"
        ``"raised_cosine"`` projects each neuron's ``n_lags`` past counts on ``n_basis`` log-spaced bumps (narrow at
        short lags, where refractoriness lives; wide at long ones); None gives one column per neuron and lag.
    n_basis : int >= 1, default=4
    trial_col : str, int or None, default=None
        The column of ``X`` labelling each row's trial; history does not cross a change of label, and the column
        is not in the output.
        Without it, a pynapple ``TsdFrame`` whose time support has several epochs has its epochs as trials.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns, ``trial_col`` excluded.
    feature_names_in_ : ndarray of str
        Present when fitted on a DataFrame with string columns (``trial_col`` excluded).
    counts_ : ndarray of int
        Positions of the count columns among the input columns (``trial_col`` excluded).
    basis_ : ndarray of shape (n_lags, n_basis) or None
        The basis the counts are projected on (None for raw lags).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"speed": [0.5, 1.0, 1.5, 2.0], "n1": [1, 0, 2, 0]})
    >>> history = SpikeHistory(counts=["n1"], n_lags=2, basis=None).set_output(transform="pandas")
    >>> history.fit_transform(X)
       speed  n1_lag1  n1_lag2
    0    0.5      0.0      0.0
    1    1.0      1.0      0.0
    2    1.5      0.0      1.0
    3    2.0      2.0      0.0
    """

    _parameter_constraints: dict = {
        "counts": ["array-like", None],
        "n_lags": [POSITIVE_INT],
        "basis": [StrOptions({"raised_cosine"}), None],
        "n_basis": [POSITIVE_INT],
        "trial_col": [str, numbers.Integral, None],
    }

    def __init__(self, counts=None, n_lags=10, basis="raised_cosine", n_basis=4, trial_col=None):
        self.counts = counts
        self.n_lags = n_lags
        self.basis = basis
        self.n_basis = n_basis
        self.trial_col = trial_col

    def _count_positions(self, X):
        """Positions of the count columns among the columns left once ``trial_col`` is removed: ``counts`` holds
        labels of a DataFrame's columns, or positions in an array's columns (``trial_col`` included)."""
        trials_at = None
        if isinstance(X, pd.DataFrame):
            labels = [c for c in X.columns if self.trial_col is None or c != self.trial_col]
            n_full = len(labels)
        else:
            shape = X.shape if hasattr(X, "shape") else np.shape(np.asarray(X))  # array-likes too
            n_full = shape[1] if len(shape) == 2 else 0
            if n_full == 0:
                check_array(X, dtype=None)  # scikit-learn's message for data without features (or not 2-d)
            if isinstance(self.trial_col, numbers.Integral) and n_full:
                trials_at = int(self.trial_col) % n_full
            labels = None
        n = n_full - (trials_at is not None)
        if self.counts is None:
            return np.arange(n)
        positions = []
        for c in self.counts:
            if labels is not None:
                if c not in labels:
                    raise ValueError(f"counts names {c!r}, which is not a column of X (columns: {labels[:10]})")
                positions.append(labels.index(c))
            elif isinstance(c, numbers.Integral) and not isinstance(c, bool) and -n_full <= c < n_full:
                c = int(c) % n_full
                if c == trials_at:
                    raise ValueError(f"counts lists column {c}, which is the trial_col")
                positions.append(c - (trials_at is not None and c > trials_at))
            else:
                raise ValueError(f"counts must list column labels of X (a DataFrame) or positions below {n_full}; "
                                 f"got {c!r}")
        if not positions:
            raise ValueError("counts is empty: list the count columns, or pass None for all of them")
        if len(set(positions)) != len(positions):
            raise ValueError("counts lists a column twice")
        return np.asarray(positions, dtype=np.int64)

    @time_indexed()
    def fit(self, X, y=None):
        """Check the parameters and the count columns; with ``y`` (a Pipeline passes it), check that no target is
        also a column passed through as it is, which would show each bin its own count."""
        self._validate_params()
        counts = self._count_positions(X)
        X = validate_data(self, self._split_trials(X)[1], reset=True, dtype=np.float64)
        self.counts_ = counts
        self.basis_ = self._basis()
        self._check_counts(X)
        if y is not None:
            self._check_no_target_passes_through(X, y)
        return self

    def _check_no_target_passes_through(self, X, y):
        targets = np.asarray(y, dtype=np.float64)
        if len(targets) != len(X):
            return  # the estimator downstream reports the mismatch
        targets = targets.reshape(len(X), -1)
        for j in self._passthrough():
            column = X[:, j]
            if np.ptp(column) == 0:  # a constant column equals a silent neuron's counts by chance
                continue
            same = np.flatnonzero((targets == column[:, None]).all(0))
            if len(same):
                raise ValueError(
                    f"column {self._input_names()[j]!r} of X equals target {int(same[0])} of y but is not in "
                    "`counts`: it would pass through with the current bin's count, the target itself. List every "
                    "target's count column in `counts` (or drop it from X)"
                )

    def _check_counts(self, X):
        counts = X[:, self.counts_]
        bad = ~((counts >= 0) & (counts == np.round(counts)))  # NaN fails both
        if bad.any():
            row, col = np.argwhere(bad)[0]
            name = self._input_names()[self.counts_[col]]
            raise ValueError(f"column {name!r} of X is a spike-count column (in `counts`) and must hold "
                             f"non-negative integer counts; found {float(counts[row, col])!r} at row {row}")

    def _input_names(self):
        return list(_check_feature_names_in(self, None))

    @time_indexed(columns=lambda self: self.get_feature_names_out())
    def transform(self, X):
        check_is_fitted(self, "counts_")
        trials, X = self._split_trials(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        self._check_counts(X)
        starts = segment_starts(trials, len(X))
        history = history_blocks(X[:, self.counts_], self.n_lags, starts, "zero", self.basis_)
        blocks = [X[:, self._passthrough()]] + history
        return np.concatenate(blocks, axis=1)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "counts_")
        input_features = without_trial_column(input_features, self.trial_col)
        names = np.asarray(_check_feature_names_in(self, input_features), dtype=object)
        return np.asarray(list(names[self._passthrough()]) + self._lag_names(names[self.counts_]), dtype=object)

    def _passthrough(self):
        """Positions of the input columns passed through as they are: all but the counts, in input order."""
        return np.setdiff1d(np.arange(self.n_features_in_), self.counts_)

    def filters(self, coef):
        """The history filters of a GLM fitted on these features: its weights on each neuron's history, as a
        function of the lag.

        Parameters
        ----------
        coef : array-like of shape (n_outputs, n_features_out) or (n_features_out,)
            Weights on this transformer's output columns, e.g. ``PoissonSpikeRegressor(hidden_layer_sizes=())``'s
            ``coef_`` (in the units of the features; a scaler between the two changes the units).

        Returns
        -------
        filters : DataFrame
            Indexed by lag (1 .. ``n_lags``, in bins), one column per (output, history neuron) pair, as a
            MultiIndex ``(output, neuron)``: the weight the output's log-rate puts on that neuron's count ``lag``
            bins ago. The diagonal of a coupled population model holds the self-history filters.
        """
        check_is_fitted(self, "counts_")
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        names = self.get_feature_names_out()
        if coef.shape[1] != len(names):
            raise ValueError(f"coef has {coef.shape[1]} columns; this SpikeHistory outputs {len(names)} features")
        n_counts = len(self.counts_)
        history = coef[:, len(self._passthrough()):]
        # history columns are ordered lag-or-bump major, neuron minor
        weights = history.reshape(len(coef), -1, n_counts)
        by_lag = weights if self.basis_ is None else np.einsum("obn,lb->oln", weights, self.basis_)
        inputs = np.asarray(_check_feature_names_in(self, None), dtype=object)[self.counts_]
        columns = pd.MultiIndex.from_product([range(len(coef)), list(inputs)], names=["output", "neuron"])
        values = by_lag.transpose(1, 0, 2).reshape(self.n_lags, -1)
        return pd.DataFrame(values, index=pd.Index(np.arange(1, self.n_lags + 1), name="lag"), columns=columns)
