"""Exceptions raised by the estimators of sklearn-costs."""

from __future__ import annotations

from skorch.exceptions import DeviceWarning as _SkorchDeviceWarning


class TrainingDivergedError(FloatingPointError):
    """Training ran away, and ``fit`` stopped it: the estimator is left as it was before that ``fit``.

    Raised when a training or validation loss becomes NaN or infinite or grows by orders of magnitude above its
    best value, when a weight of the network becomes NaN, infinite or absurdly large, or when the trained network's
    predictions on its own training data are not finite. The message names the epoch and what ran away. The usual
    cause is a learning rate that is too large for the data (or a loss whose computation breaks on them): try a
    lower ``lr``, a smaller batch, or look for extreme values in ``X`` and ``y``.

    It is a ``FloatingPointError``, so ``except FloatingPointError`` catches it too.
    """


class DeviceWarning(_SkorchDeviceWarning):
    """A model trained on a GPU was loaded (unpickled, or read by :func:`sklearn_costs.persistence.load`) on a
    machine without CUDA, onto the CPU: it predicts the same values there. To train it on there, set
    ``device="cpu"`` (or ``"auto"``). A subclass of skorch's ``DeviceWarning``, so filters of either catch it."""


__all__ = ["DeviceWarning", "TrainingDivergedError"]
