"""Checks of parameter values shared by the estimators, transformers, losses and metrics.

Constructor parameters are declared in each class's ``_parameter_constraints`` (scikit-learn's mechanism, checked by
``_validate_params()`` at the start of ``fit``); the constraints below are the few that scikit-learn's own
``Interval`` / ``StrOptions`` / ``callable`` / type constraints cannot say. ``check_positive_int`` checks the
arguments of plain functions (metrics).
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import Interval, Options, StrOptions

#: The integers 1, 2, ...: the range of every count-like parameter (epochs, widths, lags, members).
POSITIVE_INT = Interval(numbers.Integral, 1, None, closed="left")
#: Reals strictly above 0: learning rates, margins, std floors.
POSITIVE_REAL = Interval(numbers.Real, 0, None, closed="neither")
#: "auto": the estimator picks the value from the data.
AUTO = StrOptions({"auto"})


def check_positive_int(value, name):
    """Raise a ValueError naming ``name`` unless ``value`` is an integer of at least 1."""
    if not (isinstance(value, numbers.Integral) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Constraint(Options):
    """A constraint given by a predicate and the words that describe it in the error message.

    scikit-learn's ``make_constraint`` passes through only its own constraint classes (``Interval``, ``Options``,
    ...), so a constraint of our own subclasses ``Options`` (with no options): it then works in
    ``_parameter_constraints`` like any other, and ``generate_invalid_param_val`` leaves it alone.
    """

    def __init__(self, description: str, predicate):
        super().__init__(type=object, options=set())
        self.description = description
        self.predicate = predicate

    def is_satisfied_by(self, val):
        try:
            return bool(self.predicate(val))
        except Exception:  # a predicate that cannot even look at the value: the value is not one it accepts
            return False

    def __str__(self):
        return self.description


def _positive_int_sequence(value, lengths=None) -> bool:
    if not isinstance(value, (tuple, list)):
        return False
    if lengths is not None and len(value) not in lengths:
        return False
    return all(is_int(v) and v >= 1 for v in value)


#: ``hidden_layer_sizes``: one width or a tuple (list) of widths, each at least 1; ``()`` for no hidden layer.
LAYER_SIZES = Constraint(
    "a tuple of positive ints (one width per hidden layer, () for none) or a positive int",
    lambda v: (is_int(v) and v >= 1) or _positive_int_sequence(v),
)

#: ``image_shape``: ``(H, W)`` or ``(C, H, W)`` of positive ints.
IMAGE_SHAPE = Constraint("a tuple (H, W) or (C, H, W) of positive ints",
                         lambda v: _positive_int_sequence(v, lengths=(2, 3)))

#: ``input_size``: a working resolution ``(H, W)`` of positive ints.
IMAGE_SIZE = Constraint("a tuple (H, W) of positive ints", lambda v: _positive_int_sequence(v, lengths=(2,)))

_DEVICE = re.compile(r"(cpu|auto|cuda(:\d+)?)")


def _is_device(value) -> bool:
    if isinstance(value, torch.device):
        value = str(value)
    return isinstance(value, str) and _DEVICE.fullmatch(value) is not None


#: ``device``: the syntax only; whether that CUDA device exists is :func:`sklearn_costs.base.resolve_device`'s
#: question, answered at the start of ``fit`` with a message that says what to use instead.
DEVICE = Constraint("a device string: 'cpu', 'cuda', 'cuda:N' or 'auto' (or a torch.device)", _is_device)


def _is_optimizer_class(value) -> bool:
    return isinstance(value, type) and issubclass(value, torch.optim.Optimizer)


#: ``optimizer`` given as a class (names are a ``StrOptions`` beside it).
OPTIMIZER_CLASS = Constraint("a torch.optim.Optimizer subclass", _is_optimizer_class)


def _is_loss(value) -> bool:
    from .losses import Loss

    return isinstance(value, str) or isinstance(value, Loss) or (isinstance(value, type) and issubclass(value, Loss))


#: ``loss``: a registered name (which one is resolved by the registry, whose message lists the names and a close
#: match), a Loss subclass or a Loss instance.
LOSS = Constraint("a registered loss name (str), a sklearn_costs.losses.Loss subclass or a Loss instance", _is_loss)


class ParameterChecks:
    """Mixin of the estimators and losses: :meth:`check_parameters`, the public face of scikit-learn's own check
    of ``_parameter_constraints``, for the code that builds one from stored parameters (the registry,
    :func:`sklearn_costs.persistence.load`)."""

    def check_parameters(self):
        """Raise ``InvalidParameterError`` (a ``ValueError``) naming the first parameter outside its constraints
        (``_parameter_constraints``), as ``fit`` does before it reads any data; return ``self``.

        Examples
        --------
        >>> from sklearn_costs import PoissonSpikeRegressor
        >>> PoissonSpikeRegressor(max_epochs=0).check_parameters()
        Traceback (most recent call last):
        ...
        sklearn.utils._param_validation.InvalidParameterError: The 'max_epochs' parameter of ...
        """
        self._validate_params()
        return self


def validated_sample_weight(sample_weight, X):
    """``sample_weight`` checked as float64, or None when it weighs every row alike (the unweighted fit or score
    is then exactly the same): the one check of the weights of ``fit``, ``partial_fit`` and ``score`` of every
    estimator.

    Raises ``ValueError`` unless there is one finite, non-negative weight per row of ``X`` and at least one is
    positive (all zeros would leave nothing to fit or to score; an equal weight would silently mean "no weights").
    The rows held out for early stopping are checked where they are chosen
    (:class:`~sklearn_costs._training.ValidationSplit`).
    """
    if sample_weight is None:
        return None
    try:
        weight = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"sample_weight must hold numbers; got {sample_weight!r:.80}") from None
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if weight.shape != (n_rows,):
        raise ValueError(
            f"sample_weight must hold one weight per row: X has {n_rows} rows, sample_weight has shape "
            f"{weight.shape}. Pass a 1-D array of the rows' weights (or None for equal weights)."
        )
    for bad, what in ((~np.isfinite(weight), "finite"), (weight < 0, "non-negative")):
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"sample_weight must be {what}; found {float(weight[row])!r} at row {row}")
    if not weight.sum() > 0:
        raise ValueError(
            "sample_weight is zero for every row, so there is nothing to fit or score: give the rows that count a "
            "positive weight (or pass sample_weight=None to weigh all rows alike)."
        )
    return None if np.all(weight == weight[0]) else weight


def prediction_dtype(X) -> np.dtype:
    """The float dtype of the predictions for the inputs ``X`` (before validation): float32 when ``X`` is float32
    (an array, or a DataFrame or pynapple frame whose columns all are), as the network computes them, so that a
    large output is not copied to float64; float64 otherwise, as scikit-learn's regressors return."""
    dtypes = list(X.dtypes) if isinstance(X, pd.DataFrame) else [getattr(X, "dtype", None)]
    return np.dtype(np.float32) if dtypes and all(d == np.float32 for d in dtypes) else np.dtype(np.float64)
