"""The loss contract: what a loss declares so that any estimator of this package can train with it.

A plugin author reads only this page.

Two kinds of loss exist.

**Distribution losses** (tasks ``"counts"`` and ``"continuous"``) describe a parametric distribution of each target
given the network's raw outputs. Subclass :class:`CountLoss` for counts (it sets ``task = "counts"`` and checks
that ``y`` holds non-negative integers) or :class:`ContinuousLoss` for real targets (it sets
``task = "continuous"`` and derives sampling, intervals and the CDF from ``scipy_distribution``); both are
:class:`DistributionLoss` subclasses. Declare:

``name``
    The registry name (``"poisson"``). Lower case, unique within a task.
``task``
    ``"counts"`` (non-negative integer targets, :class:`~sklearn_costs.PoissonSpikeRegressor`) or ``"continuous"``
    (real targets, :class:`~sklearn_costs.GaussianUncertaintyRegressor`).
``parameter_names``
    The distribution parameters, in the order of the raw outputs, e.g. ``("mean", "dispersion")``. The network emits
    ``len(parameter_names)`` raw outputs *per target* (``n_outputs``).
``shared_parameters``
    The subset of ``parameter_names`` that is one learned value per target rather than one per sample (a neuron's
    dispersion). The estimator's output head holds them as free parameters and broadcasts them over samples.
``link(raw)``
    Map raw outputs ``raw`` of shape ``(..., n_outputs)`` (any finite real numbers) to a ``dict`` of valid
    distribution parameters, each of shape ``(...)``: rates, standard deviations, dispersions strictly positive and
    never NaN for finite input.
``nll(params, y)``
    The per-element negative log-likelihood, shape of ``y``, **including every constant** (``log k!``,
    ``log sqrt(2 pi)``), so that values are comparable across losses and equal ``-scipy.stats.<dist>.logpmf/logpdf``.
``mean(params)``
    The point prediction: the distribution's mean.
``std(params)``
    The predictive standard deviation. A loss whose distribution has no std sets ``has_std = False``; the
    estimators then refuse ``return_std`` with a clear error.
``sample(params, rng)``
    Draws from the distribution. Here ``params`` holds NumPy arrays and ``rng`` is a ``numpy.random.Generator``.
    Required for counts (``PoissonSpikeRegressor.sample``); a continuous loss gets it from ``scipy_distribution``.
``log_prob(params, y)``
    ``-nll(params, y)`` (provided).
``check_target(y)``
    Raise ``ValueError`` naming the first bad entry when ``y`` cannot come from the distribution (provided for counts:
    non-negative integers).
``init_raw(y)``
    Optional: raw output values ``(n_targets, n_outputs)`` that start training at the marginal distribution of
    ``y``, e.g. ``log(mean count)``. The estimator puts them into the output layer's bias.
``training_loss(params, y)``
    Optional: the per-element objective that training minimises, when it is not the NLL (a least-squares
    baseline, the beta-NLL's re-weighting), or the NLL without terms that do not depend on the parameters (the
    count losses leave out ``log k!``: the same gradients, at less cost). The estimators' ``history_`` records it.
    Defaults to ``nll``.
``fit_shared(params, y, weight=None)``
    Optional: closed-form values of shared parameters, computed on the training data after training
    (the constant std of a least-squares baseline), as ``{name: raw tensor (n_targets,)}``; ``weight`` holds the
    sample weights of ``fit(X, y, sample_weight=...)``, or None.

A **continuous** loss also declares:

``scipy_distribution(params)``
    The predictive distribution as a frozen ``scipy.stats`` distribution of NumPy parameters (arrays of the
    targets' shape), e.g. ``stats.logistic(params["mean"], params["scale"])``. ``predict_interval`` takes its
    ``ppf``, ``predict_cdf`` (calibration) its ``cdf``, ``sample`` its ``rvs``.
``scale_parameters``
    The parameters that are in the target's units besides ``"mean"`` (default ``("std",)``). The regressor trains
    on standardised targets; :meth:`ContinuousLoss.rescale` maps the parameters back to the original units by
    ``mean * scale + loc`` and ``p * scale`` for each of these. A loss whose parameters transform otherwise
    overrides ``rescale(params, loc, scale)``.

So a continuous loss's ``link`` returns at least ``"mean"`` and its ``scale_parameters``.

**Helpers** for writing ``link`` and ``init_raw``: :func:`positive` (a strictly positive parameter from a raw
output by ``softplus`` or ``exp``, with an optional floor), :func:`inverse_positive` (its inverse, for
``init_raw``), :func:`safe_exp` (``exp`` clamped at ``MAX_LOG`` so that it stays finite in float32),
:func:`check_counts` (the count check of :class:`CountLoss`) and ``LOG_SQRT_2PI``.

All tensors are ``torch.Tensor``; every method must be differentiable in ``raw`` / ``params`` and free of NaN for
finite input. Constructor arguments are the loss's hyper-parameters (``PoissonLoss(link="softplus")``); losses
follow scikit-learn's parameter convention (``get_params`` / ``set_params``, no logic in ``__init__``) so they can be
cloned and searched over by ``GridSearchCV``. Their valid values are declared in a class attribute
``_parameter_constraints`` in scikit-learn's constraint language (``sklearn.utils._param_validation``), e.g.
``{"rate_link": [StrOptions({"log", "softplus"})]}``; an estimator checks them when it takes the loss, so a bad value
fails before training with an error naming the parameter. Parameters without an entry are not checked.

**Embedding losses** (task ``"embedding"``) take a batch of embeddings ``(n, m)`` and integer identity labels
``(n,)`` and return a scalar: subclass :class:`EmbeddingLoss` and implement ``forward(embeddings, labels)``, or
``forward(embeddings, labels, weight=None)`` to support ``TripletEmbedder.fit(..., sample_weight=...)`` (``weight``
holds the batch's sample weights; the built-in triplet losses weight each triplet by its anchor's weight).

An embedding loss may learn parameters of its own with the network, one row per identity: the proxies of a proxy
loss (:class:`~sklearn_costs.losses.ProxyAnchorLoss`). It returns their start from
``identity_parameters(n_identities, embedding_dim)`` as ``{name: tensor}``; the
:class:`~sklearn_costs.TripletEmbedder` then holds them (one set per member network) in its net's criterion, where
skorch hands them to the optimizer with the network's weights, and passes them to ``forward`` as keyword arguments
with the labels encoded ``0 .. n_identities - 1``, together with ``seen``, a boolean tensor marking the identities
that training batches have held so far (the rows of the others have not learned: identities held out for early
stopping, or new to a warm start).

**Registering.** Built-in losses are registered by name. A third-party package adds its own through the entry-point
group ``sklearn_costs.losses`` in its ``pyproject.toml``::

    [project.entry-points."sklearn_costs.losses"]
    my_poisson = "my_package.losses:MyPoissonLoss"

The entry point's name is the loss's registry name; it must point to a subclass of :class:`Loss`. Instances or
classes can also be passed to an estimator directly, ``loss=MyPoissonLoss()``, without registering. Either way the
class is checked against this contract (:func:`contract_violations`): one that does not subclass its task's base
class, or leaves a required method unimplemented, is refused with a ``TypeError`` naming what it lacks (a plugin
so refused is reported by a ``LossPluginWarning`` and never hides the other losses).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import ParameterChecks

TASKS = ("counts", "continuous", "embedding")

# The largest raw value handed to exp(): exp(60) ~ 1e26 is finite in float32, exp(89) is not.
MAX_LOG = 60.0

#: Constraints shared by several losses (and by the estimator parameters handed to them).
POSITIVE_LINKS = StrOptions({"softplus", "exp"})
POSITIVE_FLOAT = Interval(numbers.Real, 0, None, closed="neither")


class Loss(ParameterChecks, BaseEstimator):
    """Base of every loss: a name, a task, and scikit-learn style hyper-parameters."""

    name: str = ""
    task: str = ""
    #: ``{parameter: [constraint, ...]}`` as in scikit-learn estimators; a value is valid when it satisfies one.
    _parameter_constraints: dict = {}

    def __repr__(self, N_CHAR_MAX=200):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({params})"


class DistributionLoss(Loss):
    """A likelihood of targets given raw network outputs. See the module docstring for the contract."""

    parameter_names: tuple[str, ...] = ("mean",)
    shared_parameters: tuple[str, ...] = ()
    has_std: bool = True

    @property
    def n_outputs(self) -> int:
        """Raw network outputs per target."""
        return len(self.parameter_names)

    @property
    def shared_mask(self) -> tuple[bool, ...]:
        """One flag per raw output: True where the output is one learned value per target."""
        return tuple(p in self.shared_parameters for p in self.parameter_names)

    def link(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def nll(self, params: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def std(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"the {self.name!r} loss defines no standard deviation")

    def sample(self, params: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError(f"the {self.name!r} loss defines no sampler")

    def training_loss(self, params: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        return self.nll(params, y)

    def fit_shared(self, params: dict[str, torch.Tensor], y: torch.Tensor,
                   weight: torch.Tensor | None = None) -> dict[str, torch.Tensor] | None:
        return None

    def log_prob(self, params: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        return -self.nll(params, y)

    def check_target(self, y: np.ndarray) -> None:
        """Raise ``ValueError`` when ``y`` cannot be drawn from this distribution."""

    def init_raw(self, y: torch.Tensor) -> torch.Tensor | None:
        """Raw outputs ``(n_targets, n_outputs)`` that start training at the marginal of ``y``; None to skip."""
        return None

    def _training_link(self, raw):
        """The parameters that training computes its objective from: ``link(raw)``, or a cheaper equivalent that a
        loss may define for the outputs that training meets (see :class:`~sklearn_costs.losses.PoissonLoss`)."""
        return self.link(raw)

    def forward(self, raw: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The training objective: per-sample ``training_loss`` summed over targets, averaged over samples (the
        ``weight``-weighted average with sample weights)."""
        per_sample = self.training_loss(self._training_link(raw), y).sum(dim=-1)
        if weight is None:
            return per_sample.mean()
        return (per_sample * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)

    def __call__(self, raw, y, weight=None):
        # a loss that overrides forward(raw, y) without weights still serves unweighted fits
        return self.forward(raw, y) if weight is None else self.forward(raw, y, weight)


