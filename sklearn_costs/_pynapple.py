"""pynapple's time-indexed arrays (Tsd, TsdFrame) in and out of the estimators and transformers.

Inputs are converted to pandas (whose columns scikit-learn's validation reads as feature names); an output
computed from a time-indexed ``X`` gets ``X``'s times and time support back. pynapple is optional: nothing here
imports it unless it was given one of its objects.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from sklearn.utils._set_output import _get_output_config


def is_pynapple(obj) -> bool:
    return type(obj).__module__.startswith("pynapple")


#: The key in a DataFrame's ``attrs`` under which :func:`to_pandas` leaves the epoch of each row of a TsdFrame whose
#: time support has several epochs: the lag transformers read it as trials, so that no lag crosses a gap.
EPOCH_LABELS = "sklearn_costs.epoch_labels"


def to_pandas(obj):
    """A Tsd as a Series, a TsdFrame as a DataFrame (indexed by time); anything else unchanged. A Tsd or TsdFrame
    over several epochs of its time support has each row's epoch (0, 1, ...) in ``attrs[EPOCH_LABELS]``."""
    if not is_pynapple(obj):
        return obj
    if hasattr(obj, "as_dataframe"):
        frame = obj.as_dataframe()
    elif hasattr(obj, "as_series"):
        frame = obj.as_series()
    else:
        return obj
    support = getattr(obj, "time_support", None)
    if support is not None and len(support) > 1:
        frame.attrs[EPOCH_LABELS] = np.searchsorted(np.asarray(support.start), obj.t, side="right") - 1
    return frame


def features_to_pandas(X):
    """``X`` as the estimators and transformers read it: a TsdFrame as a DataFrame (see :func:`to_pandas`), a Tsd
    as a one-column DataFrame indexed by time; anything else unchanged.

    A Tsd carries no column name (pynapple returns one for ``tdf[["speed"]]``), so its column is unnamed (``0``):
    scikit-learn reads it by position, as an array's column.
    """
    frame = to_pandas(X)
    if isinstance(frame, pd.Series) and is_pynapple(X):
        attrs = frame.attrs
        frame = frame.to_frame(0)
        frame.attrs = attrs
    return frame


def like(values, template, columns=None, *, as_frame=False):
    """``values`` (one row per time of ``template``) as a Tsd (1-D) or TsdFrame, with ``template``'s times and
    time support; with ``as_frame``, that TsdFrame as the DataFrame :func:`to_pandas` makes of it."""
    import pynapple as nap

    values = np.asarray(values)
    if len(values) != len(template):  # rows dropped (LagFeatures(fill="drop")): their times are not known here
        return values
    if values.ndim == 1 and not as_frame:
        return nap.Tsd(t=template.t, d=values, time_support=template.time_support)
    values = values.reshape(len(values), -1)
    columns = None if columns is None or len(columns) != values.shape[1] else list(columns)
    out = nap.TsdFrame(t=template.t, d=values, time_support=template.time_support, columns=columns)
    return to_pandas(out) if as_frame else out


def time_indexed(columns=None):
    """Decorate a method whose first argument is ``X`` (and maybe ``y`` second) so that it accepts pynapple
    objects (a Tsd as one column, see :func:`features_to_pandas`), and, with a ``columns(self)`` function, returns
    a time-indexed result for a time-indexed ``X`` (a tuple of results element-wise).

    The time-indexed result of ``transform`` is a TsdFrame, or, when the transformer's output is set to a
    container (``set_output(transform="pandas")``, or scikit-learn's global ``transform_output``), a DataFrame
    indexed by time, which scikit-learn hands on to that container.
    """

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, X, *args, **kwargs):
            template = X if is_pynapple(X) and hasattr(X, "t") else None
            args = tuple(to_pandas(a) for a in args)
            if "y" in kwargs:
                kwargs["y"] = to_pandas(kwargs["y"])
            out = method(self, features_to_pandas(X), *args, **kwargs)
            if template is None or columns is None:
                return out
            names = columns(self)
            # scikit-learn's set_output builds its container from what transform returns, which a TsdFrame is not
            as_frame = method.__name__ == "transform" and _get_output_config("transform", self)["dense"] != "default"
            if isinstance(out, tuple):
                return tuple(like(o, template, names, as_frame=as_frame) for o in out)
            return like(out, template, names, as_frame=as_frame)

        return wrapper

    return decorate


def target_names(y):
    """The column names of a 2-D DataFrame target (as strings), else None."""
    columns = getattr(y, "columns", None)
    return None if columns is None else [str(c) for c in columns]
