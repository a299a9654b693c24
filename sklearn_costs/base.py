"""The shared estimator base: validation, device, seeding, the skorch net built in ``fit``, history, early stopping.

Every estimator of the package *holds* a skorch net (``net_``) built in ``fit`` rather than being one, so that its
constructor stores only its own parameters and ``clone``/``GridSearchCV`` see a plain scikit-learn estimator.
"""

from __future__ import annotations

import copy
import functools
import inspect
import numbers
import re
import sys
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import PrintLog, ProgressBar

from ._pynapple import to_pandas
from ._training import (
    BATCHING,
    PRECISIONS,
    CostNet,
    DivergenceGuard,
    EarlyStopping,
    TensorDataset,
    ValidationSplit,
    loading_device,
)
from ._validation import (
    AUTO,
    DEVICE,
    LAYER_SIZES,
    LOSS,
    OPTIMIZER_CLASS,
    POSITIVE_INT,
    POSITIVE_REAL,
    Constraint,
    is_int,
)
from .losses import Loss, get_loss
from .modules import ACTIVATIONS

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "lbfgs": torch.optim.LBFGS,
}

#: Optimizers that run their update as one fused kernel over all the weights (PyTorch >= 2.4 on the CPU, and on
#: CUDA): a small network's update is otherwise a loop of several kernels per weight tensor, a third of a training
#: step at batch 128 (the update of a 12-64-64-50 MLP: 402 against 116 microseconds, one thread; fits 1.2-1.3x
#: faster at batch 128, see docs/scaling.rst).
FUSED_OPTIMIZERS = ("adam", "adamw")


