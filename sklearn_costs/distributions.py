"""The predictive distribution of a fitted regressor for given inputs: what ``predict_distribution(X)`` returns.

One object owns the prediction (compare NGBoost's ``pred_dist`` and the observation models of nemos): the
components (each member network's distribution from the loss, the Gaussian regressor's linear component, or the
members of a :class:`~sklearn_costs.DeepEnsembleRegressor`) and their mixture weights. ``predict``,
``predict(return_std=True)``, ``predict_cdf``, ``predict_interval``, ``log_likelihood``, ``sample``, ``score`` and
the metrics of :mod:`sklearn_costs.metrics` are all answered by it.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from sklearn.utils import check_random_state

from ._crps import count_crps, gaussian_mixture_crps, integrated_crps, is_gaussian
from ._mixture import mixture_cdf, mixture_log_prob, mixture_mean, mixture_mean_std, mixture_quantile, mixture_sample
from ._targets import target_matrix


def _float64(values) -> np.ndarray:
    return _as_float(values, np.float64)


def _numpy_dtype(tensor) -> np.dtype:
    return np.dtype(np.float32) if tensor.dtype in (torch.float32, torch.bfloat16, torch.float16) else np.dtype(
        np.float64)


def _as_float(values, dtype) -> np.ndarray:
    """``values`` (a tensor or array-like) as a NumPy array of ``dtype``, without a copy where they have it."""
    if torch.is_tensor(values):
        values = values.detach().cpu()
        if values.dtype not in (torch.float32, torch.float64):
            values = values.double()
        return values.numpy().astype(dtype, copy=False)
    return np.asarray(values, dtype=dtype)


def _no_scipy_distribution(loss):
    return ValueError(f"the {loss.name!r} loss gives no scipy_distribution(params), which the CDF, quantiles, "
                      "intervals and CRPS of its predictions need; add one to the loss class (see "
                      "sklearn_costs.losses.base)")


class _LossComponents:
    """Components of one loss (the members of a network): parameters ``{name: (n_components, n_rows, n_targets)}``
    as the loss's ``link`` gives them (torch tensors, their dtype kept, so that the means are computed as the
    network's own); ``dtype``: the NumPy float dtype of the means and stds."""

    def __init__(self, loss, params, dtype=np.float64):
        self.loss = loss
        self.params = {k: v if torch.is_tensor(v) else torch.as_tensor(v) for k, v in params.items()}
        # float32 only where the parameters are float32 too: a regressor's mapped back from standardised targets in
        # float64 stay float64 (float32 would round 1e7 + 0.05)
        self.dtype = np.result_type(dtype, *(_numpy_dtype(v) for v in self.params.values()))
        first = self.params[loss.parameter_names[0]]
        self.n_components, self.shape = len(first), tuple(first.shape[1:])
        self.discrete = loss.task == "counts"
        self._scipy = None

    def means(self):
        return self._moment(self.loss.mean(self.params))

    def stds(self):
        if not getattr(self.loss, "has_std", True):
            raise ValueError(f"the {self.loss.name!r} loss has no standard deviation (its distribution has no finite "
                             "variance), so return_std=True has no answer; use predict_interval for its quantiles")
        return self._moment(self.loss.std(self.params))

    def _moment(self, values):
        """A mean or std as a NumPy array of ``dtype`` of its own, never a view of a parameter (a Poisson's mean
        is its rate), which changes to it would corrupt."""
        unconverted = torch.float32 if self.dtype == np.float32 else torch.float64  # _as_float would not copy
        if (torch.is_tensor(values) and values.dtype == unconverted
                and any(values.untyped_storage().data_ptr() == p.untyped_storage().data_ptr()
                        for p in self.params.values())):
            values = values.clone()
        return _as_float(values, self.dtype)

    def log_probs(self, y):
        self.loss.check_target(y)
        with torch.no_grad():
            params = {k: v.double() for k, v in self.params.items()}
            return self.loss.log_prob(params, torch.tensor(y, dtype=torch.float64)).numpy()

    def numpy_params(self, member, squeeze=False):
        return {k: _float64(v[member])[..., 0] if squeeze else _float64(v[member]) for k, v in self.params.items()}

    def scipy_components(self, squeeze=False):
        if self._scipy is not None and not squeeze:
            return self._scipy
        make = getattr(self.loss, "scipy_distribution", None)
        if make is None:
            raise _no_scipy_distribution(self.loss)
        try:
            dists = [make(self.numpy_params(m, squeeze)) for m in range(self.n_components)]
        except NotImplementedError:
            raise _no_scipy_distribution(self.loss) from None
        if not squeeze:
            self._scipy = dists
        return dists

    def cdfs(self, x):
        return np.stack([d.cdf(x) for d in self.scipy_components()])

    def ppfs(self, q):
        return np.stack([np.broadcast_to(d.ppf(q), self.shape) for d in self.scipy_components()])

    def draws(self, n_samples, rng):
        """``(n_components, n_samples, n_rows, n_targets)`` draws with the NumPy Generator ``rng``."""
        params = {k: np.broadcast_to(_float64(v), (n_samples, *v.shape)) for k, v in self.params.items()}
        draws = np.reshape(self.loss.sample(params, rng), (n_samples, self.n_components, *self.shape))  # scipy: 1 -> ()
        return np.moveaxis(draws, 1, 0)


