"""An NWB file's units and behaviour as the package's binned tables (through pynapple and pynwb: the ``neuro``
extra)."""

from __future__ import annotations

import os

import pandas as pd
from sklearn.utils import Bunch

from .._pynapple import to_pandas
from ..preprocessing import bin_covariates, bin_spikes


def _pynapple():
    try:
        import pynapple
    except ImportError as exc:
        raise ImportError('reading NWB files needs pynapple and pynwb: pip install "sklearn-costs[neuro]"') from exc
    return pynapple


def load_nwb(nwb, bin_width=0.05, covariates=None, *, units="units", t_start=None, t_stop=None):
    """Bin the spikes of an NWB file's units, and average its behavioural time series onto the same bins.

    The file is read with pynapple (``pynapple.load_file``), which finds the units table, every ``TimeSeries``
    (acquisition and processing modules, e.g. a ``Position``'s ``SpatialSeries``) and the trials.

    Parameters
    ----------
    nwb : str, path or pynwb.NWBFile
        The file, or an NWB file object already open.
    bin_width : float, default=0.05
        Bin width in seconds.
    covariates : list of str, optional
        Names of the time series to bin (as pynapple lists them: ``print(pynapple.load_file(path))``); default
        every time series in the file, raw electrophysiology included: on a real recording name the behaviour.
    units : str, default="units"
        The units table.
    t_start, t_stop : float, optional
        The window, as in :func:`~sklearn_costs.preprocessing.bin_spikes`; default the units' time support.

    Returns
    -------
    Bunch with
        ``counts``: DataFrame (bins x units, integer counts, columns ``unit<id>``, indexed by bin start);
        ``covariates``: DataFrame on the same bins, one column per 1-D series (its name) and per column of a
        multi-column one (``<series>_<column>``), each series' mean inside each bin, interpolated where a bin
        holds no sample; ``trials``: DataFrame with ``start`` and ``end`` (None when the file has no trials),
        for :func:`~sklearn_costs.preprocessing.segment_labels`.

    Examples
    --------
    >>> data = load_nwb("session.nwb", bin_width=0.05)  # doctest: +SKIP
    >>> X = data.covariates.join(data.counts)  # doctest: +SKIP
    """
    nap = _pynapple()
    data = nap.load_file(os.fspath(nwb)) if isinstance(nwb, (str, os.PathLike)) else nap.NWBFile(nwb)
    keys = list(data.keys())
    if units not in keys:
        raise ValueError(f"the NWB file has no units table {units!r}; it holds {keys}")
    spikes = data[units]
    counts = bin_spikes(spikes, bin_width=bin_width, t_start=t_start, t_stop=t_stop)
    counts.columns = [f"unit{k}" for k in counts.columns]
    if covariates is None:
        covariates = [k for k in keys if isinstance(data[k], (nap.Tsd, nap.TsdFrame))]
    frames = []
    for name in covariates:
        if name not in keys:
            raise ValueError(f"the NWB file has no time series {name!r}; it holds {keys}")
        if not isinstance(data[name], (nap.Tsd, nap.TsdFrame)):
            raise ValueError(f"{name!r} in the NWB file is a {type(data[name]).__name__}, not a time series of "
                             "values (Tsd or TsdFrame)")
        series = to_pandas(data[name])
        if isinstance(series, pd.Series):
            frame = series.to_frame(name)
        else:
            frame = series.set_axis([f"{name}_{c}" for c in series.columns], axis=1)
        frames.append(bin_covariates(frame, counts.index, bin_width=bin_width))
    binned = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=counts.index)
    trials = None
    if "trials" in keys:
        epochs = data["trials"]
        trials = pd.DataFrame({"start": epochs.start, "end": epochs.end})
    return Bunch(counts=counts, covariates=binned, trials=trials)
