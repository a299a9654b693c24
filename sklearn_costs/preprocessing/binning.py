"""From spike times and irregularly sampled covariates to one table of counts and covariates per time bin."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._pynapple import is_pynapple
from .segments import segment_labels


def _spike_table(spikes, neuron_col, time_col):
    """``(codes, times, names)`` from a long DataFrame, a dict of arrays, or a list of arrays."""
    if isinstance(spikes, pd.DataFrame):
        missing = {neuron_col, time_col} - set(spikes.columns)
        if missing:
            raise ValueError(
                f"the spike DataFrame needs columns {neuron_col!r} and {time_col!r}; missing {sorted(missing)}. "
                "Pass neuron_col= / time_col= to name yours."
            )
        codes, names = pd.factorize(spikes[neuron_col], sort=True)
        return codes, spikes[time_col].to_numpy(dtype=np.float64), list(names)
    if is_pynapple(spikes) and hasattr(spikes, "keys"):  # TsGroup: one Ts of spike times per unit
        names = list(spikes.keys())
        return _concatenated([spikes[k].t for k in names]) + (names,)
    if isinstance(spikes, dict):
        names = list(spikes)
        arrays = [spikes[k] for k in names]
    elif isinstance(spikes, (list, tuple)):
        names = list(range(len(spikes)))
        arrays = list(spikes)
    else:
        raise TypeError(
            "spikes must be a DataFrame with neuron and time columns, a dict {neuron: times}, a list of arrays or a "
            "pynapple TsGroup; "
            f"got {type(spikes).__name__}"
        )
    return _concatenated(arrays) + (names,)


def _concatenated(arrays):
    """``(codes, times)``: the arrays' values one after another, each coded by its position."""
    arrays = [np.asarray(a.t if is_pynapple(a) else a, dtype=np.float64).ravel() for a in arrays]  # Ts: its times
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    codes = np.repeat(np.arange(len(arrays)), lengths)
    times = np.concatenate(arrays) if arrays else np.empty(0)
    return codes, times


