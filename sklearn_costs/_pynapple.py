"""pynapple's time-indexed arrays (Tsd, TsdFrame) in and out of the estimators and transformers.

Inputs are converted to pandas (whose columns scikit-learn's validation reads as feature names); an output
computed from a time-indexed ``X`` gets ``X``'s times and time support back. pynapple is optional: nothing here
imports it unless it was given one of its objects.
"""

from __future__ import annotations

import functools

import numpy as np


def is_pynapple(obj) -> bool:
    return type(obj).__module__.startswith("pynapple")


#: The key in a DataFrame's ``attrs`` under which :func:`to_pandas` leaves the epoch of each row of a TsdFrame whose
#: time support has several epochs: the lag transformers read it as trials, so that no lag crosses a gap.
EPOCH_LABELS = "sklearn_costs.epoch_labels"


def to_pandas(obj):
    """A Tsd as a Series, a TsdFrame as a DataFrame (indexed by time); anything else unchanged. A TsdFrame over
    several epochs of its time support has each row's epoch (0, 1, ...) in ``attrs[EPOCH_LABELS]``."""
    if is_pynapple(obj) and hasattr(obj, "as_dataframe"):
        frame = obj.as_dataframe()
        support = getattr(obj, "time_support", None)
        if support is not None and len(support) > 1:
            frame.attrs[EPOCH_LABELS] = np.searchsorted(np.asarray(support.start), obj.t, side="right") - 1
        return frame
    if is_pynapple(obj) and hasattr(obj, "as_series"):
        return obj.as_series()
    return obj


def like(values, template, columns=None):
    """``values`` (one row per time of ``template``) as a Tsd (1-D) or TsdFrame, with ``template``'s times and
    time support."""
    import pynapple as nap

    values = np.asarray(values)
    if len(values) != len(template):  # rows dropped (LagFeatures(fill="drop")): their times are not known here
        return values
    if values.ndim == 1:
        return nap.Tsd(t=template.t, d=values, time_support=template.time_support)
    columns = None if columns is None or len(columns) != values.shape[1] else list(columns)
    return nap.TsdFrame(t=template.t, d=values, time_support=template.time_support, columns=columns)


def time_indexed(columns=None):
    """Decorate a method whose first argument is ``X`` (and maybe ``y`` second) so that it accepts pynapple
    objects, and, with a ``columns(self)`` function, returns a time-indexed result for a time-indexed ``X`` (a
    tuple of results element-wise)."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, X, *args, **kwargs):
            template = X if is_pynapple(X) and hasattr(X, "t") else None
            args = tuple(to_pandas(a) for a in args)
            if "y" in kwargs:
                kwargs["y"] = to_pandas(kwargs["y"])
            out = method(self, to_pandas(X), *args, **kwargs)
            if template is None or columns is None:
                return out
            names = columns(self)
            if isinstance(out, tuple):
                return tuple(like(o, template, names) for o in out)
            return like(out, template, names)

        return wrapper

    return decorate


def target_names(y):
    """The column names of a 2-D DataFrame target (as strings), else None."""
    columns = getattr(y, "columns", None)
    return None if columns is None else [str(c) for c in columns]
