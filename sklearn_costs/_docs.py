"""The estimators' shared parameter descriptions, filled into each docstring with the defaults of its signature."""

from __future__ import annotations

import inspect

COMMON_PARAMETERS = """\
{members_doc}hidden_layer_sizes : {hidden_type}, default={hidden_layer_sizes}
        Widths of the hidden layers, each at least 1; ``()`` for none.{hidden_doc}
    activation : {{"relu", "tanh", "logistic", "gelu", "elu", "silu", "softplus"}}, default="relu"
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden layer.
    max_epochs : {epochs_type}, default={max_epochs}{epochs_doc}
    batch_size : int >= 1, -1 or "auto", default={batch_size}
        Rows per gradient step; -1 for the whole training set. ``"auto"`` takes ``n_rows // 50`` clipped to
        [16, 256] on a CPU and to [16, 4096] on a GPU (the regressors; the embedder keeps the CPU's rule): small
        data sets get the many small steps they need within an epoch, large ones big batches, and a GPU, whose
        steps cost about the same from hundreds to thousands of rows, the bigger ones. Reported as
        ``batch_size_``.
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
        the network it was built for: the same ``loss`` (and loss options), the same architecture
        (``hidden_layer_sizes``, ``activation``, ``dropout`` and the estimator's own network parameters), the same
        ``optimizer`` and data of the same shape (number of features, or image shape, and number of targets);
        otherwise ``fit`` raises ``ValueError`` naming what changed and leaves the fitted model as it was. Set
        ``warm_start=False`` to train a new network then. The training parameters (``lr``, ``weight_decay``,
        ``batch_size``, ``max_epochs``, early stopping, ``device``, ``precision``, ``n_threads``) are taken from
        the parameters of each ``fit``; :meth:`partial_fit` follows the same rule.
    device : {{"cpu", "cuda", "cuda:N", "auto"}}, default="cpu"
        Where the network trains; ``"auto"`` takes a GPU when PyTorch finds one. The data is moved to the device
        once, and batches are cut there.
    precision : {{"float32", "bfloat16"}}, default="float32"
        Arithmetic of the network's forward pass. ``"bfloat16"`` runs it under ``torch.autocast`` (mixed
        precision: matrix products in bfloat16, the loss and the weights in float32). It pays only where the
        network's kernels, not the host, take a step's time (wide layers, large images, large batches): on an
        H200 the default-sized networks here trained at 0.74-1.08x float32's speed (docs/scaling.rst). (float16
        is not offered: without loss scaling its gradients underflow, and bfloat16 has float32's range.)
        Predictions are returned in float32 or float64 either way.
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


def fill_common_parameters(split, **descriptions):
    """Class decorator: put the shared parameter descriptions where the docstring says ``{common_parameters}``.

    Each default shown is read from the class's own signature, where it is written once; ``descriptions`` adapt
    the words (``split``: how the validation rows are held out; ``hidden_type``, ``members_doc``, ...)."""

    def decorate(cls):
        values = {"members_doc": "", "hidden_type": "tuple of int", "hidden_doc": "", "split": split,
                  "epochs_type": "int >= 1", "epochs_doc": "", "patience_type": "int >= 1", "patience_doc": "",
                  **descriptions}
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if "{" + name + "}" in COMMON_PARAMETERS:
                values[name] = default_text(parameter.default)
        cls.__doc__ = cls.__doc__.replace("{common_parameters}", COMMON_PARAMETERS.format(**values))
        return cls

    return decorate


def default_text(value) -> str:
    """A default as numpydoc writes it after ``default=``: strings in double quotes, anything else as its repr."""
    return f'"{value}"' if isinstance(value, str) else repr(value)
