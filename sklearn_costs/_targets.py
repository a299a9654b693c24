"""The one conversion of observed targets ``y`` that every estimator method and metric goes through.

A target can come as a list, a 1-D or 2-D array, a Series, a one-column or many-column DataFrame, or a pynapple
``Tsd``/``TsdFrame``. Each is turned into a 2-D float array ``(n_rows, n_targets)`` here, so that a one-column
DataFrame and the matching Series give the same numbers everywhere (an ``(n, 1)`` array subtracted from an
``(n,)`` one silently broadcasts to ``(n, n)``), and text is refused with a message that says how to fix it.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from ._pynapple import to_pandas


def _first_text(values: np.ndarray):
    """``(position, value)`` of the first str or bytes entry of ``values``, or None."""
    if values.dtype.kind in "US" and values.size:
        position, value = (0,) * values.ndim, values.reshape(-1)[0]
    elif values.dtype.kind == "O":
        position, value = next(((p, v) for p, v in np.ndenumerate(values) if isinstance(v, (str, bytes))), (None, None))
        if position is None:
            return None
    else:
        return None
    return position, value.item() if isinstance(value, np.generic) else value


def numeric_targets(y, what="y") -> np.ndarray:
    """``y`` as a NumPy array of numbers, its shape and (numeric) dtype kept: integer counts stay integers.

    Raises ``ValueError`` when ``y`` holds text (a column read from a file as strings), naming the first such
    entry, rather than the ``UFuncTypeError`` that NumPy raises later in arithmetic on it.
    """
    values = np.asarray(to_pandas(y))
    text = _first_text(values)
    if text is not None:
        position, value = text
        where = f"row {position[0]}" + (f", column {position[1]}" if len(position) > 1 else "") if position else ""
        raise ValueError(
            f"{what} must be numeric; found {type(value).__name__} values ({value!r} at {where or 'the start'}). "
            f"Convert {what} to numbers first, e.g. pd.to_numeric(y) or np.asarray(y, dtype=float)."
        )
    if values.dtype.kind == "O":
        values = values.astype(np.float64)
    return values


def target_matrix(y, n_rows=None, n_targets=None, what="y") -> np.ndarray:
    """``y`` as a finite float64 array ``(n_rows, n_targets)``: a 1-D ``y``, a Series and a one-column DataFrame
    all become one column. ``n_rows`` and ``n_targets``, when given, are the shape it must have (those of the
    predictions it is compared with); a ``ValueError`` says what was found and what was expected."""
    values = check_array(numeric_targets(y, what), ensure_2d=False, dtype=np.float64, input_name=what)
    if values.ndim not in (1, 2):
        raise ValueError(f"{what} must be 1-D or 2-D (n_rows, n_targets); got {values.ndim} dimensions")
    values = values.reshape(len(values), -1)
    expected = (len(values) if n_rows is None else n_rows, values.shape[1] if n_targets is None else n_targets)
    if values.shape != expected:
        raise ValueError(f"{what} has shape {values.shape}; expected {expected} to match X and the fit (rows of X, "
                         "targets of the fit)")
    return values


def targets_like(y, shape, what="y") -> np.ndarray:
    """``y`` as float64 of ``shape``, the shape of the predictions it is compared with (``(n,)`` or
    ``(n, n_targets)``): the same numbers whether ``y`` came as a Series or a one-column DataFrame."""
    shape = tuple(int(s) for s in shape)
    n_targets = shape[1] if len(shape) == 2 else 1
    return target_matrix(y, shape[0], n_targets, what).reshape(shape)
