"""The loss registry: built-in losses by name, plus the plugins of the entry-point group ``sklearn_costs.losses``.

Discovery runs once, on the first lookup, and is cached (:func:`refresh` clears it). A plugin that fails to import
is reported by a :class:`LossPluginWarning` at discovery and by a :class:`LossPluginError` carrying the original
exception when it is asked for by name; it never hides the other losses.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from sklearn.base import clone

from .base import TASKS, Loss, contract_violations

ENTRY_POINT_GROUP = "sklearn_costs.losses"
BUILTIN_SOURCE = "sklearn-costs"

_BUILTINS: dict[tuple[str, str], type[Loss]] = {}
_DISCOVERED: dict[tuple[str, str], LossInfo] | None = None
_BROKEN: dict[str, LossInfo] = {}


class LossPluginWarning(UserWarning):
    """A plugin of the ``sklearn_costs.losses`` entry-point group could not be loaded or clashes with another."""


class LossPluginError(ImportError):
    """A loss asked for by name belongs to a plugin that failed to load; ``__cause__`` holds the original error."""


@dataclass(frozen=True)
class LossInfo:
    """One registry entry: where a loss comes from and, unless it failed to load, its class."""

    name: str
    task: str | None
    source: str
    cls: type[Loss] | None = None
    target: str = ""
    error: BaseException | None = None


def register_loss(cls: type[Loss]) -> type[Loss]:
    """Class decorator registering a loss under ``cls.name`` for ``cls.task`` in this Python session.

    The built-in losses register this way, and so can a notebook or script. A package makes its losses known
    wherever it is installed through the ``sklearn_costs.losses`` entry point instead.

    Examples
    --------
    >>> from sklearn_costs.losses import PoissonLoss
    >>> @register_loss
    ... class SoftplusPoisson(PoissonLoss):
    ...     name = "softplus_poisson_doc"
    ...     def __init__(self, rate_link="softplus"):
    ...         super().__init__(rate_link=rate_link)
    >>> get_loss("softplus_poisson_doc", "counts").rate_link
    'softplus'
    """
    _check_loss_class(cls, origin=cls.__qualname__)
    _BUILTINS[(cls.task, cls.name)] = cls
    if _DISCOVERED is not None:  # already looked up: add it without rescanning the entry points
        _DISCOVERED[(cls.task, cls.name)] = LossInfo(cls.name, cls.task, BUILTIN_SOURCE, cls)
    return cls


def _check_loss_class(cls, origin):
    """Raise ``TypeError`` naming everything ``cls`` lacks to follow the loss contract (:mod:`.base`)."""
    if not (inspect.isclass(cls) and issubclass(cls, Loss)):
        raise TypeError(f"{origin} must be a subclass of sklearn_costs.losses.Loss; got {cls!r}")
    if cls.task not in TASKS:
        raise TypeError(f"{origin} declares task {cls.task!r}; it must be one of {TASKS}")
    problems = contract_violations(cls)
    if problems:
        raise TypeError(
            f"{origin} does not follow the loss contract: {'; '.join(problems)}. The contract is the docstring of "
            "sklearn_costs.losses.base (the 'Writing and publishing a loss plugin' page of the documentation)."
        )


def _discover() -> dict[tuple[str, str], LossInfo]:
    global _DISCOVERED
    if _DISCOVERED is not None:
        return _DISCOVERED
    found = {key: LossInfo(cls.name, cls.task, BUILTIN_SOURCE, cls) for key, cls in _BUILTINS.items()}
    broken: dict[str, LossInfo] = {}
    eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, _dist_name(ep)))
    for ep in eps:
        source = _dist_name(ep)
        try:
            cls = ep.load()
            _check_loss_class(cls, origin=f"entry point {ep.name!r} ({ep.value})")
        except Exception as exc:  # a broken plugin must never break the other losses
            warnings.warn(
                f"loss plugin {ep.name!r} from distribution {source!r} ({ep.value}) could not be loaded and is "
                f"skipped: {type(exc).__name__}: {exc}",
                LossPluginWarning,
                stacklevel=3,
            )
            broken[ep.name] = LossInfo(ep.name, None, source, None, ep.value, exc)
            continue
        key = (cls.task, ep.name)
        if key in found:
            kept = found[key]
            warnings.warn(
                f"two distributions register the {cls.task!r} loss {ep.name!r}: {kept.source!r} and {source!r}; "
                f"using the one from {kept.source!r}. Uninstall one of them or pass the loss class directly.",
                LossPluginWarning,
                stacklevel=3,
            )
            continue
        found[key] = LossInfo(ep.name, cls.task, source, cls, ep.value)
    _BROKEN.clear()
    _BROKEN.update(broken)
    _DISCOVERED = found
    return found


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "<unknown distribution>"


def refresh() -> None:
    """Forget the cached discovery; the next lookup scans the entry points again.

    Examples
    --------
    >>> refresh()  # after installing a plugin package into a running session
    >>> "poisson" in [info.name for info in available_losses("counts")]
    True
    """
    global _DISCOVERED
    _DISCOVERED = None
    _BROKEN.clear()


def available_losses(task: str | None = None, include_broken: bool = False) -> list[LossInfo]:
    """Every registered loss (optionally for one task), sorted by task and name.

    Examples
    --------
    >>> [info.name for info in available_losses("continuous") if info.source == "sklearn-costs"]
    ['beta_nll', 'gaussian', 'laplace', 'mse', 'student_t']
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    infos = [info for (t, _), info in _discover().items() if task is None or t == task]
    if include_broken:
        infos += list(_BROKEN.values())
    return sorted(infos, key=lambda i: (i.task or "~", i.name))


