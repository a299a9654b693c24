"""The life cycle of an estimator's skorch net: built and trained in ``fit``, continued by a warm start or
``partial_fit``, rebuilt from a file, and run for predictions.

Every path to a trained net goes through one method, :meth:`NetLifecycle._prepared_net`: it builds a ``CostNet``
from the estimator's current parameters (criterion, optimizer, batches, validation split, callbacks) and, when it
continues a net, carries over that net's weights, optimizer state and history. ``fit`` then trains it with
skorch's ``partial_fit`` (one epoch loop for a new net and a continued one alike).
"""

from __future__ import annotations

import copy
import re
import sys

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import PrintLog, ProgressBar
from skorch.history import History

from ._device import (
    FUSED_OPTIMIZERS,
    as_tensor,
    auto_batch_size,
    fused_update_supported,
    match_fused_update,
    resolve_device,
    resolve_threads,
    seeded,
    torch_threads,
)
from ._divergence import DivergenceGuard
from ._training import (
    BATCHING,
    PRECISIONS,
    CostNet,
    EarlyStopping,
    TensorDataset,
    ValidationSplit,
    loading_device,
)
from .losses import Loss

#: Below this many rows early stopping is skipped: a validation split of one or two rows only adds noise.
MIN_ROWS_FOR_VALIDATION = 20


class NetLifecycle:
    """The half of :class:`~sklearn_costs.base.NeuralCostEstimator` that builds, trains, continues, restores and
    runs its net (``net_``); the other half validates parameters and data and declares the hooks these methods
    call (``_build_module``, ``_criterion``, ``_iterator_train``, ``_setting``, ...)."""

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _continues_fitted_net(self) -> bool:
        """Whether this fit continues training the fitted net (``warm_start``, which a continuing ``partial_fit``
        sets) rather than building a new one."""
        return self.warm_start and hasattr(self, "net_")

    def _fit_tensors(self, X: np.ndarray, y: np.ndarray, loss, sample_weight: np.ndarray | None = None):
        """Train on validated arrays (with validated sample weights, or None): a new net, or with ``warm_start``
        (and in a continuing ``partial_fit``) the fitted one continued. The fitted state changes only if training
        succeeds."""
        hidden = self._hidden_layer_sizes()
        device = resolve_device(self.device)
        seed = self._seed()
        Xt, yt = as_tensor(X, device), as_tensor(y, device)
        # the objective is a weighted mean, so the weights' scale is free: the largest as 1 keeps float32 from
        # underflowing tiny ones
        wt = None if sample_weight is None else as_tensor((sample_weight / sample_weight.max()).astype(np.float32),
                                                          device)
        spec = self._network_spec(Xt, yt, loss, hidden)
        previous = self.net_ if self._continues_fitted_net() else None
        if previous is not None:
            self._check_warm_start(spec)
        # a continued net draws new batches (and dropout masks): the epochs so far offset the seed
        order_seed = seed + (len(previous.history) if previous is not None else 0)
        with seeded(order_seed, device):
            if previous is None:
                module = self._build_module(Xt, yt, loss, hidden, wt)
            else:
                module = copy.deepcopy(previous.module_)
            batch = self._batch_size(len(Xt), device)
            threads = resolve_threads(self.n_threads, module, len(Xt) if batch == -1 else batch, device)
            with torch_threads(threads if device == "cpu" else None):
                net = self._prepared_net(module, loss, device, seed, len(Xt), order_seed=order_seed,
                                         batch_size=batch, continues=previous)
                net.partial_fit(TensorDataset(Xt, yt, wt, self._batch_target_dtype), None)
                self._after_training(net, Xt, yt, loss, wt)
        self.net_ = net
        self._fitted_network_spec = spec
        self._fitted_training = {"n_rows": len(Xt), "seed": seed}  # to rebuild the net as it was (persistence)
        self.loss_ = loss
        self.device_ = device
        self.n_threads_ = threads
        self.batch_size_ = batch
        self.history_ = _history_frame(net.history)
        self.n_iter_ = len(net.history)
        return self

    def _prepared_net(self, module, loss, device, seed, n_rows, *, order_seed=None, batch_size=None,
                      continues=None, optimizer_state=None, history=None, criterion_state=None):
        """The one way to an initialized net, ready to train or predict: built from the current parameters around
        ``module`` (new, continued or restored weights) and ``loss``, with the validation split of ``seed`` and
        batches in the order of ``order_seed`` (default ``seed``).

        A net that ``continues`` another (a warm start, a continuing ``partial_fit``) takes over its criterion's
        learned parameters (``Criterion.continue_from``: a proxy loss's proxies, by identity), optimizer state and
        history; a restored one (:meth:`rebuild_net`) takes ``criterion_state``, ``optimizer_state`` and
        ``history`` (rows of skorch's history) from a file. The training settings (``lr``, ``weight_decay``,
        ``batch_size``, epochs, validation, callbacks, precision, device) are always those of the current
        parameters.
        """
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
        net = CostNet(
            module=module,
            criterion=self._criterion(loss),
            optimizer=self._optimizer(),
            lr=self.lr,
            max_epochs=self._setting("max_epochs"),
            batch_size=self._batch_size(n_rows, device) if batch_size is None else batch_size,
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
                "iterator_train__seed": seed if order_seed is None else order_seed,
                **self._iterator_train(),
            },
            **optimizer_kwargs,
        )
        net.initialize()
        if criterion_state is not None:
            net.criterion_.load_state_dict(criterion_state)
        if continues is not None:
            moved = net.criterion_.continue_from(continues.criterion_)
            optimizer_state = _following_rows(continues.optimizer_.state_dict(), net.optimizer_, moved)
            history = continues.history
        if optimizer_state is not None:
            net.optimizer_.load_state_dict(optimizer_state)
            match_fused_update(net.optimizer_, self.optimizer)
            for group in net.optimizer_.param_groups:  # the state's own step sizes give way to the parameters
                group["lr"] = self.lr
                if "weight_decay" in group:  # (LBFGS has none; it must be 0 there)
                    group["weight_decay"] = self.weight_decay
        if history is not None:
            net.history = History(copy.deepcopy(list(history)))
        return net

    def _network_spec(self, X, y, loss, hidden) -> dict:
        """What the network is built for: the loss, the architecture and the shape of the data."""
        spec = {"loss": loss, "hidden_layer_sizes": hidden, "activation": self.activation, "dropout": self.dropout,
                "optimizer": self.optimizer}
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
            # (an entry that a model fitted by an older version did not record is not compared)
            changes = [f"{name} changed from {fitted[name]!r} to {value!r}"
                       for name, value in spec.items() if name in fitted and not _same(fitted[name], value)]
        if changes:
            if self._continues_partial_fit():
                continuing, way_out = ("partial_fit continues training the network fitted so far",
                                       "call fit to train a new one with these settings")
            else:
                continuing, way_out = "warm_start=True continues training the fitted network", \
                    "set warm_start=False to train a new one"
            raise ValueError(
                f"{continuing}, but {'; '.join(changes)}. That network was built for other settings or data; "
                f"{way_out} (the fitted model is left as it was)."
            )

    def _after_training(self, net, X, y, loss, weight):
        """Hook run on the trained net before it becomes the fitted state (``weight``: the sample weights or
        None)."""

    def _placeholder_data(self, spec):
        """Two rows of inputs and targets of the shapes in the network ``spec``: enough to build the network."""
        return torch.zeros(2, spec["features"]), torch.ones(2, spec["targets"])

    def rebuild_net(self, state_dict, batch_size, optimizer_state=None, criterion_state=None):
        """The fitted net, built anew from the fitted settings (``_fitted_network_spec``, ``_fitted_training``)
        around ``state_dict`` (its module's weights), with ``criterion_state`` (its criterion's learned parameters,
        if it has any), ``optimizer_state`` and the epochs of ``history_``: how
        :func:`sklearn_costs.persistence.load` restores a model instead of unpickling it."""
        spec = self._fitted_network_spec
        X, y = self._placeholder_data(spec)
        device = resolve_device(loading_device(self.device_))
        self.device_ = device
        training = getattr(self, "_fitted_training", {"n_rows": len(X), "seed": 0})
        with seeded(0, "cpu"):
            module = self._build_module(X, y, self.loss_, spec["hidden_layer_sizes"])
        module.load_state_dict(state_dict)
        # the epochs trained so far, so that a warm start counts on from them (n_iter_) as the saved net would
        history = [{"epoch": int(epoch), "batches": [], **{k: float(v) for k, v in row.items() if np.isfinite(v)}}
                   for epoch, row in self.history_.iterrows()]
        return self._prepared_net(module, self.loss_, device, training["seed"], training["n_rows"],
                                  batch_size=batch_size, optimizer_state=optimizer_state, history=history,
                                  criterion_state=criterion_state)

    def _validation(self, n_rows, seed):
        """The validation split and the early-stopping callback this fit trains with, or ``(None, None)``."""
        if not (self.early_stopping and n_rows >= MIN_ROWS_FOR_VALIDATION):
            return None, None
        stopping = EarlyStopping(patience=self._setting("n_iter_no_change"), load_best=True, sink=self._sink)
        return ValidationSplit(self.validation_fraction, self._validation_split, seed), stopping

    #: Whether ``batch_size="auto"`` follows the device (:func:`auto_batch_size`); the embedder's does not.
    _device_aware_batch = True

    def _batch_size(self, n_rows, device="cpu"):
        if self.batch_size == "auto":
            return auto_batch_size(n_rows, device if self._device_aware_batch else "cpu")
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
        with torch_threads(threads if self.net_.device == "cpu" else None):
            return self.net_.forward(TensorDataset(Xt), training=False, device="cpu")


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