def fused_update_supported() -> bool:
    """Whether this PyTorch runs fused Adam and AdamW updates on the CPU (2.4 and later)."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 4)


def match_fused_update(optimizer, name):
    """Set an Adam or AdamW ``optimizer`` (restored from a model saved elsewhere, or continued by a warm start) to
    the fused update exactly when this PyTorch has it: a saved state carries the ``fused`` flag of the PyTorch that
    saved it, which an older one cannot run."""
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        fused = name in FUSED_OPTIMIZERS and fused_update_supported()
        for group in optimizer.param_groups:
            group["fused"] = fused or None


#: Below this many rows early stopping is skipped: a validation split of one or two rows only adds noise.
MIN_ROWS_FOR_VALIDATION = 20


def resolve_device(device) -> str:
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when present) to a torch device string.

    Raises ``ValueError`` for CUDA on a machine without it, saying which device to use instead.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not DEVICE.is_satisfied_by(device):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    # "cuda" or "cuda:N"
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for, but PyTorch finds no CUDA device on this machine "
            f"(torch {torch.__version__}). Use device='cpu', or device='auto' to take a GPU only when present."
        )
    index = device.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def as_tensor(array: np.ndarray, device) -> torch.Tensor:
    """The array as a tensor on ``device``, sharing its memory when it can.

    Read-only arrays (pandas' copy-on-write frames, memory maps) are shared too: training and prediction only read
    them, so PyTorch's warning about non-writable arrays would be noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(array, device=device)


#: ``n_threads="auto"``: one PyTorch thread when a training step costs fewer multiply-adds than this (rows of a batch
#: times the network's weights), PyTorch's own thread count above it. Measured on 2 cores: with nothing else
#: running, 5 x (64, 64) networks at batch 16 (4e5) trained 1.8x faster on one thread than on two, at batch 147
#: (3.5e6) alike, and networks of 2e6 to 2e8 multiply-adds 1.3-2.5x faster on two; with another job running, two
#: threads made the batch-147 fit 7x slower (30 s against 4). Below 1e7 one thread loses little alone and wins
#: much when the cores are shared.
THREAD_WORK = 10_000_000


def resolve_threads(n_threads, module: torch.nn.Module, batch_size: int, device: str):
    """The thread count a fit uses: ``n_threads`` unless it is ``"auto"``, which gives 1 for a network whose
    training step is too small to share between threads (``batch_size`` x its weights below ``THREAD_WORK``) and
    None (PyTorch's own setting) otherwise, or on a GPU."""
    if n_threads != "auto":
        return n_threads
    if device != "cpu":
        return None
    weights = sum(p.numel() for p in module.parameters())
    return 1 if batch_size * weights < THREAD_WORK else None


def layer_sizes(value) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of ints: one width (an int) or a sequence of widths."""
    return (int(value),) if isinstance(value, numbers.Integral) else tuple(int(v) for v in value)


@contextmanager
def _torch_threads(n_threads):
    """Run with ``n_threads`` intra-op threads (``None``: leave PyTorch's setting alone)."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


COMMON_PARAMETERS = """\
{members_doc}hidden_layer_sizes : {hidden_type}, default={hidden_layer_sizes}
        Widths of the hidden layers, each at least 1; ``()`` for none.{hidden_doc}
    activation : {{"relu", "tanh", "logistic", "gelu", "elu", "silu", "softplus"}}, default="relu"
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden layer.
    max_epochs : {epochs_type}, default={max_epochs}{epochs_doc}
    batch_size : int >= 1, -1 or "auto", default={batch_size}
        Rows per gradient step; -1 for the whole training set. ``"auto"`` takes ``n_rows // 50`` clipped to
        [16, 256]: small data sets get the many small steps they need within an epoch, large ones big batches.
    lr : float > 0, default={lr}
        Learning rate.
    optimizer : {{"adam", "adamw", "sgd", "rmsprop", "lbfgs"}} or torch optimizer class, default="adam"
        ``"adam"`` and ``"adamw"`` update all the weights in one fused kernel (PyTorch 2.4 and later): a fit of
        a small network in batches of 128 takes a fifth less time.
    weight_decay : float >= 0, default={weight_decay}
        L2 penalty passed to the optimizer (``"lbfgs"`` has none: 0 only).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training rows ({split}), stop after ``n_iter_no_change``
        epochs without a better validation loss and keep the weights of the best epoch. Skipped below
        20 rows.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : {patience_type}, default={n_iter_no_change}
        Epochs without improvement before stopping.{patience_doc}
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` instead of starting afresh. It continues only
        the network it was built for: the same ``loss`` (and loss settings), the same architecture
        (``hidden_layer_sizes``, ``activation``, ``dropout`` and the estimator's own network parameters) and
        data of the same shape (number of features, or image shape, and number of targets); otherwise ``fit``
        raises ``ValueError`` naming what changed and leaves the fitted model as it was. Set
        ``warm_start=False`` to train a new network then.
    device : {{"cpu", "cuda", "cuda:N", "auto"}}, default="cpu"
        Where the network trains; ``"auto"`` takes a GPU when PyTorch finds one. The data is moved to the device
        once, and batches are cut there.
    precision : {{"float32", "bfloat16"}}, default="float32"
        Arithmetic of the network's forward pass. ``"bfloat16"`` runs it under ``torch.autocast`` (mixed
        precision: matrix products in bfloat16, the loss and the weights in float32), which speeds up large
        networks on GPUs with bfloat16 units. (float16 is not offered: without loss scaling its gradients
        underflow, and bfloat16 has float32's range.) Predictions are returned in float32
        or float64 either way.
    n_threads : int >= 1, None or "auto", default={n_threads}
        PyTorch CPU threads during fit and predict; None leaves PyTorch's own setting; ``"auto"`` takes one thread
        for a network whose training step is too small to share between threads (batch rows x weights below
        ten million, see ``sklearn_costs.base.resolve_threads``) and PyTorch's setting otherwise, reported as
        ``n_threads_``. Set 1 when several fits run side by side on few cores (``GridSearchCV(n_jobs=...)``),
        where threads would compete.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batches and the validation split: equal seeds give equal predictions.
    verbose : int >= 0, default=0
        1 prints a table of epochs (coloured only on a terminal), 2 adds a progress bar."""


def fill_common_parameters(split, **defaults):
    """Class decorator: put the shared parameter descriptions where the docstring says ``{common_parameters}``."""

    def decorate(cls):
        values = {"members_doc": "", "hidden_layer_sizes": "(64, 64)", "hidden_type": "tuple of int", "hidden_doc": "",
                  "n_threads": "None", "max_epochs": 200, "lr": 1e-3,
                  "weight_decay": 0.0, "n_iter_no_change": 10, "split": split, "batch_size": '"auto"',
                  "epochs_type": "int >= 1", "epochs_doc": "", "patience_type": "int >= 1", "patience_doc": "",
                  **defaults}
        cls.__doc__ = cls.__doc__.replace("{common_parameters}", COMMON_PARAMETERS.format(**values))
        return cls

    return decorate


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


class NeuralCostEstimator(BaseEstimator):
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

    def __init__(
        self,
        loss,
        *,
        hidden_layer_sizes=(64, 64),
        activation="relu",
        dropout=0.0,
        max_epochs=200,
        batch_size="auto",
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        device="cpu",
        precision="float32",
        n_threads=None,
        random_state=None,
        verbose=0,
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

    def _loss_defaults(self) -> dict:
        """Estimator parameters handed to a loss given by name (a triplet margin, a std floor)."""
        return {}

    def _build_module(self, X: torch.Tensor, y: torch.Tensor, loss, hidden, weight=None) -> torch.nn.Module:
        """The network for training data ``X``, ``y`` (``weight``: sample weights or None, for statistics such as
        the input standardisation)."""
        raise NotImplementedError

    def _criterion(self, loss) -> torch.nn.Module:
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
        if self._continues_partial_fit():
            return
        settings = self._resolve_settings(X, y)
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
        X = to_pandas(X)  # a pynapple TsdFrame's columns become feature names
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
        return get_loss(self.loss, self._task, estimator=type(self).__name__, **self._loss_defaults())

    def _optimizer(self):
        return OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer

    # ------------------------------------------------------------------------------------------- fit

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _fit_tensors(self, X: np.ndarray, y: np.ndarray, loss, sample_weight: np.ndarray | None = None):
        """Train on validated arrays (with validated sample weights, or None); the fitted state changes only if
        training succeeds."""
        hidden = self._hidden_layer_sizes()
        device = resolve_device(self.device)
        seed = self._seed()
        Xt, yt = as_tensor(X, device), as_tensor(y, device)
        # the objective is a weighted mean, so the weights' scale is free: the largest as 1 keeps float32 from
        # underflowing tiny ones
        wt = None if sample_weight is None else as_tensor((sample_weight / sample_weight.max()).astype(np.float32),
                                                          device)
        spec = self._network_spec(Xt, yt, loss, hidden)
        warm = self.warm_start and hasattr(self, "net_")
        if warm:
            self._check_warm_start(spec)
        # a warm start draws new batches (and dropout masks): the epochs so far offset the seed
        order_seed = seed + (len(self.net_.history) if warm else 0)
        with _seeded(order_seed, device):
            module = self.net_.module_ if warm else self._build_module(Xt, yt, loss, hidden, wt)
            batch = self._batch_size(len(Xt))
            threads = resolve_threads(self.n_threads, module, len(Xt) if batch == -1 else batch, device)
            with _torch_threads(threads if device == "cpu" else None):
                if warm:
                    net = copy.deepcopy(self.net_)
                    # the training settings of this fit (as MLPRegressor's warm start takes them); the architecture
                    # was checked to be unchanged above
                    epochs = self.max_epochs if self._continues_partial_fit() else self._setting("max_epochs")
                    net.set_params(device=device, lr=self.lr, max_epochs=epochs, batch_size=batch)
                    net.iterator_train__seed = order_seed  # (set_params would re-initialize the net for it)
                    self._set_validation(net, len(Xt), seed)
                    net.autocast_dtype = PRECISIONS[self.precision]
                    match_fused_update(net.optimizer_, self.optimizer)
                    net.partial_fit(TensorDataset(Xt, yt, wt, self._batch_target_dtype), None)
                else:
                    net = self._make_net(module, loss, device, seed, len(Xt))
                    net.fit(TensorDataset(Xt, yt, wt, self._batch_target_dtype), None)
                self._after_training(net, Xt, yt, loss, wt)
        self.net_ = net
        self._fitted_network_spec = spec
        self._fitted_training = {"n_rows": len(Xt), "seed": seed}  # to rebuild the net as it was (persistence)
        self.loss_ = loss
        self.device_ = device
        self.n_threads_ = threads
        self.history_ = _history_frame(net.history)
        self.n_iter_ = len(net.history)
        return self

    def _network_spec(self, X, y, loss, hidden) -> dict:
        """What the network is built for: the loss, the architecture and the shape of the data."""
        spec = {"loss": loss, "hidden_layer_sizes": hidden, "activation": self.activation, "dropout": self.dropout}
        spec.update((name, self._setting(name)) for name in self._network_parameters)
        spec.update(self._data_shape(X, y))
        return spec

    def _check_warm_start(self, spec):
        """Raise ``ValueError`` unless the fitted network was built for ``spec`` (a warm start would then train, or
        leave, a network that does not fit the data or the parameters)."""
        fitted = getattr(self, "_fitted_network_spec", None)
        if fitted is None:
            changes = ["the fitted network does not record what it was built for (it was fitted by an older "
                       "version of sklearn-costs)"]
        else:
            changes = [f"{name} changed from {fitted.get(name)!r} to {value!r}"
                       for name, value in spec.items() if not _same(fitted.get(name), value)]
        if changes:
            raise ValueError(
                f"warm_start=True continues training the fitted network, but {'; '.join(changes)}. That network "
                "was built for other settings or data; set warm_start=False to train a new one (the fitted model "
                "is left as it was)."
            )

    def _after_training(self, net, X, y, loss, weight):
        """Hook run on the trained net before it becomes the fitted state (``weight``: the sample weights or
        None)."""

    def _placeholder_data(self, spec):
        """Two rows of inputs and targets of the shapes in the network ``spec``: enough to build the network."""
        return torch.zeros(2, spec["features"]), torch.ones(2, spec["targets"])

    def _rebuild_net(self, state_dict, batch_size, optimizer_state=None):
        """The fitted net, built anew from the fitted settings and loaded with ``state_dict`` (its module's
        weights) and ``optimizer_state``: :mod:`sklearn_costs.persistence` loads a model this way instead of
        unpickling it."""
        spec = self._fitted_network_spec
        X, y = self._placeholder_data(spec)
        device = resolve_device(loading_device(self.device_))
        self.device_ = device
        training = getattr(self, "_fitted_training", {"n_rows": len(X), "seed": 0})
        with _seeded(0, "cpu"):
            module = self._build_module(X, y, self.loss_, spec["hidden_layer_sizes"])
        net = self._make_net(module, self.loss_, device, training["seed"], training["n_rows"])
        net.set_params(batch_size=batch_size)
        net.initialize()
        net.module_.load_state_dict(state_dict)
        net.module_.to(device)
        if optimizer_state is not None:
            net.optimizer_.load_state_dict(optimizer_state)
            match_fused_update(net.optimizer_, self.optimizer)
        # the epochs trained so far, so that a warm start counts on from them (n_iter_) as the saved net would
        for epoch, row in self.history_.iterrows():
            net.history.append({"epoch": int(epoch), "batches": [],
                                **{k: float(v) for k, v in row.items() if np.isfinite(v)}})
        return net

    def _validation(self, n_rows, seed):
        """The validation split and the early-stopping callback this fit trains with, or ``(None, None)``."""
        if not (self.early_stopping and n_rows >= MIN_ROWS_FOR_VALIDATION):
            return None, None
        stopping = EarlyStopping(patience=self._setting("n_iter_no_change"), load_best=True, sink=self._sink)
        return ValidationSplit(self.validation_fraction, self._validation_split, seed), stopping

    def _set_validation(self, net, n_rows, seed):
        """Give a (deep-copied, initialized) net the validation of this fit's parameters: a warm start or a
        partial_fit continues the network, not the training setup of the fit that built it."""
        net.train_split, stopping = self._validation(n_rows, seed)
        callbacks = [(name, cb) for name, cb in net.callbacks_ if name != "early_stopping"]
        if stopping is not None:  # after skorch's loss recording, before the divergence guard (as _make_net has it)
            guard = [name for name, _ in callbacks].index("divergence")
            callbacks.insert(guard, ("early_stopping", stopping.initialize()))
        net.callbacks_ = callbacks

    def _make_net(self, module, loss, device, seed, n_rows):
        optimizer = self._optimizer()
        optimizer_kwargs = {}
        if self.optimizer in FUSED_OPTIMIZERS and fused_update_supported():
            optimizer_kwargs["optimizer__fused"] = True
        if self.weight_decay:
            optimizer_kwargs["optimizer__weight_decay"] = self.weight_decay
        train_split, stopping = self._validation(n_rows, seed)
        callbacks = [] if stopping is None else [("early_stopping", stopping)]
        # after early stopping: its last check is of the best weights that early stopping restores
        callbacks.append(("divergence", DivergenceGuard(self.lr, self._predictions_of(loss))))
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        return CostNet(
            module=module,
            criterion=self._criterion(loss),
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self._setting("max_epochs"),
            batch_size=self._batch_size(n_rows),
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            autocast_dtype=PRECISIONS[self.precision],
            callbacks__print_log=TerminalPrintLog(),
            **{
                "iterator_train": BATCHING[self._batching],
                "iterator_valid": BATCHING[self._batching],
                "iterator_train__shuffle": True,
                "iterator_train__seed": seed,
                **self._iterator_train(),
            },
            **optimizer_kwargs,
        )

    def _batch_size(self, n_rows):
        if self.batch_size == "auto":
            return int(np.clip(n_rows // 50, 16, 256))
        return self.batch_size

    def _sink(self, message):
        if self.verbose:
            print(message)

    # ------------------------------------------------------------------------------------- inference

    def _forward(self, X: np.ndarray) -> torch.Tensor:
        """The module's output for validated ``X``, on the CPU, in eval mode, without gradients."""
        check_is_fitted(self, "net_")
        Xt = as_tensor(X, self.net_.device)
        threads = getattr(self, "n_threads_", None if self.n_threads == "auto" else self.n_threads)
        with _torch_threads(threads if self.net_.device == "cpu" else None):
            return self.net_.forward(TensorDataset(Xt), training=False, device="cpu")

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


class TerminalPrintLog(PrintLog):
    """skorch's epoch table, coloured only when stdout is a terminal: in a log file, a notebook's captured output or
    a pipe, ANSI colour codes are noise (``\x1b[32m0.1234\x1b[0m``)."""

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not _is_terminal(sys.stdout):
            text = self._ANSI.sub("", text)
        return text


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _LossCriterion(torch.nn.Module):
    """Adapts a loss of the contract to skorch's ``criterion(y_pred, y_true)`` call."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, y_pred, y_true):
        if isinstance(y_true, (tuple, list)):  # (targets, sample weights)
            return self.loss(y_pred, *y_true)
        return self.loss(y_pred, y_true)


def _same(a, b) -> bool:
    """Equality of two entries of a network spec: losses by their class and parameters, modules by identity."""
    if isinstance(a, Loss) or isinstance(b, Loss):
        return type(a) is type(b) and repr(a) == repr(b)
    if isinstance(a, torch.nn.Module) or isinstance(b, torch.nn.Module):
        return a is b
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # values without a plain truth value (arrays): compare their text
        return repr(a) == repr(b)


@contextmanager
def _seeded(seed, device):
    """Seed PyTorch's global generators (weights init, dropout) without disturbing the caller's state."""
    devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _history_frame(history) -> pd.DataFrame:
    columns = ["epoch", "train_loss", "valid_loss", "dur"]
    rows = [{c: row.get(c, np.nan) for c in columns} for row in history]
    return pd.DataFrame(rows, columns=columns).set_index("epoch")
