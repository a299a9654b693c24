"""GaussianUncertaintyRegressor: a mean and a standard deviation for every prediction."""

from __future__ import annotations

import numbers

import torch
from scipy import stats
from sklearn.utils._param_validation import Interval

from ._distribution import REGRESSOR_DOC, DistributionRegressor, mean_log_density
from ._divergence import evenly_spaced_rows
from ._linear_component import LINEAR_ROWS, bayesian_linear_predict, fit_bayesian_linear, stacking_weight
from ._members import members_first
from ._mixture import mixture_log_prob
from ._training import TensorDataset
from ._validation import AUTO, validated_sample_weight
from .base import fill_common_parameters, shared_arguments
from .losses import GaussianLoss


def _at_most_linear_rows(rows: TensorDataset) -> TensorDataset:
    """``rows``, or ``LINEAR_ROWS`` of them evenly spaced."""
    index = evenly_spaced_rows(len(rows), LINEAR_ROWS)
    return rows if index is None else rows.subset(index)


def _fit_linear(rows: TensorDataset, min_std: float) -> dict | None:
    """The linear component fitted on ``rows`` (at most ``LINEAR_ROWS`` of them), or None when none of them has a
    positive weight (all the weighted rows held out, or left between the evenly spaced ones)."""
    rows = _at_most_linear_rows(rows)
    if rows.weighs_nothing():
        return None
    return fit_bayesian_linear(rows.X, rows.y, rows.w, min_std)