def bin_spikes(spikes, bin_width=0.05, t_start=None, t_stop=None, *, neuron_col="neuron", time_col="time",
               neurons=None):
    """Count each neuron's spikes in consecutive bins of ``bin_width`` seconds.

    Parameters
    ----------
    spikes : DataFrame, dict, list or pynapple TsGroup
        Spike times in seconds: a long DataFrame with one row per spike (columns ``neuron_col``, ``time_col``),
        a dict ``{neuron: array of times}``, a list of arrays (neurons numbered 0, 1, ...), or a pynapple
        ``TsGroup`` (its keys name the columns; by default the window is its time support, and with several
        epochs only the bins that start inside one are kept: :func:`segment_labels` then finds the gaps). Times
        need not be sorted.
    bin_width : float, default=0.05
        Bin width in seconds (50 ms).
    t_start, t_stop : float, optional
        The window ``[t_start, t_stop)``; default from the first spike (rounded down to a multiple of
        ``bin_width``) to just after the last. Spikes outside it are dropped with a warning that counts them.
        A window that is not a whole number of bins is extended to the next bin edge.
    neuron_col, time_col : str
        Column names of a long DataFrame.
    neurons : list, optional
        The columns of the result, in order (neurons without spikes give zero columns); default every neuron
        seen, sorted.

    Returns
    -------
    counts : DataFrame of shape (n_bins, n_neurons)
        Integer counts, indexed by bin start time (``bin_start``), one column per neuron.

    Examples
    --------
    >>> counts = bin_spikes({"n1": [0.01, 0.02, 0.07], "n2": [0.12]}, bin_width=0.05, t_start=0.0, t_stop=0.15)
    >>> counts
               n1  n2
    bin_start
    0.00        2   0
    0.05        1   0
    0.10        0   1
    """
    if not bin_width > 0:
        raise ValueError(f"bin_width must be a positive number of seconds; got {bin_width!r}")
    codes, times, names = _spike_table(spikes, neuron_col, time_col)
    support = getattr(spikes, "time_support", None) if is_pynapple(spikes) else None
    if support is not None and len(support):
        t_start = float(support.start[0]) if t_start is None else t_start
        t_stop = float(support.end[-1]) if t_stop is None else t_stop
    # min and max find NaN (which propagates), inf and negatives in two passes; the position only on error.
    lo, hi = (times.min(), times.max()) if len(times) else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0):
        i = int(np.flatnonzero(~np.isfinite(times) | (times < 0))[0])
        raise ValueError(
            f"spike times must be finite and non-negative seconds; found {float(times[i])!r} at position {i} "
            f"(neuron {names[codes[i]]!r})"
        )
    if neurons is not None:
        position = {name: j for j, name in enumerate(neurons)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise ValueError(f"spikes of neurons {unknown[:5]} are not in `neurons`")
        codes = np.array([position[n] for n in names], dtype=np.int64)[codes] if len(codes) else codes
        names = list(neurons)
    if t_start is None:
        t_start = np.floor(lo / bin_width) * bin_width
    if t_stop is None:
        t_stop = hi + bin_width if len(times) else t_start + bin_width
    if not t_stop > t_start:
        raise ValueError(f"t_stop ({t_stop}) must be after t_start ({t_start})")
    n_bins = int(np.ceil((t_stop - t_start) / bin_width - 1e-9))
    t_end = t_start + n_bins * bin_width

    def bin_of(t):
        # A spike on a bin edge belongs to the bin it starts; the 1e-9 absorbs the rounding of the division
        # (0.3 / 0.05 = 5.999999999999999), far below any spike-time precision.
        t = np.subtract(t, t_start)
        t /= bin_width
        t += 1e-9
        return t

    # The bin is monotone in time, so the first and last spikes tell whether every spike is inside the window;
    # then the bins are non-negative and truncation is the floor. Operations in place: this is the hot path.
    if len(times) == 0 or (bin_of(lo) >= 0 and bin_of(hi) < n_bins and hi < t_end):
        index = bin_of(times).astype(np.int64)
    else:
        index = np.floor(bin_of(times)).astype(np.int64)
        inside = (index >= 0) & (index < n_bins) & (times < t_end)
        n_outside = int(len(times) - inside.sum())
        warnings.warn(
            f"{n_outside} of {len(times)} spikes fall outside the window [{t_start}, {t_end}) and were dropped",
            UserWarning,
            stacklevel=2,
        )
        codes, index = codes[inside], index[inside]
    counts = _counts_per_neuron(codes, index, len(names), n_bins)
    starts = np.round(t_start + bin_width * np.arange(n_bins), 9)
    # pandas keeps a frame's columns as the rows of one block: the transpose of a neuron-major array is no copy
    out = pd.DataFrame(counts.T, index=pd.Index(starts, name="bin_start"), columns=names, copy=False)
    if support is not None and len(support) > 1:
        inside = segment_labels(starts, epochs=support, max_gap=None) >= 0
        lost = int(counts[:, ~inside].sum())
        if lost:
            warnings.warn(
                f"{lost} spikes fall in bins that start outside the TsGroup's epochs (an epoch that does not start "
                "on the bin grid) and were dropped; bin each epoch on its own grid with t_start=epoch start, "
                "t_stop=epoch end",
                UserWarning,
                stacklevel=2,
            )
        return out[inside]
    return out


def _counts_per_neuron(codes, index, n_neurons, n_bins):
    """``(n_neurons, n_bins)`` counts, uint16 unless a bin holds 65,536 spikes or more (then int64), counted one
    neuron at a time: the int64 counts of every cell at once would take 4x the result's memory."""
    if len(codes) > 1 and np.any(codes[1:] < codes[:-1]):  # a long DataFrame in time order
        order = np.argsort(codes, kind="stable")
        codes, index = codes[order], index[order]
    bounds = np.searchsorted(codes, np.arange(n_neurons + 1))
    counts = np.zeros((n_neurons, n_bins), dtype=np.uint16)
    for j in range(n_neurons):
        row = np.bincount(index[bounds[j] : bounds[j + 1]], minlength=n_bins)
        if counts.dtype == np.uint16 and row.max(initial=0) >= 2**16:
            counts = counts.astype(np.int64)
        counts[j] = row
    return counts


def bin_covariates(covariates, bin_starts, bin_width=0.05):
    """Average covariates sampled at their own times onto spike-count bins.

    Parameters
    ----------
    covariates : DataFrame
        Indexed by sample time in seconds (numeric or ``Timedelta``); one column per covariate.
    bin_starts : array-like or Index
        Bin start times, e.g. ``bin_spikes(...).index``.
    bin_width : float, default=0.05

    Returns
    -------
    DataFrame indexed like ``bin_starts``: each covariate's mean over its samples inside each bin, missing (NaN)
    samples skipped. A bin where a covariate has no sample takes the value linearly interpolated in time between
    the nearest bins that have one; before the first such bin and after the last it holds their value (the last
    value carries forward to the end). A covariate without any sample in the window stays NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> cov = pd.DataFrame({"speed": [1.0, 3.0, 5.0, 7.0]}, index=[0.0, 0.02, 0.05, 0.07])
    >>> bin_covariates(cov, [0.0, 0.05], bin_width=0.05)
               speed
    bin_start
    0.00         2.0
    0.05         6.0
    """
    if not isinstance(covariates, pd.DataFrame):
        raise TypeError(f"covariates must be a DataFrame indexed by time; got {type(covariates).__name__}")
    t = covariates.index
    t = t.total_seconds().to_numpy() if isinstance(t, pd.TimedeltaIndex) else np.asarray(t, dtype=np.float64)
    starts = np.asarray(bin_starts, dtype=np.float64)
    if len(starts) > 1 and not np.all(np.diff(starts) > 0):
        raise ValueError("bin_starts must be increasing")
    index = np.searchsorted(starts, t, side="right") - 1
    inside = (index >= 0) & (t < starts[-1] + bin_width) & (t < starts[np.clip(index, 0, None)] + bin_width)
    values = covariates.to_numpy(dtype=np.float64)[inside]
    bins = index[inside]
    # a missing (NaN) sample is no sample: each column's mean is over its own present samples, and a bin where a
    # column has none is filled like a bin without samples
    present = ~np.isnan(values)
    means = np.empty((len(starts), values.shape[1]))
    for j in range(values.shape[1]):
        n = np.bincount(bins[present[:, j]], minlength=len(starts))
        sums = np.bincount(bins[present[:, j]], weights=values[present[:, j], j], minlength=len(starts))
        with np.errstate(invalid="ignore", divide="ignore"):
            means[:, j] = sums / n
    out = pd.DataFrame(means, index=pd.Index(np.round(starts, 9), name="bin_start"), columns=covariates.columns)
    if np.isnan(means).any():
        out = out.interpolate(method="index", limit_direction="both")
    return out