class _GaussianComponent:
    """One normal component of given means and stds ``(n_rows, n_targets)`` (the Gaussian regressor's linear
    part)."""

    n_components = 1
    discrete = False

    def __init__(self, mean, std):
        self.mean, self.std = _float64(mean), _float64(std)
        self.shape = self.mean.shape

    def means(self):
        return self.mean[None]

    def stds(self):
        return self.std[None]

    def log_probs(self, y):
        return stats.norm.logpdf(y, self.mean, self.std)[None]

    def scipy_components(self, squeeze=False):
        if squeeze:
            return [stats.norm(self.mean[..., 0], self.std[..., 0])]
        return [stats.norm(self.mean, self.std)]

    def cdfs(self, x):
        return stats.norm.cdf(x, self.mean, self.std)[None]

    def ppfs(self, q):
        return np.broadcast_to(stats.norm.ppf(q, self.mean, self.std), self.shape)[None]

    def draws(self, n_samples, rng):
        return rng.normal(self.mean, self.std, size=(n_samples, *self.shape))[None]


class PredictiveDistribution:
    """The predictive distribution of a fitted regressor for the rows of some ``X``: a mixture of components.

    Returned by ``predict_distribution(X)`` of :class:`~sklearn_costs.GaussianUncertaintyRegressor`,
    :class:`~sklearn_costs.PoissonSpikeRegressor` and :class:`~sklearn_costs.DeepEnsembleRegressor`; every
    prediction of those estimators is computed by it. Its components are the member networks' distributions of
    the loss (``n_members_`` of them, weighted equally), the Gaussian regressor's linear component (weight
    ``linear_weight_``; the networks share the rest), and for a deep ensemble every member estimator's components,
    each estimator weighing ``1 / n_estimators``.

    Arrays it returns have the shape of ``predict(X)``: ``(n_rows,)`` when the estimator was fitted on a 1-D
    ``y``, else ``(n_rows, n_targets)``. Observed ``y`` may come in either shape (a Series or a one-column
    DataFrame alike).

    Parameters
    ----------
    parts : list
        The components, built by :meth:`from_loss`, :meth:`with_gaussian` and :meth:`mixture` (use those).
    weights : array-like or None, default=None
        The parts' mixture weights, summing to 1; None: equal.
    one_dimensional : bool, default=False
        Results drop the targets' axis (an estimator fitted on a 1-D ``y``).

    Attributes
    ----------
    shape : tuple
        The shape of ``predict(X)``.
    discrete : bool
        True for counts (``log_pdf`` is then a log probability mass, ``ppf`` and ``interval`` give counts).

    See Also
    --------
    PredictiveDistribution.mixture : the mixture of several of them (a deep ensemble's).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(100, 1))
    >>> y = 3 * np.abs(X[:, 0]) + rng.normal(scale=0.5, size=100)
    >>> model = GaussianUncertaintyRegressor(max_epochs=5, random_state=0).fit(X, y)
    >>> dist = model.predict_distribution(X[:3])
    >>> dist.mean.shape, dist.std.shape
    ((3,), (3,))
    >>> bool(np.allclose(dist.mean, model.predict(X[:3])))
    True
    >>> lower, upper = dist.interval(0.9)
    >>> bool(np.allclose(dist.cdf(upper) - dist.cdf(lower), 0.9))
    True
    >>> dist.sample(5, random_state=0).shape
    (5, 3)
    >>> dist.crps(y[:3]).shape
    (3,)
    >>> len(dist.components) == len(dist.weights) == model.n_members_ + (model.linear_weight_ > 0)
    True
    """

    def __init__(self, parts, weights=None, *, one_dimensional=False, dtype=None):
        self._parts = list(parts)
        if dtype is None:
            dtype = np.result_type(*(p.dtype for p in self._parts)) if hasattr(self._parts[0], "dtype") else np.float64
        #: The NumPy float dtype of :attr:`mean` and :attr:`std` (float32 for a prediction of float32 inputs).
        self.dtype = np.dtype(dtype)
        self._nested = isinstance(self._parts[0], PredictiveDistribution)
        self._weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self._one_dimensional = bool(one_dimensional)
        self._shape2d = self._parts[0]._shape2d if self._nested else self._parts[0].shape
        self.discrete = any(p.discrete for p in self._parts)
        self._moments = {}  # "mean" and "std" once computed, until handed out (_handed_out)

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def from_loss(cls, loss, params, *, one_dimensional=False, dtype=np.float64):
        """The equal mixture of ``n_members`` distributions of ``loss`` with parameters ``params`` (``{name:
        array or tensor of shape (n_members, n_rows, n_targets)}``, as ``loss.link`` gives them);
        ``one_dimensional``: results drop the targets' axis (an estimator fitted on a 1-D ``y``); ``dtype``: that
        of :attr:`mean` and :attr:`std` (float32: no float64 copy of a large output)."""
        return cls([_LossComponents(loss, params, dtype)], one_dimensional=one_dimensional)

    def with_gaussian(self, mean, std, weight):
        """This distribution mixed with a normal component of ``mean`` and ``std`` (arrays ``(n_rows,
        n_targets)``) of weight ``weight``; this one's components share the rest in their proportions."""
        if self._nested:
            raise ValueError("with_gaussian extends the components of one model; mix whole distributions with "
                             "PredictiveDistribution.mixture")
        if self._weights is None:
            n = len(self._component_weights())
            weights = np.append(np.full(n, (1.0 - weight) / n), weight)
        else:
            weights = np.append(self._weights * (1.0 - weight), weight)
        return PredictiveDistribution(self._parts + [_GaussianComponent(mean, std)], weights,
                                      one_dimensional=self._one_dimensional, dtype=self.dtype)

    @classmethod
    def mixture(cls, distributions, weights=None):
        """The mixture of ``distributions`` (of the same rows and targets) with ``weights`` (None: equal), as a
        deep ensemble predicts: its mean is the weighted mean of theirs, its std adds their disagreement."""
        distributions = list(distributions)
        shapes = {d.shape for d in distributions}
        if len(shapes) != 1:
            raise ValueError(f"the distributions of a mixture must have one shape; got {sorted(shapes)}")
        if len({d.discrete for d in distributions}) != 1:
            raise ValueError("a mixture needs distributions of one kind: counts (discrete) and continuous values "
                             "have no common CDF, quantiles or CRPS; got "
                             f"{['discrete' if d.discrete else 'continuous' for d in distributions]}")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(distributions),) or not np.all(weights >= 0) or not np.isclose(weights.sum(), 1):
                raise ValueError(f"weights must hold one non-negative weight per distribution ({len(distributions)}) "
                                 f"summing to 1; got {weights.tolist()}")
        return cls(distributions, weights, one_dimensional=distributions[0]._one_dimensional)

    # ------------------------------------------------------------------------------------ components

    def _component_weights(self):
        n = sum(1 if self._nested else p.n_components for p in self._parts)
        return np.full(n, 1.0 / n) if self._weights is None else self._weights

    @property
    def shape(self):
        return self._shape2d[:1] if self._one_dimensional else self._shape2d

    @property
    def weights(self) -> np.ndarray:
        """The weight of each of :attr:`components` in the mixture (summing to 1)."""
        if self._nested:
            return np.concatenate([w * p.weights for p, w in zip(self._parts, self._component_weights())])
        return self._component_weights()

    @property
    def components(self) -> list:
        """Every component as a frozen ``scipy.stats`` distribution over arrays of :attr:`shape` (a deep
        ensemble's: every member's, flattened), in the order of :attr:`weights`."""
        return _scipy_components(self, squeeze=self._one_dimensional)

    @property
    def params(self) -> dict:
        """The distribution parameters of the loss's components (not the linear component), as the loss's
        ``link`` names them: arrays of :attr:`shape`, with a first axis of members when there are several.
        ``dist["mean"]`` is short for ``dist.params["mean"]``. A deep ensemble's mixture has none: use each
        member's."""
        if self._nested:
            raise AttributeError("a mixture of distributions has no single set of parameters: use its members'")
        members = self._parts[0]
        single = members.n_components == 1
        # copies: the components compute from these arrays, which an edit of a view would change under them
        return {name: self._squeeze(np.array(_float64(value[0] if single else value), copy=True))
                for name, value in members.params.items()}

    def __getitem__(self, name):
        return self.params[name]

    def __repr__(self):
        return (f"{type(self).__name__}(shape={self.shape}, components={len(self._component_weights())}"
                f"{', discrete' if self.discrete else ''})")

    # ---------------------------------------------------------------------------- 2-D computations

    def _squeeze(self, values):
        return values[..., 0] if self._one_dimensional else values

    def _targets(self, y, what="y"):
        return target_matrix(y, *self._shape2d, what=what)

    def _stack(self, method, *args):
        """The parts' values stacked along a first axis: the components', or the nested distributions'."""
        if self._nested:
            return np.stack([getattr(p, "_" + method)(*args) for p in self._parts])
        values = [getattr(p, method + "s")(*args) for p in self._parts]
        return values[0] if len(values) == 1 else np.concatenate(values)  # one part: no copy of the whole output

    def _mean(self):
        if "mean" not in self._moments:
            self._moments["mean"] = mixture_mean(self._stack("mean"), self._weights)
        return self._moments["mean"]

    def _std(self):
        if "std" not in self._moments:
            stds = self._stack("std")
            if len(stds) == 1:  # one component is its own std: no pass over its means
                self._moments["std"] = stds[0]
            else:
                self._moments["mean"], self._moments["std"] = mixture_mean_std(self._stack("mean"), stds,
                                                                               self._weights)
        return self._moments["std"]

    def _log_prob(self, y):
        return mixture_log_prob(self._stack("log_prob", y), self._weights)

    def _cdf(self, x):
        return mixture_cdf(self._stack("cdf", x), self._weights)

    def _ppf(self, q):
        return mixture_quantile(self._stack("ppf", q), self._cdf, q, self.discrete)

    # -------------------------------------------------------------------------------------- public

    @property
    def mean(self) -> np.ndarray:
        """The mixture's mean: ``predict(X)``, of :attr:`dtype`."""
        return self._handed_out(self._squeeze(self._mean()).astype(self.dtype, copy=False))

    @property
    def std(self) -> np.ndarray:
        """The mixture's standard deviation: the square root of the components' mean variance plus the variance
        of their means (law of total variance); ``predict(X, return_std=True)[1]``, of :attr:`dtype`."""
        return self._handed_out(self._squeeze(self._std()).astype(self.dtype, copy=False))

    def _handed_out(self, moment):
        """``moment``, no longer held here: a cached array it is (or shares memory with) leaves the cache (and is
        computed again when needed), so that a caller who edits it in place changes nothing here; a copy would
        double the memory of a large prediction."""
        self._moments = {name: m for name, m in self._moments.items() if not np.may_share_memory(m, moment)}
        return moment

    @property
    def var(self) -> np.ndarray:
        """The mixture's variance, ``std ** 2``."""
        return self.std**2

    def log_pdf(self, y) -> np.ndarray:
        """Log density (for counts, log probability mass) of the observed ``y`` under the mixture, per target:
        ``log_likelihood(X, y)``."""
        return self._squeeze(self._log_prob(self._targets(y)))

    def cdf(self, y) -> np.ndarray:
        """The mixture's CDF at ``y``, ``P(Y <= y)``; at the observed targets, the probability integral transform
        of calibration checks (``predict_cdf``)."""
        return self._squeeze(self._cdf(self._targets(y)))

    def ppf(self, q) -> np.ndarray:
        """The mixture's ``q``-quantile (``q`` in (0, 1), a number or an array of :attr:`shape`): the smallest
        value whose CDF reaches ``q``, found by bisection between the components' own quantiles (exact for one
        component)."""
        q = np.asarray(q, dtype=np.float64)
        if not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantile levels must be in (0, 1); got {q.min()!r} to {q.max()!r}")
        if q.ndim:
            q = q.reshape(self._shape2d)
        return self._squeeze(self._ppf(q))

    def interval(self, coverage=0.9):
        """Central interval holding ``coverage`` of the probability: ``(ppf((1 - coverage) / 2), ppf((1 +
        coverage) / 2))`` (``predict_interval``)."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1); got {coverage!r}")
        tail = (1 - coverage) / 2
        return self.ppf(tail), self.ppf(1 - tail)

    def sample(self, n_samples=1, random_state=None) -> np.ndarray:
        """Draws of the targets, shape ``(n_samples, *shape)``: each draw of a row takes all its targets from one
        component, picked at random with its weight.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
        """
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
        return self._squeeze(_draws(self, int(n_samples), check_random_state(random_state)))

    def crps(self, y) -> np.ndarray:
        """Continuous ranked probability score of the mixture at the observed ``y``, ``integral (F(x) - 1{x >=
        y})**2 dx`` (lower is better; in the units of ``y``), per target.

        Computed for the mixture itself: in closed form when every component is normal (Grimit et al. 2006),
        as the exact sum over the counts for count distributions, and by piecewise Gauss-Legendre quadrature
        between the components' quantiles otherwise (relative error below 1e-8 in checks against adaptive
        quadrature); see ``sklearn_costs._crps``.
        """
        y = self._targets(y)
        dists, weights = _scipy_components(self), self.weights
        if self.discrete:
            return self._squeeze(count_crps(dists, weights, y))
        if all(is_gaussian(d) for d in dists):
            means = [np.broadcast_to(d.mean(), y.shape) for d in dists]
            stds = [np.broadcast_to(d.std(), y.shape) for d in dists]
            return self._squeeze(gaussian_mixture_crps(means, stds, weights, y))
        return self._squeeze(integrated_crps(dists, weights, y))


def _scipy_components(dist, squeeze=False):
    """Every component of ``dist`` as a frozen ``scipy.stats`` distribution (a deep ensemble's: every member's)."""
    out = []
    for part in dist._parts:
        out += _scipy_components(part, squeeze) if dist._nested else part.scipy_components(squeeze)
    return out


def _draws(dist, n_samples, random_state):
    """``(n_samples, n_rows, n_targets)`` draws; ``random_state`` a ``RandomState``."""
    if dist._nested:
        draws = np.stack([_draws(p, n_samples, random_state) for p in dist._parts])
        return mixture_sample(draws, random_state, dist._weights)
    rng = np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    draws = np.concatenate([p.draws(n_samples, rng) for p in dist._parts])
    return mixture_sample(draws, rng, dist._weights)