@fill_common_parameters(**REGRESSOR_DOC, split="drawn at random with ``random_state``")
class GaussianUncertaintyRegressor(DistributionRegressor):
    """A network that predicts the mean ``mu(x)`` *and* the standard deviation ``sigma(x)`` of the target.

    Some inputs are easy and some hard, and what is done with a prediction depends on how sure it is. The network
    has two outputs per target and is trained by the Gaussian negative log-likelihood

    ``sum_i log sigma_i + (y_i - mu_i)**2 / (2 sigma_i**2) + log sqrt(2 pi)``,

    which is minimal when ``sigma_i`` matches the actual error on such inputs: the std it learns is a calibrated
    uncertainty, not just a positive number. Alternatives for other noise: ``"laplace"``, ``"student_t"`` (heavy
    tails, learned degrees of freedom), ``"beta_nll"`` (keeps learning the mean where the noise is large), and the
    homoscedastic reference ``"mse"`` (least-squares mean, one constant std fitted on the training residuals).

    **Why a link and a floor.** A raw network output is any real number, and the question "what does a negative
    standard deviation mean?" has no answer: a normal density needs ``sigma > 0``. The raw output therefore goes
    through ``softplus`` (default; grows linearly, so a large output does not overflow) or ``exp``, and
    ``min_std`` is added. Without the floor, the likelihood of a point fitted exactly grows without bound as
    ``sigma -> 0`` (``log sigma -> -inf``), gradients explode and training collapses; with it the NLL stays finite
    for any input, and no log of a negative number can occur.

    Targets are standardised inside the estimator; every mean, std, interval and likelihood is reported in the
    original units of ``y``.

    Parameters
    ----------
    loss : str, Loss subclass or instance, default="gaussian"
        A ``"continuous"`` loss from the registry (``sklearn-costs losses``) or an instance.
    std_link : {"softplus", "exp"} or None, default=None
        Maps the raw std output to a positive std. None keeps the loss's own link (``"softplus"`` for every
        built-in loss that has one); a loss without this option (``"mse"``) refuses any other value.
    min_std : float > 0 or None, default=None
        Floor of the std, in units of the target's standard deviation. It must be positive: the floor is what
        keeps every predicted std above zero. None keeps the loss's own floor (``1e-3`` for the built-in losses,
        ``sklearn_costs.losses.continuous.DEFAULT_MIN_STD``). Set on the estimator, it also applies to a loss given
        as an instance; a loss that has no floor (a plugin's) refuses it.
    linear_weight : float in [0, 1] or "auto", default="auto"
        Weight of a Bayesian linear regression (scikit-learn's ``BayesianRidge`` on the standardised inputs, one
        per target) in the predictive mixture ``(1 - w) * networks + w * linear``: a defence against the
        over-confident errors of networks fitted to a few dozen rows, where a linear Gaussian is often the better
        model. ``"auto"``: the posterior mean of ``w`` under a uniform prior, given the mixture's likelihood on the
        rows held out for early stopping (with the linear part fitted on the other rows); it is near 0.5 when a
        handful of held-out rows cannot tell the two apart, and goes to 0 on large data where the networks are
        better (UCI sets: 0.30-0.63 at 50 rows, where the mixture's test NLL beats the networks alone on all six;
        0-0.03 on all rows). Without held-out rows (``early_stopping=False``, fewer than 20 rows,
        :meth:`partial_fit`) it is 0. The linear part is fitted on all the rows of the fit (at most 100,000,
        evenly spaced; with a fixed weight, each :meth:`partial_fit` call fits it anew on that call's rows), its
        std held at ``min_std`` or above; sample weights count as relative weights (their
        scale does not matter). Reported as ``linear_weight_``; see ``sklearn_costs._linear_component``.
    {common_parameters}

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net.
    loss_ : Loss
        The loss instance used.
    history_ : pandas.DataFrame
        Training and validation loss per epoch (standardised units).
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
    linear_weight_ : float
        The linear component's weight in the predictive mixture (``linear_weight`` resolved; 0: none).
    y_loc_, y_scale_ : ndarray of shape (n_outputs,)
        The target standardisation (float64: the network trains on ``(y - y_loc_) / y_scale_`` in float32, and
        every prediction is mapped back in float64, so targets of any magnitude within float32's range work).

    Examples
    --------
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(n_samples=1000, random_state=0)
    >>> model = GaussianUncertaintyRegressor(hidden_layer_sizes=(32,), max_epochs=20, random_state=0)
    >>> model = model.fit(data.X, data.y)
    >>> mean, std = model.predict(data.X[:3], return_std=True)
    >>> mean.shape, bool((std > 0).all())
    ((3,), True)
    >>> lower, upper = model.predict_interval(data.X[:3], coverage=0.9)
    >>> bool((lower < mean).all() and (mean < upper).all())
    True
    """

    _task = "continuous"
    _target_scaling = True
    _loss_option_names = ("std_link", "min_std")
    _parameter_constraints: dict = {
        **DistributionRegressor._parameter_constraints,
        # the ranges of the loss's own parameters, which these are handed to
        "std_link": [*GaussianLoss._parameter_constraints["std_link"], None],
        "min_std": [*GaussianLoss._parameter_constraints["min_std"], None],
        "linear_weight": [Interval(numbers.Real, 0, 1, closed="both"), AUTO],
    }

    def __init__(
        self,
        loss="gaussian",
        *,
        std_link=None,
        min_std=None,
        linear_weight="auto",
        n_members="auto",
        clip_inputs="auto",
        hidden_layer_sizes="auto",
        activation="relu",
        dropout=0.0,
        max_epochs=1000,
        batch_size="auto",
        lr=3e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=50,
        warm_start=False,
        device="cpu",
        precision="float32",
        n_threads="auto",
        random_state=None,
        verbose=0,
    ):
        self.std_link = std_link
        self.min_std = min_std
        self.linear_weight = linear_weight
        self.n_members = n_members
        self.clip_inputs = clip_inputs
        super().__init__(**shared_arguments(locals()))

    # ------------------------------------------------------------------------------ the linear component

    def _after_training(self, net, X, y, loss, weight):
        super()._after_training(net, X, y, loss, weight)
        self.linear_weight_, self._linear_component = self._fit_linear_component(net, X, y, loss, weight)
        if self.verbose and self.linear_weight == "auto":
            print(f"{type(self).__name__} settings: linear_weight={self.linear_weight_:.3f}")

    def _fit_linear_component(self, net, X, y, loss, weight):
        """``(weight, component)`` of the linear part for the trained ``net`` and the training tensors (targets
        standardised): ``linear_weight`` resolved, and the component fitted on all the rows, at most ``LINEAR_ROWS``
        (None at weight 0)."""
        if weight is not None:
            # the networks' objective is a weighted mean, which the weights' scale does not change; BayesianRidge
            # and the stacking weight count a weight of 2 as two rows: weights of mean 1 keep the evidence at the
            # number of rows (the weights handed here have the largest as 1, which would shrink it)
            weight = weight / weight.mean()
        rows = TensorDataset(*(None if t is None else t.detach().cpu() for t in (X, y, weight)))
        floor = float(getattr(loss, "min_std", 0.0))  # the floor of the networks' scale, in standardised units
        auto = self.linear_weight == "auto"
        if (not auto and self.linear_weight == 0) or (auto and net.train_split is None):
            return 0.0, None
        component = _fit_linear(rows, floor)
        if component is None:
            return 0.0, None
        if not auto:
            return float(self.linear_weight), component
        train, valid = net.train_split(rows)
        judged = _fit_linear(train, floor)
        if judged is None:
            return 0.0, None
        valid = _at_most_linear_rows(valid)
        linear_mean, linear_std = bayesian_linear_predict(judged, valid.X)
        valid_y = valid.y.double().numpy()
        with torch.no_grad():
            params = loss.link(net.forward(valid.X.to(X.device), training=False, device=X.device))
            members = self._members()
            params = {k: members_first(v.double().cpu(), members) for k, v in params.items()}
            log_p_members = loss.log_prob(params, torch.as_tensor(valid_y)).numpy()
        weight_ = stacking_weight(mixture_log_prob(log_p_members), stats.norm.logpdf(valid_y, linear_mean, linear_std),
                                  None if valid.w is None else valid.w.double().numpy())
        return weight_, component

    def _linear_part(self, X):
        weight = getattr(self, "linear_weight_", 0.0)
        if not weight:
            return None
        mean, std = bayesian_linear_predict(self._linear_component, X)
        return weight, mean * self.y_scale_ + self.y_loc_, std * self.y_scale_

    # ------------------------------------------------------------------------------------- predictions

    def predict_interval(self, X, coverage=0.9):
        """Central prediction interval holding ``coverage`` of the predictive probability: the quantiles
        ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` of :meth:`predict_distribution`.

        Returns
        -------
        lower, upper : ndarrays of the shape of ``predict(X)``
        """
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1); got {coverage!r}")
        return self.predict_distribution(X).interval(coverage)

    def predict_cdf(self, X, y):
        """The predictive CDF at the observed ``y`` (probability integral transform), for calibration checks."""
        dist = self.predict_distribution(X)
        return dist.cdf(self._check_y(y, dist.shape[0]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # score() is a log density, not an R2: sklearn's "score > 0.5" sanity threshold does not apply to it.
        tags.regressor_tags.poor_score = True
        return tags

    def score(self, X, y, sample_weight=None):
        """Mean log predictive density of ``y`` (nats per target value, in the units of ``y``; higher is better).

        A proper scoring rule: in expectation it is maximised only by the true predictive distribution, so it
        rewards a calibrated std as well as an accurate mean, and ``GridSearchCV`` ranks losses by it fairly.
        It is the negative of the "test NLL" of the uncertainty literature.
        """
        return mean_log_density(self.log_likelihood(X, y), validated_sample_weight(sample_weight, X))
