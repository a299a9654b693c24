"""The divergence guard: the skorch callback that stops a fit that runs away (a NaN or soaring loss, runaway
weights or predictions) with :class:`~sklearn_costs.exceptions.TrainingDivergedError`, and the evenly spaced
samples of the training data that its checks look at."""

from __future__ import annotations

import math

import numpy as np
import torch
from skorch.callbacks import Callback

from .exceptions import TrainingDivergedError

#: A loss has run away when it lies more than this many "loss scales" above its best value in the fit.
RUNAWAY_FACTOR = 1e4
#: Predictions on the training data that lie farther than this many target ranges outside the range of the
#: training targets have run away.
RUNAWAY_FACTOR_PREDICTIONS = 1e3
#: A weight larger than this (in absolute value) is taken for divergence: the estimators standardise their inputs,
#: and Adam moves a weight by about ``lr`` per step, so a trained network never comes near it.
MAX_ABS_WEIGHT = 1e6
#: The checks that pass over the training data (the loss before training, the predictions after it) look at
#: ``GUARD_FRACTION`` of its rows, evenly spaced, but at least ``GUARD_MIN_ROWS`` (all of them if there are fewer)
#: and at most ``GUARD_ROWS``: two whole extra passes cost as much as a few epochs of a short fit (a CNN embedder's
#: on 6,000 images took a fifth of a three-epoch fit), and a runaway shows in any large sample.
GUARD_ROWS = 8192
GUARD_MIN_ROWS = 1024
GUARD_FRACTION = 0.1
#: ... in batches of at most this many rows: the loss before training of a triplet loss mines all pairs of a batch
#: (O(B^2)), and one evaluation batch of 8192 images cost a third of a five-epoch fit.
GUARD_BATCH = 1024


def evenly_spaced_rows(n, most, device="cpu"):
    """Indices of ``most`` of ``n`` rows, evenly spaced from the first to the last, or None when ``n <= most``
    (take them all): a sample of a large data set that sees every part of it, as a recording's drift."""
    if n <= most:
        return None
    return torch.linspace(0, n - 1, most, device=device).round().long()


def guard_rows(n):
    """How many of ``n`` training rows the divergence guard's passes look at (see ``GUARD_FRACTION``)."""
    return min(GUARD_ROWS, max(GUARD_MIN_ROWS, math.ceil(GUARD_FRACTION * n)))


def _column_range(y):
    """Each column's minimum and maximum of ``y`` as float32 tensors (on the CPU through NumPy, whose reductions
    along the rows of a tall matrix are 3x faster than torch's: 11 ms against 3.5 ms on 60,000 x 50)."""
    if y.device.type == "cpu":
        values = y.numpy()
        return (torch.from_numpy(np.asarray(values.min(0))).to(torch.float32),
                torch.from_numpy(np.asarray(values.max(0))).to(torch.float32))
    return y.amin(0).to(torch.float32), y.amax(0).to(torch.float32)


def _guard_sample(dataset):
    """``guard_rows(len(dataset))`` rows of ``dataset``, evenly spaced (all of them when there are no more)."""
    rows = evenly_spaced_rows(len(dataset), guard_rows(len(dataset)), dataset.X.device)
    return dataset if rows is None else dataset.subset(rows)


