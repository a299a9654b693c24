"""Segments of consecutive time bins (trials, epochs, pieces of a recording between gaps), and the lags that
respect them: a lag never reaches into the previous segment."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd


def _epoch_bounds(epochs):
    """``(starts, ends)`` float arrays from a DataFrame with start/end columns, a pynapple IntervalSet, or an
    ``(n, 2)`` array."""
    if isinstance(epochs, pd.DataFrame):
        missing = {"start", "end"} - set(epochs.columns)
        if missing:
            raise ValueError(f"the epochs DataFrame needs columns 'start' and 'end'; missing {sorted(missing)}")
        starts, ends = epochs["start"], epochs["end"]
    elif hasattr(epochs, "start") and hasattr(epochs, "end"):  # pynapple IntervalSet
        starts, ends = epochs.start, epochs.end
    else:
        bounds = np.asarray(epochs, dtype=np.float64)
        if bounds.ndim != 2 or bounds.shape[1] != 2:
            raise ValueError(f"epochs must be a DataFrame with start/end columns, a pynapple IntervalSet or an "
                             f"(n_epochs, 2) array of [start, end) times; got shape {bounds.shape}")
        starts, ends = bounds[:, 0], bounds[:, 1]
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    if np.any(ends <= starts):
        i = int(np.flatnonzero(ends <= starts)[0])
        raise ValueError(f"epoch {i} ends ({ends[i]}) before it starts ({starts[i]})")
    return starts, ends


def segment_labels(times, epochs=None, max_gap="auto"):
    """Label each time bin with the segment of consecutive bins it belongs to: its trial, epoch, or the piece of
    the recording between two gaps.

    Lags (:class:`LagFeatures`, :class:`SpikeHistory` with ``trial_col``) and by-trial cross-validation
    (``GroupKFold(...).split(X, y, groups=labels)``) use these labels so that nothing crosses a boundary.

    Parameters
    ----------
    times : array-like of shape (n_bins,)
        Bin start times in seconds, increasing (e.g. ``bin_spikes(...).index``).
    epochs : DataFrame with ``start`` and ``end`` columns, pynapple IntervalSet or (n_epochs, 2) array, optional
        Trials or epochs ``[start, end)``: a bin starting inside epoch ``k`` is in segment ``k`` or a later one
        (a gap inside an epoch splits it too); bins outside every epoch get ``-1`` (drop them:
        ``X[labels >= 0]``).
    max_gap : float or "auto", default="auto"
        A step between consecutive bin times larger than this starts a new segment; ``"auto"`` is 1.5 times the
        median step (so bins restricted to two epochs with a pause between them are two segments). ``None``
        detects no gaps.

    Returns
    -------
    labels : ndarray of int of shape (n_bins,)
        0, 1, 2, ... in time order, -1 outside the epochs.

    Examples
    --------
    >>> import numpy as np
    >>> times = np.array([0.0, 0.05, 0.1, 0.5, 0.55, 0.6])
    >>> segment_labels(times)
    array([0, 0, 0, 1, 1, 1])
    >>> segment_labels(times, epochs=[[0.0, 0.06], [0.5, 1.0]])
    array([ 0,  0, -1,  1,  1,  1])
    """
    times = np.asarray(times, dtype=np.float64).ravel()
    if len(times) == 0:
        return np.empty(0, dtype=np.int64)
    steps = np.diff(times)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"times must increase; time {i + 1} ({times[i + 1]}) does not come after {times[i]}")
    new = np.zeros(len(times), dtype=bool)
    if max_gap is not None and len(steps):
        if isinstance(max_gap, str):
            if max_gap != "auto":
                raise ValueError(f"max_gap must be a number of seconds, 'auto' or None; got {max_gap!r}")
            max_gap = 1.5 * float(np.median(steps))
        elif not (isinstance(max_gap, numbers.Real) and max_gap > 0):
            raise ValueError(f"max_gap must be a positive number of seconds, 'auto' or None; got {max_gap!r}")
        new[1:] = steps > max_gap
    epoch = np.zeros(len(times), dtype=np.int64)
    if epochs is not None:
        starts, ends = _epoch_bounds(epochs)
        order = np.argsort(starts)
        starts, ends = starts[order], ends[order]
        k = np.searchsorted(starts, times, side="right") - 1
        inside = (k >= 0) & (times < ends[np.clip(k, 0, None)])
        epoch = np.where(inside, k, -1)
        new[1:] |= epoch[1:] != epoch[:-1]
    new[0] = True
    labels = np.cumsum(new & (epoch >= 0)) - 1
    labels[epoch < 0] = -1
    return labels


def segment_starts(labels, n_rows):
    """For each row, the index of the first row of its segment (a run of equal consecutive labels); all 0 when
    ``labels`` is None (one segment)."""
    if labels is None:
        return np.zeros(n_rows, dtype=np.int64)
    labels = np.asarray(labels)
    change = np.ones(n_rows, dtype=bool)
    change[1:] = labels[1:] != labels[:-1]
    first = np.flatnonzero(change)
    return first[np.cumsum(change) - 1]


def lagged(values, lag, starts, fill):
    """``values`` shifted down by ``lag`` rows inside each segment; rows with no value ``lag`` bins back in their
    segment get 0 (``fill="zero"``), NaN (``"nan"``) or the segment's first row (``"edge"``)."""
    rows = np.arange(len(values))
    source = rows - lag
    if fill == "edge":
        return values[np.maximum(source, starts)]
    out = values[np.maximum(source, 0)]
    out[source < starts] = np.nan if fill == "nan" else 0
    return out


def history_blocks(values, n_lags, starts, fill, basis=None):
    """The lags 1..n_lags of ``values`` as a list of ``(n_rows, n_columns)`` blocks: one per lag, or with a
    ``(n_lags, n_basis)`` basis one per basis function (the lags projected on it)."""
    if basis is None:
        return [lagged(values, j, starts, fill) for j in range(1, n_lags + 1)]
    blocks = [np.zeros(values.shape, dtype=np.float64) for _ in range(basis.shape[1])]
    for j in range(1, n_lags + 1):
        shifted = lagged(values, j, starts, fill)
        for b, weight in enumerate(basis[j - 1]):
            if weight:
                blocks[b] += weight * shifted
    return blocks


def split_column(X, column):
    """``(labels, rest)``: the ``column`` of ``X`` (a name of a DataFrame's column, or a position) and ``X``
    without it."""
    if isinstance(X, pd.DataFrame):
        if column not in X.columns:
            raise ValueError(f"trial_col={column!r} is not a column of X; its columns are {list(X.columns)[:10]}")
        return X[column].to_numpy(), X.drop(columns=[column])
    if not isinstance(column, numbers.Integral):
        raise ValueError(f"trial_col={column!r} names a column, but X has no column names; pass X as a DataFrame "
                         "or trial_col as a column position")
    X = np.asarray(X)
    if X.ndim != 2 or not -X.shape[1] <= column < X.shape[1]:
        raise ValueError(f"trial_col={column} is not a column position of X (shape {X.shape})")
    return X[:, column], np.delete(X, column, axis=1)


def without_trial_column(input_features, trial_col):
    """``input_features`` (of ``get_feature_names_out``) without the trial column, given by name or position."""
    if input_features is None or trial_col is None:
        return input_features
    features = list(input_features)
    if isinstance(trial_col, numbers.Integral):
        del features[int(trial_col)]
        return features
    return [f for f in features if f != trial_col]
