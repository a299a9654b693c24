"""Checks of parameter values shared by the estimators, transformers and metrics."""

from __future__ import annotations

import numbers


def check_positive_int(value, name):
    """Raise a ValueError naming ``name`` unless ``value`` is an integer of at least 1."""
    if not (isinstance(value, numbers.Integral) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
