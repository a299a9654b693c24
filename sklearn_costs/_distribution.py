"""The regressor that predicts a whole distribution per target: shared by the count and the continuous estimators."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ._validation import validated_sample_weight
from .base import NeuralCostEstimator, as_tensor, keeps_state_on_error, names_the_estimator
from .losses.base import DistributionLoss
from .modules import DistributionHead, DistributionNetwork, Standardize, mlp


def mean_log_density(log_density, sample_weight=None) -> float:
    """Mean log predictive density per sample (averaged over a sample's targets first), optionally weighted:
    the ``score`` of continuous predictive distributions."""
    per_sample = np.reshape(log_density, (len(log_density), -1)).mean(1)
    return float(np.average(per_sample, weights=sample_weight))


def _check_float32_range(y, what):
    """Raise ``ValueError`` when ``y`` holds values that float32, the precision of the network, cannot represent."""
    largest = float(np.max(np.abs(y), initial=0.0))
    if not largest <= float(np.finfo(np.float32).max):
        raise ValueError(
            f"{what} up to {largest:.2g} in absolute value, beyond the range of float32 (about 3.4e+38), the "
            "precision the network trains in. Rescale y (divide it by a power of ten, e.g. 1e30) and multiply the "
            "predictions back."
        )


class _PredictedMean:
    """The predicted mean from the network's raw output: what the divergence guard checks (a class, not a lambda,
    so that the fitted net pickles)."""

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, raw):
        return self.loss.mean(self.loss.link(raw))


class DistributionRegressor(RegressorMixin, NeuralCostEstimator):
    """A network whose outputs parametrise ``loss``'s distribution of each target given ``X``.

    Inputs are standardised inside the network (statistics of the training data), so the estimator works on raw
    features; with ``_target_scaling`` the targets are standardised too and every prediction is mapped back.
    """

    _target_scaling = False

    @keeps_state_on_error
    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X`` and the targets ``y`` by minimising the loss's negative log-likelihood.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each row in the likelihood: the objective is the weighted mean NLL, and the
            input (and target) standardisation uses weighted statistics, so an integer weight counts a row as that
            many copies of it. Batches and the validation split are drawn over rows as without weights; the
            validation loss is weighted too.

        Returns
        -------
        self

        Raises
        ------
        TrainingDivergedError
            Training ran away (a loss, the weights or the predictions; see the user guide, "When training goes
            wrong"); the message names the epoch and what ran away.
        ValueError
            Invalid input; targets beyond float32's range; or ``warm_start=True`` with another loss, architecture
            or data shape than the fitted network was built for.

        Notes
        -----
        On any error, and on ``KeyboardInterrupt`` (Ctrl-C, which propagates), the estimator is left exactly as it
        was before this call.
        """
        self._begin_fit()
        loss = self._resolve_loss()
        X, y = self._validate_X(X, reset=True, y=y, multi_output=True, y_numeric=True)
        weight = validated_sample_weight(sample_weight, X)
        y = np.asarray(y)
        if not self._continues_partial_fit():  # the first chunk's shape of y is that of the predictions
            self._y_is_1d = y.ndim == 1
        y = y.reshape(len(y), -1)
        loss.check_target(y)
        y = y.astype(np.float64, copy=False)
        _check_float32_range(y, "y holds values")
        if self._target_scaling:
            if not self._continues_partial_fit():  # a partial_fit keeps the first chunk's statistics
                # statistics in float64: a float32 std of large targets overflows
                self.y_loc_ = np.average(y, axis=0, weights=weight)
                scale = np.sqrt(np.average((y - self.y_loc_) ** 2, axis=0, weights=weight))
                self.y_scale_ = np.where(scale > 0, scale, 1.0)
            y = (y - self.y_loc_) / self.y_scale_
            _check_float32_range(y, "the standardised y holds values")
        self.n_outputs_ = y.shape[1]
        return self._fit_tensors(X, y.astype(np.float32), loss, weight)

    def _build_module(self, X, y, loss, hidden, weight=None):
        body = mlp(X.shape[1], hidden, self.activation, self.dropout)
        width = hidden[-1] if hidden else X.shape[1]
        head = DistributionHead(width, y.shape[1], loss.shared_mask, loss.init_raw(y))
        return DistributionNetwork(Standardize.of(X, weight), body, head)

    def _predictions_of(self, loss):
        return _PredictedMean(loss)

    def _after_training(self, net, X, y, loss, weight):
        if type(loss).fit_shared is DistributionLoss.fit_shared:
            return  # nothing fitted after training: spare a forward pass over the training data
        params = loss.link(net.forward(X, training=False, device=X.device))
        shared = loss.fit_shared(params, y) if weight is None else loss.fit_shared(params, y, weight=weight)
        if shared:
            head = net.module_.head
            with torch.no_grad():
                for name, raw in shared.items():
                    column = [p for p in loss.parameter_names if p in loss.shared_parameters].index(name)
                    head.shared[:, column] = raw.to(head.shared.device)

    # ------------------------------------------------------------------------------------- predictions

    def _validated_params(self, X):
        """Distribution parameters (torch, float32, original target units) for ``X``."""
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        with torch.no_grad():
            params = self.loss_.link(self._forward(X))
        if self._target_scaling:
            params = self.loss_.rescale(params, torch.as_tensor(self.y_loc_), torch.as_tensor(self.y_scale_))
        return params

    def _shape(self, a):
        """NumPy float64 (as scikit-learn regressors return), 1-D when ``y`` was."""
        a = a.detach().cpu().double().numpy() if torch.is_tensor(a) else np.asarray(a, dtype=np.float64)
        return a[:, 0] if self._y_is_1d else a

    @names_the_estimator
    def predict(self, X, return_std=False):
        """The predicted mean of each target, and with ``return_std=True`` also the predicted std, as sklearn's
        ``GaussianProcessRegressor.predict(X, return_std=True)`` and ``BayesianRidge`` return them.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_targets), as ``y``
        std : ndarray of the same shape, only with ``return_std=True``: the std of the fitted distribution (for
            counts, e.g. ``sqrt(rate)`` for the Poisson loss, ``sqrt(mu + mu**2 / r)`` for the negative binomial)
        """
        if return_std:
            return self._mean_and_std(X)
        params = self._validated_params(X)
        return self._shape(self.loss_.mean(params))

    def _mean_and_std(self, X):
        params = self._validated_params(X)
        if not self.loss_.has_std:
            raise ValueError(
                f"the {self.loss_.name!r} loss has no standard deviation (its distribution has no finite "
                "variance), so return_std=True has no answer; use predict_interval for its quantiles"
            )
        return self._shape(self.loss_.mean(params)), self._shape(self.loss_.std(params))

    @names_the_estimator
    def predict_distribution(self, X) -> dict:
        """Every distribution parameter (mean, std or dispersion, ...) of each target, as NumPy arrays."""
        params = self._validated_params(X)
        return {name: self._shape(value) for name, value in params.items()}

    @names_the_estimator
    def log_likelihood(self, X, y):
        """Log-probability (mass or density) of each observed target under the fitted distribution.

        Returns an array of the shape of ``y``; ``.sum()`` is the data's log-likelihood. Constants are included,
        so values from different losses can be compared.
        """
        params = self._validated_params(X)
        y = self._check_y(y, len(next(iter(params.values()))))
        with torch.no_grad():
            out = self.loss_.log_prob({k: v.double() for k, v in params.items()}, as_tensor(y, "cpu").double())
        return self._shape(out)

    def _check_y(self, y, n_rows):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        y = y.reshape(len(y), -1)
        if y.shape != (n_rows, self.n_outputs_):
            raise ValueError(f"y has shape {y.shape}; expected ({n_rows}, {self.n_outputs_}) to match X and the fit")
        self.loss_.check_target(y)
        return y

    @names_the_estimator
    def sample(self, X, n_samples=1, random_state=None):
        """Draw targets from the fitted distribution: shape ``(n_samples, *predict(X).shape)``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        n_samples : int, default=1
            Draws per row of ``X``.
        random_state : int, RandomState or None
            Seed of the draws.
        """
        params = self._validated_params(X)
        numpy_params = {k: v.detach().cpu().double().numpy() for k, v in params.items()}
        rng = np.random.default_rng(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        draws = np.stack([self.loss_.sample(numpy_params, rng) for _ in range(n_samples)])
        return draws[..., 0] if self._y_is_1d else draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