def _following_rows(state, optimizer, moved):
    """The optimizer ``state`` (a ``state_dict``) of a continued net, for ``optimizer``, the continuing net's: the
    per-element state of each parameter in ``moved`` (``{parameter: remap}``, from ``Criterion.continue_from``:
    parameters whose rows moved or grew) remapped to its new rows. L-BFGS keeps one history over all the
    parameters, which no longer fits them: it starts afresh."""
    if not moved:
        return state
    if isinstance(optimizer, torch.optim.LBFGS):
        return {**state, "state": {}}
    index = {id(p): i for i, p in enumerate(p for group in optimizer.param_groups for p in group["params"])}
    entries = dict(state["state"])
    for parameter, remap in moved.items():
        i = index[id(parameter)]
        if i in entries:  # a per-element tensor (a moment, a momentum) follows the rows; a step count stays
            entries[i] = {key: remap(value) if torch.is_tensor(value) and value.dim() == parameter.dim() else value
                          for key, value in entries[i].items()}
    return {**state, "state": entries}


def _history_frame(history) -> pd.DataFrame:
    columns = ["epoch", "train_loss", "valid_loss", "dur"]
    rows = [{c: row.get(c, np.nan) for c in columns} for row in history]
    return pd.DataFrame(rows, columns=columns).set_index("epoch")
