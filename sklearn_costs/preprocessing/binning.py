"""From spike times and irregularly sampled covariates to one table of counts and covariates per time bin."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


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
    if isinstance(spikes, dict):
        names = list(spikes)
        arrays = [np.asarray(spikes[k], dtype=np.float64).ravel() for k in names]
    elif isinstance(spikes, (list, tuple)):
        names = list(range(len(spikes)))
        arrays = [np.asarray(a, dtype=np.float64).ravel() for a in spikes]
    else:
        raise TypeError(
            "spikes must be a DataFrame with neuron and time columns, a dict {neuron: times} or a list of arrays; "
            f"got {type(spikes).__name__}"
        )
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    codes = np.repeat(np.arange(len(arrays)), lengths)
    times = np.concatenate(arrays) if arrays else np.empty(0)
    return codes, times, names


def bin_spikes(spikes, bin_width=0.05, t_start=None, t_stop=None, *, neuron_col="neuron", time_col="time",
               neurons=None):
    """Count each neuron's spikes in consecutive bins of ``bin_width`` seconds.

    Parameters
    ----------
    spikes : DataFrame, dict or list
        Spike times in seconds: a long DataFrame with one row per spike (columns ``neuron_col``, ``time_col``),
        a dict ``{neuron: array of times}``, or a list of arrays (neurons numbered 0, 1, ...). Times need not be
        sorted.
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
    index += np.multiply(codes, n_bins, dtype=np.int64)
    flat = np.bincount(index, minlength=len(names) * n_bins)
    counts = flat.reshape(len(names), n_bins).T
    dtype = np.uint16 if counts.max(initial=0) < 2**16 else np.int64
    starts = np.round(t_start + bin_width * np.arange(n_bins), 9)
    return pd.DataFrame(counts.astype(dtype), index=pd.Index(starts, name="bin_start"), columns=names)


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
    DataFrame indexed like ``bin_starts``: each covariate's mean over the samples inside each bin, linearly
    interpolated in time for bins that hold no sample.

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
    values = covariates.to_numpy(dtype=np.float64)
    sums = np.zeros((len(starts), values.shape[1]))
    np.add.at(sums, index[inside], values[inside])
    n = np.bincount(index[inside], minlength=len(starts))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / n[:, None]
    out = pd.DataFrame(means, index=pd.Index(np.round(starts, 9), name="bin_start"), columns=covariates.columns)
    if (n == 0).any():
        out = out.interpolate(method="index", limit_direction="both")
    return out