def get_loss(loss, task: str, estimator: str = "this estimator", **options) -> Loss:
    """Resolve ``loss`` (a registered name, a :class:`Loss` subclass or instance) to a fresh instance for ``task``.

    ``options`` are loss parameters that the user set on the estimator (a triplet margin, a std floor): they are
    passed to the constructor of a name or a class, and set on a copy of an instance. The loss owns every default:
    an option not given keeps the loss's own value, and an option the loss does not take is an error.

    Raises
    ------
    ValueError
        Unknown name (the message lists the names available for ``task`` and a close match), a loss that
        serves another task, an option the loss does not take (the message names those it takes), or a loss
        parameter outside the loss's ``_parameter_constraints`` (``InvalidParameterError``, a ``ValueError``).
    TypeError
        ``loss`` is neither a name nor a loss, or its class does not follow the loss contract (the message names
        what it lacks).
    LossPluginError
        The name belongs to a plugin that failed to load.

    Examples
    --------
    >>> get_loss("negative_binomial", "counts")
    NegativeBinomialLoss(rate_link='log')
    >>> get_loss("gaussain", "continuous")
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    if isinstance(loss, str):
        registry = _discover()
        key = (task, loss)
        if key not in registry:
            if loss in _BROKEN:
                info = _BROKEN[loss]
                raise LossPluginError(
                    f"loss {loss!r} comes from the plugin distribution {info.source!r} ({info.target}), which "
                    f"failed to load: {type(info.error).__name__}: {info.error}. Fix or reinstall that package."
                ) from info.error
            other = [t for (t, n) in registry if n == loss]
            if other:
                raise ValueError(_wrong_task_message(loss, other[0], task, estimator))
            names = sorted(n for (t, n) in registry if t == task)
            close = difflib.get_close_matches(loss, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {task!r} loss {loss!r}.{hint} Available {task!r} losses: {', '.join(names)}.")
        cls = registry[key].cls
        instance = cls(**_checked_options(cls, options, loss, estimator))
        instance.check_parameters()
        return instance
    if inspect.isclass(loss) and issubclass(loss, Loss):
        cls = loss
    elif isinstance(loss, Loss):
        cls = type(loss)
    else:
        raise TypeError(
            f"loss must be a registered name, a sklearn_costs.losses.Loss subclass or instance; got {loss!r}"
        )
    if cls.task != task:
        raise ValueError(_wrong_task_message(cls.name or cls.__name__, cls.task, task, estimator))
    _check_loss_class(cls, origin=f"loss={cls.__name__}")
    options = _checked_options(cls, options, cls.name or cls.__name__, estimator)
    instance = loss(**options) if cls is loss else clone(loss).set_params(**options)
    instance.check_parameters()
    return instance


def loss_options(cls) -> list[str]:
    """The options (constructor parameters) that the loss class ``cls`` takes.

    Examples
    --------
    >>> from sklearn_costs.losses import SquaredErrorLoss
    >>> loss_options(SquaredErrorLoss)
    ['min_std']
    """
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


def _checked_options(cls, options, name, estimator) -> dict:
    """``options``, after checking that the loss ``cls`` takes each of them (``ValueError`` naming those it
    does take and the way out otherwise)."""
    accepted = loss_options(cls)
    refused = [option for option in options if option not in accepted]
    if refused:
        takes = ", ".join(accepted) if accepted else "none"
        raise ValueError(
            f"the loss {name!r} takes no option {', '.join(map(repr, refused))} (its options: {takes}), so "
            f"{estimator}'s {', '.join(refused)} would have no effect. Leave {' and '.join(refused)} at None (the "
            "loss's own default) or choose a loss that takes it."
        )
    return options


def _wrong_task_message(name, has, needs, estimator):
    names = ", ".join(sorted(n for (t, n) in _discover() if t == needs))
    return (
        f"loss {name!r} serves the {has!r} task, but {estimator} needs a {needs!r} loss. Choose one of: {names}."
    )
