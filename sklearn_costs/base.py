"""The shared estimator base: parameters, their validation, the data's validation and the hooks of each estimator.

Every estimator of the package *holds* a skorch net (``net_``) built in ``fit`` rather than being one, so that its
constructor stores only its own parameters and ``clone``/``GridSearchCV`` see a plain scikit-learn estimator.
"""

from __future__ import annotations

import functools
import inspect
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._device import (
    FUSED_OPTIMIZERS,
    OPTIMIZERS,
    THREAD_WORK,
    as_tensor,
    fused_update_supported,
    match_fused_update,
    resolve_device,
    resolve_threads,
)
from ._docs import COMMON_PARAMETERS, default_text, fill_common_parameters
from ._lifecycle import MIN_ROWS_FOR_VALIDATION, NetLifecycle
from ._pynapple import features_to_pandas, to_pandas
from ._training import PRECISIONS, Criterion
from ._validation import (
    AUTO,
    DEVICE,
    LAYER_SIZES,
    LOSS,
    OPTIMIZER_CLASS,
    POSITIVE_INT,
    POSITIVE_REAL,
    Constraint,
    ParameterChecks,
    is_int,
)
from .losses import get_loss
from .modules import ACTIVATIONS

#: Names that other modules and users import from here; they live in the modules named above.
__all__ = ["COMMON_PARAMETERS", "FUSED_OPTIMIZERS", "MIN_ROWS_FOR_VALIDATION", "OPTIMIZERS", "THREAD_WORK",
           "NeuralCostEstimator", "as_tensor", "default_text", "fill_common_parameters", "fused_update_supported",
           "keeps_state_on_error", "layer_sizes", "match_fused_update", "names_the_estimator", "resolve_device",
           "resolve_threads", "shared_arguments"]

def layer_sizes(value) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of ints: one width (an int) or a sequence of widths."""
    return (int(value),) if isinstance(value, numbers.Integral) else tuple(int(v) for v in value)


def shared_arguments(arguments: dict) -> dict:
    """The arguments of :class:`NeuralCostEstimator`'s constructor, picked from a subclass constructor's
    ``locals()``: each estimator lists every parameter in its own signature (as scikit-learn requires) and hands
    the shared ones to the base in one line."""
    names = list(inspect.signature(NeuralCostEstimator.__init__).parameters)[1:]
    return {name: arguments[name] for name in names}


def names_the_estimator(method):
    """Decorate a method defined on a private base class so that a call with wrong arguments raises a TypeError
    naming the user's estimator (``PoissonSpikeRegressor.fit() got an unexpected keyword argument
    'sample_weight'``) rather than the base class that happens to define the method."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}.{method.__name__}() {exc}") from None
        return method(self, *args, **kwargs)

    return wrapper


def keeps_state_on_error(fit):
    """Decorate ``fit`` so that an exception (bad parameters, bad input, diverged training) or a
    ``KeyboardInterrupt`` (Ctrl-C) leaves the estimator as it was; a call with wrong arguments names the user's
    estimator (see :func:`names_the_estimator`)."""

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        state = self.__dict__.copy()
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    return names_the_estimator(wrapper)