class DivergenceGuard(Callback):
    """Stop a fit that runs away, by what it does and not only by NaN, raising :class:`TrainingDivergedError`.

    The losses here are clamped so that they stay finite even for absurd predictions, so a NaN check alone lets a
    diverged fit (a Gaussian mean of -1e13, 1e26 spikes per bin) look successful. The guard checks:

    * every epoch, the training and the validation loss (the mean of the epoch's batch losses, so one NaN or
      infinite batch shows): NaN or infinite, or *run away*, that is above
      ``best + RUNAWAY_FACTOR * scale``. ``best`` is the lowest value of that loss in this fit, or the loss of the
      network before training (on the training data, ``guard_rows`` of its rows), whichever is lower;
      ``scale`` is ``max(1, |initial loss|, |best|)``, so that it follows the size of the loss (which may be
      negative, as a Gaussian NLL) and a loss near zero is not held to a tiny scale. The losses are per sample
      (NLLs in nats, triplet hinges), so a rise of 1e4 scales of the training loss is neither noise nor
      over-fitting: the network has left the data. The validation loss is held to the same bound only while the
      training loss of that epoch is not below the loss before training, and always at the first epoch: a
      validation loss that soars after an epoch within bounds while the network fits its training rows better
      than at the start is over-fitting (the Gaussian NLL of a few held-out
      rows reaches 1e4 nats once an over-fitted network's std shrinks), which early stopping answers by
      restoring the best epoch, not an error;
    * every epoch, the weights: a NaN, infinite, or larger than ``MAX_ABS_WEIGHT`` weight;
    * at the end, on the weights that are kept (the best epoch's, with early stopping): the network's outputs on
      the training data (``guard_rows`` of its rows) must be finite, and so must its point predictions
      ``predict(output)`` (the predicted means, for a distribution regressor), which must also lie within
      ``RUNAWAY_FACTOR_PREDICTIONS`` times the range of those rows' targets (at least 1, in the units the network
      trains in) of that range. This
      catches a runaway that a loss growing only logarithmically leaves within bounds: the Gaussian NLL of a mean
      and a std that grow together.

    Each check names the epoch and what ran away. The guard compares only the epochs of the current ``fit`` (a
    warm start on new data starts from its own reference), and sits after early stopping in the callbacks so that
    its last check sees the restored best weights.
    """

    def __init__(self, lr, predict=None):
        self.lr = lr
        self.predict = predict

    def _fail(self, what):
        raise TrainingDivergedError(
            f"{what}; the fit was stopped and the estimator was left as it was before. Try a lower learning rate "
            f"(lr={self.lr} now), a smaller batch, or check the inputs for extreme values."
        )

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.checked_ = len(net.history)  # epochs of earlier fits (warm start) are not compared
        self.initial_loss_ = self._initial_loss(net, X)
        self.best_ = {}

    def _initial_loss(self, net, dataset):
        """The loss of the network before this fit's first step on ``dataset`` (None if not finite)."""
        if dataset is None:
            return None
        total, count = 0.0, 0
        with torch.no_grad():
            sample = _guard_sample(net.get_dataset(dataset))
            size = GUARD_BATCH if net.batch_size == -1 else min(net.batch_size, GUARD_BATCH)  # -1: one batch
            for Xb, yb in net.iterator_valid(sample, batch_size=size):
                y_pred = net.evaluation_step((Xb, yb), training=False)
                total += float(net.get_loss(y_pred, yb, X=Xb, training=False)) * len(Xb)
                count += len(Xb)
        loss = total / max(count, 1)
        return loss if math.isfinite(loss) else None

    def on_epoch_end(self, net, **kwargs):
        self._check_losses(net)
        # the module's weights and the criterion's (a proxy loss's proxies)
        largest = max((float(p.detach().abs().max()) for _, p in net.get_all_learnable_params() if p.numel()),
                      default=0.0)
        if not largest <= MAX_ABS_WEIGHT:
            self._fail(f"the weights ran away at epoch {net.history[-1, 'epoch']}: the largest is {largest:.3g} "
                       f"in absolute value (more than {MAX_ABS_WEIGHT:.0e})")

    def _check_losses(self, net):
        initial = self.initial_loss_
        for row in net.history[self.checked_ :]:
            train = row.get("train_loss")
            fits_training_rows = initial is not None and train is not None and train < initial
            for key, what in (("train_loss", "training loss"), ("valid_loss", "validation loss")):
                value = row.get(key)
                if value is None:
                    continue
                if not math.isfinite(value):
                    self._fail(f"the {what} became {value} at epoch {row['epoch']}")
                earlier = self.best_.get(key)
                best = min(v for v in (initial, earlier, value) if v is not None)
                self.best_[key] = best
                if key == "valid_loss" and fits_training_rows and earlier is not None:
                    continue  # over-fitting after an epoch within bounds, which early stopping keeps
                scale = max(1.0, abs(best), abs(initial) if initial is not None else 0.0)
                if value > best + RUNAWAY_FACTOR * scale:
                    start = "" if initial is None else f"; it was {initial:.3g} before training"
                    self._fail(f"the {what} ran away at epoch {row['epoch']}: {value:.3g}, against {best:.3g} at "
                               f"best{start}")
        self.checked_ = len(net.history)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self._check_losses(net)  # the last epoch, when early stopping ended the fit before this guard saw it
        if X is None:
            return
        sample = _guard_sample(net.get_dataset(X))
        finite, farthest = True, 0.0
        if self.predict is not None:
            # the range of the rows whose predictions are checked: a pass over all the targets was a tenth of the
            # fixed cost of a fit, and a runaway of 1e3 ranges shows against any large sample's
            low, high = _column_range(sample.y)
            span = (high - low).clamp_min(1.0)
        with torch.no_grad():
            for batch in net.get_iterator(sample, training=False):
                out = net.evaluation_step(batch, training=False)
                finite = finite and bool(torch.isfinite(out).all())
                if self.predict is not None and finite:
                    prediction = self.predict(out)
                    finite = bool(torch.isfinite(prediction).all())
                    outside = torch.maximum(low - prediction, prediction - high) / span
                    farthest = max(farthest, float(outside.max()))
        epochs = f"after {len(net.history)} epochs"
        if not finite:
            self._fail(f"the trained network's predictions on its training data are not finite ({epochs})")
        if farthest > RUNAWAY_FACTOR_PREDICTIONS:
            self._fail(f"the trained network's predictions on its training data ran away ({epochs}): some lie "
                       f"{farthest:.3g} times the range of those rows' targets outside that range")


#: The name under which models pickled by earlier versions hold the guard.
StopOnNonFiniteLoss = DivergenceGuard
