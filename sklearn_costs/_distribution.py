"""The regressor that predicts a whole distribution per target: shared by the count and the continuous estimators."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ._divergence import evenly_spaced_rows
from ._members import by_member, members_first, members_objective
from ._pynapple import target_names, time_indexed, to_pandas
from ._targets import numeric_targets, target_matrix
from ._training import MemberSliceLoader
from ._validation import AUTO, LAYER_SIZES, POSITIVE_INT, prediction_dtype, validated_sample_weight
from .base import (
    NeuralCostEstimator,
    _LossCriterion,
    keeps_state_on_error,
    layer_sizes,
    names_the_estimator,
)
from .distributions import PredictiveDistribution
from .losses.base import DistributionLoss
from .modules import DistributionHead, DistributionNetwork, MemberMLP, Standardize, mlp

#: ``n_members="auto"``: as many members (at most ``MAX_MEMBERS``) as keep an epoch of all of them within
#: ``MEMBER_WORK`` multiply-adds (rows x weights of a member): on the tables of the UCI sets that is five, while a
#: recording of many neurons gets fewer, so that the fit stays quick. The budget grows in proportion to the inputs
#: beyond ``WIDE_INPUTS`` (64): with hundreds of inputs (spike history and coupling) one network over-fits within a
#: few epochs and members pay (M1 with the history of 171 neurons, 688 inputs: mean D2 0.086 -> 0.099 with five;
#: checked on a simulated recording of 100 neurons, 412 inputs: 0.192 -> 0.204), while the baselines' cost grows
#: with the inputs too. Below 64 inputs, where members were measured to pay little on M1 (0.059 -> 0.060 for 2.5x
#: the time), the budget is unchanged.
MEMBER_WORK = 1e9
WIDE_INPUTS = 64
MAX_MEMBERS = 5
#: ``hidden_layer_sizes="auto"``: two hidden layers, ``MIN_WIDTH`` to ``MAX_WIDTH`` wide.
MIN_WIDTH = 64
MAX_WIDTH = 128
#: The regressors' docstrings on their ``"auto"`` defaults (arguments of ``fill_common_parameters``).
REGRESSOR_DOC = {"hidden_type": 'tuple of int or "auto"'}
REGRESSOR_DOC["members_doc"] = """n_members : int >= 1 or "auto", default="auto"
        Networks trained side by side from different random starts, as one batched network (one forward pass for
        all: on small data they cost about as much as one network), predicting the equal mixture of their
        distributions, as :class:`~sklearn_costs.DeepEnsembleRegressor` does with separate estimators. Their
        disagreement widens the predictive distribution where one network would be over-confident. ``"auto"``:
        5, fewer when an epoch of them all would cost more than 1e9 multiply-adds (rows x weights; e.g. 2 for 171
        neurons in 12,000 bins), 1 without hidden layers; reported as ``n_members_``.
    clip_inputs : bool or "auto", default="auto"
        Hold each feature within its range in the training data before the network sees it, so that beyond that
        range a prediction is the one at its edge (as tree ensembles extrapolate). A network with hidden layers
        extrapolates along directions the data never constrained: a point far outside the training range can get
        a mean far off with a small std, and one such point dominates a mean NLL (UCI protein, 200 training rows:
        test NLL 486 unclipped, 3.08 clipped; on inputs within the range nothing changes). ``"auto"``: True with
        hidden layers, False without (a GLM's linear predictor is its model, and ``coef_`` describes it
        everywhere); reported as ``clip_inputs_``. For the same reason the Gaussian regressor's linear component
        (``linear_weight``) is never clipped: its mean extrapolates linearly and its std grows with the distance
        from the data.
    """
REGRESSOR_DOC["hidden_doc"] = """
        ``"auto"``: two layers of 64 units, wider for many targets (the power of two at or above the number of
        targets, at most 128), reported as ``hidden_layer_sizes_``; see
        ``sklearn_costs._distribution.resolve_regressor_settings``."""


def resolve_regressor_settings(n_rows, n_features, n_targets, params):
    """The settings of :class:`~sklearn_costs.GaussianUncertaintyRegressor` and
    :class:`~sklearn_costs.PoissonSpikeRegressor` for data of ``n_rows`` rows, ``n_features`` features and
    ``n_targets`` targets: ``params`` (the estimator's ``hidden_layer_sizes``, ``n_members`` and
    ``clip_inputs``) with each ``"auto"`` replaced by its rule's value. The rules were chosen on some of the UCI
    sets and M1 and checked on the others (docs/benchmarks.rst):

    - ``hidden_layer_sizes``: two layers of ``MIN_WIDTH`` (64) units, wider for many targets, which all share the
      hidden layers: the power of two at or above the number of targets, at most ``MAX_WIDTH`` (128).
    - ``n_members``: networks trained side by side as one batched network, each seeing the rows in its own order,
      and predicting the equal mixture of their distributions (a deep ensemble, Lakshminarayanan et al. 2017):
      ``MAX_MEMBERS`` (5), or fewer when an epoch of all of them would exceed ``MEMBER_WORK`` (1e9) multiply-adds
      (rows times a member's weights), for speed, a budget multiplied by ``n_features / WIDE_INPUTS`` beyond 64
      features (many inputs, e.g. spike history: there a single network over-fits and members pay most); 1 for a
      network without hidden layers (a GLM, whose fit does not depend on its start).
    - ``clip_inputs``: True with hidden layers (inputs held within their training range: a network's
      extrapolation beyond the data is unconstrained), False for a GLM.
    """
    resolved = {}
    hidden = params["hidden_layer_sizes"]
    if hidden == "auto":
        width = int(np.clip(2 ** int(np.ceil(np.log2(max(n_targets, 1)))), MIN_WIDTH, MAX_WIDTH))
        hidden = (width, width)
    else:
        hidden = layer_sizes(hidden)
    resolved["hidden_layer_sizes"] = hidden
    members = params["n_members"]
    if members == "auto":
        widths = (n_features, *hidden, n_targets)
        weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        budget = MEMBER_WORK * max(1.0, n_features / WIDE_INPUTS)
        members = int(np.clip(budget // max(n_rows * weights, 1), 1, MAX_MEMBERS)) if hidden else 1
    resolved["n_members"] = int(members)
    clip = params["clip_inputs"]
    resolved["clip_inputs"] = bool(hidden) if clip == "auto" else bool(clip)
    return resolved


def mean_log_density(log_density, sample_weight=None) -> float:
    """Mean log predictive density per sample (averaged over a sample's targets first), optionally weighted:
    the ``score`` of continuous predictive distributions."""
    per_sample = np.reshape(log_density, (len(log_density), -1)).mean(1)
    return float(np.average(per_sample, weights=validated_sample_weight(sample_weight, per_sample)))


def _check_float32_range(y, what):
    """Raise ``ValueError`` when ``y`` holds values that float32, the precision of the network, cannot represent."""
    if y.dtype.kind in "biu":  # integers (counts) are far within float32's range: no pass over them
        return
    # the extremes without an |y| temporary (a count matrix of a million bins makes that a large copy)
    largest = max(float(np.max(y, initial=0.0)), -float(np.min(y, initial=0.0)))
    if not largest <= float(np.finfo(np.float32).max):
        raise ValueError(
            f"{what} up to {largest:.2g} in absolute value, beyond the range of float32 (about 3.4e+38), the "
            "precision the network trains in. Rescale y (divide it by a power of ten, e.g. 1e30) and multiply the "
            "predictions back."
        )


#: Integer dtypes that counts keep on the host (and on the device) during training: each batch becomes float32 as
#: it is cut (``TensorDataset.targets``), so a count matrix costs its own size, not 4-8 bytes an entry.
COMPACT_COUNT_DTYPES = (np.uint8, np.int8, np.int16, np.int32)
#: The starting point of the output layer (``loss.init_raw``: the targets' marginal) is computed on at most this many
#: rows, evenly spaced, as float32: a float copy of a whole large count matrix would be its largest allocation.
INIT_ROWS = 65_536
#: ... and on at most this many entries (16 MB as float32): 16,384 rows of 256 neurons, not the 67 MB of 65,536.
INIT_ENTRIES = 2**22


def _training_targets(y):
    """The targets the network trains on: counts in a compact integer dtype as they are (no copy), everything else
    as float32."""
    if y.dtype in COMPACT_COUNT_DTYPES:
        return y
    return y.astype(np.float32, copy=False)


def _init_sample(y, weight=None):
    """The rows of ``y`` (a tensor) that weigh something (``weight`` > 0; all without weights), or at most
    ``INIT_ROWS`` of them (and ``INIT_ENTRIES`` entries) evenly spaced, as float32: what ``loss.init_raw`` sees. A
    row of weight 0 counts for nothing, not even in the network's starting point."""
    if weight is not None:
        y = y[weight > 0]
    targets = y.shape[1] if y.ndim > 1 else 1
    rows = evenly_spaced_rows(len(y), min(INIT_ROWS, max(INIT_ENTRIES // targets, 1)), y.device)
    return (y if rows is None else y[rows]).to(torch.float32)


class _PredictedMean:
    """The predicted mean from the network's raw output (of ``members`` members side by side: their mixture's
    mean): what the divergence guard checks (a class, not a lambda, so that the fitted net pickles)."""

    def __init__(self, loss, members=1):
        self.loss = loss
        self.members = members

    def __call__(self, raw):
        mean = self.loss.mean(self.loss.link(raw))
        return by_member(mean, self.members).mean(1)


class _MembersCriterion(_LossCriterion):
    """The loss of ``members`` networks side by side (their outputs one after the other along the targets), with
    the members folded into the batch so that the loss is called once, scaled as every member objective is
    (:func:`~sklearn_costs._members.members_objective`).

    In training the targets are ``(rows, members, targets)``, each member's own rows
    (:class:`~sklearn_costs._training.MemberSliceLoader`); in evaluation ``(rows, targets)``, the same rows for
    every member. Sample weights come along in the same layout.
    """

    def __init__(self, loss, members):
        super().__init__(loss)
        self.members = members

    def forward(self, y_pred, y_true):
        y, weight = y_true if isinstance(y_true, (tuple, list)) else (y_true, None)
        rows, members = len(y_pred), self.members
        raw = members_first(y_pred, members).reshape(rows * members, -1, y_pred.shape[-1])  # member-major
        if y.ndim == 3:
            y = y.transpose(0, 1).reshape(rows * members, -1)
            weight = None if weight is None else weight.transpose(0, 1).reshape(-1)
        else:
            y = y.repeat(members, 1)
            weight = None if weight is None else weight.repeat(members)
        mean = self.loss(raw, y) if weight is None else self.loss(raw, y, weight)
        return members_objective(mean, members)


class DistributionRegressor(RegressorMixin, NeuralCostEstimator):
    """A network whose outputs parametrise ``loss``'s distribution of each target given ``X``.

    Inputs are standardised inside the network (statistics of the training data), so the estimator works on raw
    features; with ``_target_scaling`` the targets are standardised too and every prediction is mapped back.
    """

    _target_scaling = False
    _network_parameters = ("n_members", "clip_inputs")
    _batch_target_dtype = torch.float32
    _parameter_constraints: dict = {
        **NeuralCostEstimator._parameter_constraints,
        "hidden_layer_sizes": [LAYER_SIZES, AUTO],
        "n_members": [POSITIVE_INT, AUTO],
        "clip_inputs": ["boolean", AUTO],
    }

    def _resolve_settings(self, X, y):
        return resolve_regressor_settings(len(X), X.shape[1], y.shape[1],
                                          {"hidden_layer_sizes": self.hidden_layer_sizes,
                                           "n_members": self.n_members, "clip_inputs": self.clip_inputs})

    def _members(self) -> int:
        return self._setting("n_members")

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
        y = to_pandas(y)
        names = target_names(y)
        if y is not None:  # None: scikit-learn's own message that y is required
            y = numeric_targets(y)
        X, y = self._validate_X(X, reset=True, y=y, multi_output=True, y_numeric=True)
        if not self._continues_partial_fit():
            self._target_names = names
        weight = validated_sample_weight(sample_weight, X)
        y = np.asarray(y)
        if not self._continues_partial_fit():  # the first chunk's shape of y is that of the predictions
            self._y_is_1d = y.ndim == 1
        y = y.reshape(len(y), -1)
        loss.check_target(y)
        _check_float32_range(y, "y holds values")
        if self._target_scaling:
            y = y.astype(np.float64, copy=False)
            if not self._continues_partial_fit():  # a partial_fit keeps the first chunk's statistics
                # statistics in float64: a float32 std of large targets overflows
                self.y_loc_ = np.average(y, axis=0, weights=weight)
                scale = np.sqrt(np.average((y - self.y_loc_) ** 2, axis=0, weights=weight))
                self.y_scale_ = np.where(scale > 0, scale, 1.0)
            y = (y - self.y_loc_) / self.y_scale_
            _check_float32_range(y, "the standardised y holds values")
        self.n_outputs_ = y.shape[1]
        self._apply_settings(X, y)
        return self._fit_tensors(X, _training_targets(y), loss, weight)

    def _build_module(self, X, y, loss, hidden, weight=None):
        members = self._members()
        width = hidden[-1] if hidden else X.shape[1]
        if members == 1:
            body = mlp(X.shape[1], hidden, self.activation, self.dropout)
        else:
            body = MemberMLP(members, X.shape[1], hidden, activation=self.activation, dropout=self.dropout)
        head = DistributionHead(width, y.shape[1], loss.shared_mask, loss.init_raw(_init_sample(y, weight)),
                                members=members)
        return DistributionNetwork(Standardize.of(X, weight, clip=self._setting("clip_inputs")), body, head)

    def _criterion(self, loss):
        members = self._members()
        return _LossCriterion(loss) if members == 1 else _MembersCriterion(loss, members)

    def _predictions_of(self, loss):
        return _PredictedMean(loss, self._members())

    def _iterator_train(self):
        members = self._members()
        if members == 1:
            return {}
        return {"iterator_train": MemberSliceLoader, "iterator_train__members": members}

    def _after_training(self, net, X, y, loss, weight):
        if type(loss).fit_shared is DistributionLoss.fit_shared:
            return  # nothing fitted after training: spare a forward pass over the training data
        params = loss.link(net.forward(X, training=False, device=X.device))
        y = y.to(torch.float32).repeat(1, self._members())  # each member's parameters fit the same targets
        shared = loss.fit_shared(params, y) if weight is None else loss.fit_shared(params, y, weight=weight)
        if shared:
            head = net.module_.head
            with torch.no_grad():
                for name, raw in shared.items():
                    column = [p for p in loss.parameter_names if p in loss.shared_parameters].index(name)
                    head.shared[:, column] = raw.to(head.shared.device)

    # ------------------------------------------------------------------------------------- predictions

    def _member_params(self, X):
        """Distribution parameters of each member (torch, original target units) for validated ``X``: a dict of
        ``(n_members, n_rows, n_targets)`` tensors."""
        members = self._members()
        with torch.no_grad():
            params = self.loss_.link(self._forward(X))
        if self._target_scaling:
            loc, scale = (torch.as_tensor(np.tile(v, members)) for v in (self.y_loc_, self.y_scale_))
            params = self.loss_.rescale(params, loc, scale)
        return {k: members_first(v, members) for k, v in params.items()}

    def _linear_part(self, X):
        """The linear component mixed into the prediction, for validated ``X``: ``(weight, mean, std)``, the means
        and stds float64 arrays ``(n_rows, n_targets)`` in the units of ``y``; None without one (the default)."""
        return None

    def _shape(self, a):
        """NumPy float64 (as scikit-learn regressors return), 1-D when ``y`` was."""
        a = a.detach().cpu().double().numpy() if torch.is_tensor(a) else np.asarray(a, dtype=np.float64)
        return a[..., 0] if self._y_is_1d else a

    @names_the_estimator
    def predict_distribution(self, X) -> PredictiveDistribution:
        """The predictive distribution of the targets of each row of ``X``: every prediction of the estimator
        (mean, std, CDF, quantiles and intervals, log-likelihood, draws, CRPS) is computed by it.

        Its components are the member networks' distributions of the loss (``n_members_``, equally weighted)
        and, for the Gaussian regressor with ``linear_weight_ > 0``, the linear component, of that weight. The
        members' parameters are in ``.params`` (``dist["rate"]``: arrays of the shape of ``predict(X)``, with a
        first axis of members when ``n_members_ > 1``).

        Returns
        -------
        PredictiveDistribution
            See :class:`sklearn_costs.distributions.PredictiveDistribution`.
        """
        check_is_fitted(self, "net_")
        dtype = prediction_dtype(X)
        X = self._validate_X(X, reset=False)
        dist = PredictiveDistribution.from_loss(self.loss_, self._member_params(X), one_dimensional=self._y_is_1d,
                                                dtype=dtype)
        linear = self._linear_part(X)
        return dist if linear is None else dist.with_gaussian(linear[1], linear[2], linear[0])

    @names_the_estimator
    @time_indexed(columns=lambda self: getattr(self, "_target_names", None))
    def predict(self, X, return_std=False):
        """The predicted mean of each target, and with ``return_std=True`` also the predicted std, as sklearn's
        ``GaussianProcessRegressor.predict(X, return_std=True)`` and ``BayesianRidge`` return them: the mean and
        std of :meth:`predict_distribution`.

        With ``n_members_ > 1`` they are the mean and std of the members' equal mixture: the std adds the
        members' disagreement to their noise. A linear component (the Gaussian regressor's ``linear_weight_ >
        0``) takes its weight in that mixture.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_targets), as ``y``
        std : ndarray of the same shape, only with ``return_std=True``: the std of the fitted distribution (for
            counts, e.g. ``sqrt(rate)`` for the Poisson loss, ``sqrt(mu + mu**2 / r)`` for the negative binomial)

        Both are float64, as scikit-learn's regressors return, unless ``X`` is float32 (an array, or a DataFrame
        of float32 columns) and the network's parameters are float32 too: then float32, so that a large output (a
        count matrix of many neurons) is not copied to float64. The count regressors' are; the Gaussian
        regressor's stay float64, mapped back from standardised targets in float64.

        Given a pynapple ``TsdFrame`` ``X`` each is time-indexed: a ``Tsd`` (1-D ``y``) or a ``TsdFrame`` with
        ``X``'s times and time support, its columns named as those of the ``y`` of ``fit`` (a DataFrame or
        ``TsdFrame``).
        """
        dist = self.predict_distribution(X)
        return (dist.mean, dist.std) if return_std else dist.mean

    @names_the_estimator
    def log_likelihood(self, X, y):
        """Log-probability (mass or density) of each observed target under the fitted distribution (with
        ``n_members_ > 1``, the members' equal mixture; with a linear component, their mixture with it).

        Returns an array of the shape of ``predict(X)``; ``.sum()`` is the data's log-likelihood. Constants are
        included, so values from different losses can be compared.
        """
        dist = self.predict_distribution(X)
        return dist.log_pdf(self._check_y(y, dist.shape[0]))

    def _check_y(self, y, n_rows):
        """``y`` as float64 ``(n_rows, n_outputs_)`` (see :func:`sklearn_costs._targets.target_matrix`), checked
        by the loss (counts: non-negative integers)."""
        y = target_matrix(y, n_rows, self.n_outputs_)
        self.loss_.check_target(y)
        return y

    @names_the_estimator
    def sample(self, X, n_samples=1, random_state=None):
        """Draw targets from the fitted distribution (with ``n_members_ > 1`` or a linear component, their
        mixture: each draw of a row from a component picked at random with its weight): shape
        ``(n_samples, *predict(X).shape)``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        n_samples : int, default=1
            Draws per row of ``X``.
        random_state : int, RandomState or None
            Seed of the draws.
        """
        return self.predict_distribution(X).sample(n_samples, random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