class NeuralCostEstimator(NetLifecycle, ParameterChecks, BaseEstimator):
    """Base of the estimators: a network trained by skorch on a likelihood chosen by ``loss``.

    Subclasses set ``_task`` (the loss task) and ``_validation_split`` (``"random"`` or ``"tail"``), implement
    ``_build_module(X, y, loss, hidden_layer_sizes, weight)``, extend ``_parameter_constraints`` with their own
    parameters (``{**NeuralCostEstimator._parameter_constraints, "name": [...]}``), and call :meth:`_begin_fit` first,
    :meth:`_resolve_loss` before the loss is needed and :meth:`_fit_tensors` last from a ``fit`` decorated with
    :func:`keeps_state_on_error`.
    """

    #: The valid values of every constructor parameter, in scikit-learn's constraint language
    #: (``sklearn.utils._param_validation``), checked by ``_validate_params()`` at the start of ``fit``: a value
    #: is valid when it satisfies one constraint of its list. Declared once here for the shared parameters.
    _parameter_constraints: dict = {
        "loss": [LOSS],
        "hidden_layer_sizes": [LAYER_SIZES],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_epochs": [POSITIVE_INT],
        "batch_size": [POSITIVE_INT, Constraint("-1 (the whole data)", lambda v: is_int(v) and v == -1), AUTO],
        "lr": [POSITIVE_REAL],
        "optimizer": [StrOptions(set(OPTIMIZERS)), OPTIMIZER_CLASS],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [POSITIVE_INT],
        "warm_start": ["boolean"],
        "device": [DEVICE],
        "precision": [StrOptions(set(PRECISIONS))],
        "n_threads": [POSITIVE_INT, None, AUTO],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    _task: str = ""
    _validation_split: str = "random"
    #: A key of ``_training.BATCHING``: ``"slices"`` cuts batches from the in-memory tensors, ``"dataloader"`` is
    #: skorch's default per-row path (kept for tests and benchmarks, which show both train the same network).
    _batching: str = "slices"
    #: Parameters (as resolved for the fit, see :meth:`_setting`) of a subclass that shape its network: a warm
    #: start needs them unchanged.
    _network_parameters: tuple[str, ...] = ()
    #: The dtype each training batch's targets take (None: as stored): a regressor keeps counts in their compact
    #: integer dtype and trains on float32 batches.
    _batch_target_dtype = None
    #: Parameters of a subclass that are options of its loss (a std floor, a triplet margin): see
    #: :meth:`_loss_options`.
    _loss_option_names: tuple[str, ...] = ()

    def __init__(
        self,
        loss,
        *,
        hidden_layer_sizes,
        activation,
        dropout,
        max_epochs,
        batch_size,
        lr,
        optimizer,
        weight_decay,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        warm_start,
        device,
        precision,
        n_threads,
        random_state,
        verbose,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------- hooks

    def _loss_options(self) -> dict:
        """The loss options the user set on the estimator (``_loss_option_names`` not left at None or "auto"):
        :func:`~sklearn_costs.losses.get_loss` hands them to the loss, which owns every default and refuses an
        option it does not take."""
        values = {name: getattr(self, name) for name in self._loss_option_names}
        return {name: value for name, value in values.items()
                if value is not None and not (isinstance(value, str) and value == "auto")}

    def _build_module(self, X: torch.Tensor, y: torch.Tensor, loss, hidden, weight=None) -> torch.nn.Module:
        """The network for training data ``X``, ``y`` (``weight``: sample weights or None, for statistics such as
        the input standardisation)."""
        raise NotImplementedError

    def _criterion(self, loss) -> Criterion:
        return _LossCriterion(loss)

    def _iterator_train(self):
        return {}

    def _resolve_settings(self, X: np.ndarray, y: np.ndarray) -> dict:
        """Hook: the settings that depend on the data, as ``{name: value}``, with a value for every name whether
        its parameter is ``"auto"`` (resolved from ``X`` and ``y``) or explicit (taken as given). Each becomes the
        fitted attribute ``name_``; ``max_epochs`` and ``n_iter_no_change`` among them replace the parameters in
        training."""
        return {}

    def _apply_settings(self, X, y):
        """Resolve the data-dependent settings (:meth:`_resolve_settings`) into fitted attributes; called by ``fit``
        on validated data before the loss and the network are built. A :meth:`partial_fit` that continues keeps
        the settings of the first chunk."""
        settings = self._resolve_settings(X, y)
        if self._continues_partial_fit():
            # a parameter left at "auto" keeps the first chunk's value; one given explicitly is taken, and the
            # network spec check (_check_warm_start) refuses it if it would change the network being continued
            params = self.get_params(deep=False)
            settings = {name: value for name, value in settings.items()
                        if name in params and not (isinstance(params[name], str) and params[name] == "auto")}
        for name, value in settings.items():
            setattr(self, name + "_", value)
        if settings and self.verbose:
            print(f"{type(self).__name__} settings: " + ", ".join(f"{k}={v!r}" for k, v in settings.items()))

    def _setting(self, name):
        """A training setting as resolved for this fit (``name_``), else the parameter itself."""
        return getattr(self, name + "_") if hasattr(self, name + "_") else getattr(self, name)

    def _predictions_of(self, loss):
        """A function from the module's output to the point predictions made from it (in the units of the
        training targets the network sees), or None when there are none (embeddings): the divergence guard checks
        them on the training data."""
        return None

    def _data_shape(self, X: torch.Tensor, y: torch.Tensor) -> dict:
        """The shape of the data the network is built for, ``{what: value}``; see :meth:`_network_spec`."""
        return {"features": X.shape[1], "targets": y.shape[1]}

    # ----------------------------------------------------------------------------------- validation

    def _begin_fit(self):
        """Check every parameter before any data is read or any state changes.

        Each parameter's own range is checked by scikit-learn's ``_validate_params()`` against
        ``_parameter_constraints``; the rules that tie parameters together and the device (is that GPU there?) are
        checked here. The loss (its name, which the registry's message lists with a close match, and its
        parameters) is checked by :meth:`_resolve_loss`, which ``fit`` calls next, or once the data-dependent
        settings that a loss takes are resolved.
        """
        self._validate_params()
        if self._optimizer() is torch.optim.LBFGS and self.weight_decay:
            raise ValueError("optimizer='lbfgs' has no weight_decay; use weight_decay=0 or another optimizer")
        resolve_device(self.device)

    def _hidden_layer_sizes(self):
        return layer_sizes(self._setting("hidden_layer_sizes"))

    def _validate_X(self, X, reset, **kwargs):
        kwargs.setdefault("dtype", np.float32)
        X = features_to_pandas(X)  # a pynapple TsdFrame's columns become feature names; a Tsd is one column
        if "y" in kwargs:
            kwargs["y"] = to_pandas(kwargs["y"])
        # a partial_fit that continues checks the columns against the first chunk's, as predict does
        return validate_data(self, X, reset=reset and not self._continues_partial_fit(), **kwargs)

    def _continues_partial_fit(self) -> bool:
        """Whether this ``fit`` is a :meth:`partial_fit` continuing a fitted network (the statistics, settings and
        columns of the first chunk are kept)."""
        return getattr(self, "_partial_fit_continues", False)

    @keeps_state_on_error
    def partial_fit(self, X, y, **fit_params):
        """Train one epoch on ``(X, y)``, continuing the network fitted so far: for data that arrives in chunks.

        The first call builds the network from its chunk: the input (and target) standardisation and every
        ``"auto"`` setting come from that chunk and stay fixed; each later call runs one epoch over its chunk,
        which must have the same columns and number of targets. There is no early stopping (there is no held-out
        part of a chunk to stop on), and ``max_epochs``, ``early_stopping`` and ``warm_start`` are ignored;
        ``n_iter_`` counts the epochs of all calls. ``fit_params`` are those of :meth:`fit` (``sample_weight``).
        A later ``fit`` starts afresh (or continues, with ``warm_start=True``).

        A parameter that shapes the network (as for ``warm_start``: the loss, the architecture, the optimizer, the
        estimator's own network parameters such as ``n_members``) cannot change between calls: ``partial_fit``
        then raises ``ValueError`` naming what changed, and the model stays as it was (call ``fit`` to train a
        new network). One left at ``"auto"`` keeps the value resolved from the first chunk. The training
        parameters (``lr``, ``weight_decay``, ``batch_size``, ``device``, ...) are taken by each call.

        Returns
        -------
        self
        """
        self._validate_params()  # the parameters as given, before those that partial_fit sets aside
        continuing = hasattr(self, "net_")
        overrides = {"max_epochs": 1, "early_stopping": False, "warm_start": continuing}
        saved = {name: getattr(self, name) for name in overrides}
        self.set_params(**overrides)
        self._partial_fit_continues = continuing
        try:
            return self.fit(X, y, **fit_params)
        finally:
            self.set_params(**saved)
            del self._partial_fit_continues

    def _resolve_loss(self):
        return get_loss(self._loss_choice(), self._task, estimator=type(self).__name__, **self._loss_options())

    def _loss_choice(self):
        """Hook: the loss that :meth:`_resolve_loss` resolves: the ``loss`` parameter, or the loss that an
        estimator's own ``"auto"`` stands for in this fit."""
        return self.loss

    def _optimizer(self):
        return OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer

    def __setstate__(self, state):
        super().__setstate__(state)
        # trained on a GPU and unpickled where there is none: the net was loaded onto the CPU, and said so (a net
        # that a deepcopy reaches this estimator from, through its callbacks, has no state yet: None)
        net_device = getattr(state.get("net_"), "device", None)
        if net_device is not None and "device_" in state and str(net_device) != self.device_:
            self.device_ = str(net_device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class _LossCriterion(Criterion):
    """Adapts a loss of the contract to skorch's ``criterion(y_pred, y_true)`` call."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, y_pred, y_true):
        if isinstance(y_true, (tuple, list)):  # (targets, sample weights)
            return self.loss(y_pred, *y_true)
        return self.loss(y_pred, y_true)