class CountLoss(DistributionLoss):
    """A distribution of non-negative integer counts."""

    task = "counts"

    def _nll_without_log_factorial(self, params, y):
        """The NLL less ``log k!``, computed without it: a loss that can defines it beside its ``nll``."""
        raise NotImplementedError

    def training_loss(self, params, y):
        """The NLL without ``log k!``, which does not depend on the parameters (the same gradients at less cost),
        where the class that defines ``nll`` also defines ``_nll_without_log_factorial``; otherwise the NLL, so
        that a subclass that redefines ``nll`` trains on it."""
        cls = type(self)
        if _defined_by(cls, "nll") is _defined_by(cls, "_nll_without_log_factorial"):
            return self._nll_without_log_factorial(params, y)
        return self.nll(params, y)

    def check_target(self, y):
        check_counts(y)


def _defined_by(cls, name):
    """The class in ``cls``'s method resolution order whose body defines ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


class ContinuousLoss(DistributionLoss):
    """A location-scale distribution of real targets.

    Besides the torch methods, a continuous loss gives its predictive distribution as a frozen ``scipy.stats``
    distribution, ``scipy_distribution(params)`` with NumPy parameters; sampling, quantiles (prediction
    intervals) and the CDF (calibration) come from it.
    """

    task = "continuous"
    #: Parameters multiplied by the target's scale when predictions are reported in the original units.
    scale_parameters: tuple[str, ...] = ("std",)

    def scipy_distribution(self, params: dict[str, np.ndarray]):
        raise NotImplementedError(f"the {self.name!r} loss gives no scipy distribution")

    def sample(self, params, rng):
        return self.scipy_distribution(params).rvs(random_state=rng)

    def rescale(self, params, loc, scale):
        """Parameters of the distribution of ``y * scale + loc`` given those of ``y`` (per target)."""
        out = dict(params)
        out["mean"] = params["mean"] * scale + loc
        for p in self.scale_parameters:
            out[p] = params[p] * scale
        return out


class EmbeddingLoss(Loss):
    """A loss on a batch of embeddings and their identity labels."""

    task = "embedding"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None):
        raise NotImplementedError

    def identity_parameters(self, n_identities: int, embedding_dim: int) -> dict[str, torch.Tensor]:
        """The start of the parameters that the loss learns with the network, each with one row per identity (a
        proxy loss's proxies): ``{name: tensor (n_identities, ...)}``; none by default. See the module docstring."""
        return {}

    def __call__(self, embeddings, labels, weight=None, **learned):
        # a loss whose forward takes no weights still serves unweighted fits
        if weight is None:
            return self.forward(embeddings, labels, **learned)
        return self.forward(embeddings, labels, weight, **learned)


#: Per task: the base class its losses subclass (and what that base provides), and the methods each loss must
#: implement itself. ``std`` is required too unless the loss sets ``has_std = False``.
CONTRACT = {
    "counts": (CountLoss, "checks that y holds non-negative integer counts", ("link", "nll", "mean")),
    "continuous": (ContinuousLoss, "gives sampling, intervals and the CDF from scipy_distribution, and rescale",
                   ("link", "nll", "mean", "scipy_distribution")),
    "embedding": (EmbeddingLoss, "is called with a batch of embeddings and their labels", ("forward",)),
}


def contract_violations(cls) -> list[str]:
    """What the loss class ``cls`` lacks to serve its ``task``, one phrase each; empty when it follows the
    contract. The registry refuses a class with any (see :func:`~sklearn_costs.losses.register_loss`).

    Examples
    --------
    >>> class HalfDone(ContinuousLoss):
    ...     name = "half_done"
    ...     def link(self, raw):
    ...         return {"mean": raw[..., 0]}
    >>> contract_violations(HalfDone)
    ['it does not implement nll', 'it does not implement mean', 'it does not implement scipy_distribution', \
'it does not implement std (or set has_std = False)']
    """
    if cls.task not in CONTRACT:
        return [f"its task {cls.task!r} is not one of {TASKS}"]
    base, provides, methods = CONTRACT[cls.task]
    problems = []
    if not issubclass(cls, base):
        problems.append(f"a {cls.task!r} loss must subclass sklearn_costs.losses.{base.__name__} (which {provides})")
    if base is not EmbeddingLoss and cls.has_std:
        methods = (*methods, "std")
    unimplemented = {name: [getattr(c, name) for c in (DistributionLoss, ContinuousLoss, EmbeddingLoss)
                            if name in vars(c)] for name in methods}
    for name, placeholders in unimplemented.items():
        if not callable(getattr(cls, name, None)) or getattr(cls, name) in placeholders:
            problems.append(f"it does not implement {name}" + (" (or set has_std = False)" if name == "std" else ""))
    return problems


def check_counts(y) -> None:
    """Raise ``ValueError`` naming the first entry of ``y`` that is not a non-negative integer count.

    Examples
    --------
    >>> check_counts([[0, 2], [1, 3]])
    >>> check_counts([[0, 2], [1.5, 3]])
    Traceback (most recent call last):
    ...
    ValueError: y must hold non-negative integer spike counts; found 1.5 at row 1, column 0. ...
    """
    y = np.asarray(y)
    flat = y.reshape(-1)
    # In chunks, so that checking a large count matrix needs little memory beyond it.
    chunk = 1 << 20
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        if y.dtype.kind in "biu":
            bad = part < 0
        else:
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(part) | (part < 0) | (part != np.round(part))
        if bad.any():
            idx = np.unravel_index(start + int(np.flatnonzero(bad)[0]), y.shape)
            where = f"row {idx[0]}" + (f", column {idx[1]}" if len(idx) > 1 else "")
            value = y[idx].item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            raise ValueError(
                f"y must hold non-negative integer spike counts; found {value!r} at {where}. "
                "Bin spike times with sklearn_costs.preprocessing.bin_spikes to get counts."
            )


def safe_exp(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` with ``x`` clamped at ``MAX_LOG`` (60), so that it stays finite in float32 (``exp(89)`` is not).

    Examples
    --------
    >>> import torch
    >>> bool(torch.isfinite(safe_exp(torch.tensor([100.0]))).all())
    True
    """
    return torch.exp(torch.clamp(x, max=MAX_LOG))


def positive(raw: torch.Tensor, link: str, floor: float = 0.0) -> torch.Tensor:
    """A strictly positive parameter from a raw output by ``softplus`` or ``exp``, plus ``floor``.

    Examples
    --------
    >>> import torch
    >>> positive(torch.tensor([-200.0, 0.0]), "softplus", floor=1e-3)
    tensor([0.0010, 0.6941])
    """
    if link == "softplus":
        value = torch.nn.functional.softplus(raw)
    elif link in ("exp", "log"):
        value = safe_exp(raw)
    else:
        raise ValueError(f"link must be 'softplus' or 'exp'; got {link!r}")
    # softplus underflows to 0 below about -100 in float32; keep the parameter strictly positive.
    return value.clamp_min(torch.finfo(value.dtype).tiny) + floor


def inverse_positive(value: torch.Tensor, link: str) -> torch.Tensor:
    """The raw output that :func:`positive` maps to ``value`` (without floor): for a loss's ``init_raw``.

    Examples
    --------
    >>> import torch
    >>> raw = inverse_positive(torch.tensor([0.5, 2.0]), "softplus")
    >>> positive(raw, "softplus")
    tensor([0.5000, 2.0000])
    """
    value = value.clamp_min(1e-6)
    if link == "softplus":
        return value + torch.log(-torch.expm1(-value))
    return torch.log(value)


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
