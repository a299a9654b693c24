"""Exceptions raised by the estimators of sklearn-costs."""

from __future__ import annotations


class TrainingDivergedError(FloatingPointError):
    """Training ran away, and ``fit`` stopped it: the estimator is left as it was before that ``fit``.

    Raised when a training or validation loss becomes NaN or infinite or grows by orders of magnitude above its
    best value, when a weight of the network becomes NaN, infinite or absurdly large, or when the trained network's
    predictions on its own training data are not finite. The message names the epoch and what ran away. The usual
    cause is a learning rate that is too large for the data (or a loss whose computation breaks on them): try a
    lower ``lr``, a smaller batch, or look for extreme values in ``X`` and ``y``.

    It is a ``FloatingPointError``, so ``except FloatingPointError`` catches it too.
    """


__all__ = ["TrainingDivergedError"]
