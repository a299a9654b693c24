"""Saving and loading fitted estimators without pickle: loading a file runs no code that the file names.

``pickle`` (and ``joblib``) rebuild objects by calling whatever the file says, so a model file from someone else
can run arbitrary code on load. :func:`dump` writes a zip archive of three parts instead:

- ``estimator.json``: the estimator's class, its constructor parameters and its fitted attributes, as plain JSON
  (tuples, arrays, data frames, losses and nested estimators are tagged records);
- ``arrays.npz``: the numerical fitted attributes, read back with ``numpy.load(allow_pickle=False)``;
- ``weights.pt``: the networks' ``state_dict`` tensors, their criteria's learned parameters (a proxy loss's
  proxies) and their optimizers' state (Adam's moments, ...), read back with ``torch.load(weights_only=True)``.

:func:`load` builds only the package's own estimators and losses from it: the class must be one of
:data:`ESTIMATORS`, a loss is looked up by its registry name, and the network is rebuilt from the fitted settings
and filled with the stored weights. Predictions of the loaded model equal the saved model's exactly.

The fields of each estimator's record are listed in :data:`FIELDS`, which is the file format: renaming a private
attribute does not change the files. ``load`` validates what it reads: the parameters by the estimator's own
constraints, every field present and no other, every array and weight the record refers to in the file; a file
that fails raises ``ValueError`` naming what is wrong. A model whose loss comes from a plugin package records that
package, and loading it where the package is missing says which one to install. A model trained on a GPU loads on
a machine without one onto the CPU, with a :class:`~sklearn_costs.exceptions.DeviceWarning`.

What cannot be written this way is refused by :func:`dump` with a ``TypeError`` saying what to change: a custom
``torch.nn.Module`` or optimizer class, a loss that is not registered by name, a callable miner, a
``RandomState`` instance. A loaded model trains on (``warm_start=True``, ``partial_fit``) exactly as the saved one
would: the optimizer's state and the seeds are stored too.
"""

from __future__ import annotations

import io
import json
import zipfile
from importlib.metadata import PackageNotFoundError, version
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .ensemble import DeepEnsembleRegressor
from .gaussian import GaussianUncertaintyRegressor
from .losses import Loss, LossPluginError, available_losses, get_loss
from .losses.registry import BUILTIN_SOURCE, ENTRY_POINT_GROUP
from .poisson import PoissonSpikeRegressor
from .triplet import TripletEmbedder

FORMAT = "sklearn-costs-model"
#: The version :func:`dump` writes. 3: the fields of :data:`FIELDS`, and the plugin package of a loss.
FORMAT_VERSION = 3
#: The versions :func:`load` reads. Version 2 (sklearn-costs 0.1.0, which wrote every attribute whose name
#: starts or ends with ``_``) holds the fields of version 3 under the same names.
READABLE_VERSIONS = (2, 3)
#: The classes :func:`load` builds, by name: nothing else is ever constructed from a file.
ESTIMATORS = {cls.__name__: cls for cls in (PoissonSpikeRegressor, GaussianUncertaintyRegressor, TripletEmbedder,
                                            DeepEnsembleRegressor)}


class Fields(NamedTuple):
    """The fitted attributes in one estimator class's record: a fitted model has all of ``required``, and those
    of ``optional`` that it has (``feature_names_in_`` only when it was fitted on a data frame).

    Examples
    --------
    >>> "net_" in FIELDS["PoissonSpikeRegressor"].required
    True
    >>> FIELDS["DeepEnsembleRegressor"]
    Fields(required=('estimators_', 'n_features_in_'), optional=('feature_names_in_',))
    """

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


_NETWORK = ("net_", "_fitted_network_spec", "_fitted_training", "loss_", "device_", "n_threads_", "history_",
            "n_iter_")
#: Fields that files written before they existed lack (a default applies on loading: see _Reader).
_NETWORK_OPTIONAL = ("batch_size_",)
_DISTRIBUTION = ("n_features_in_", "_target_names", "_y_is_1d", "n_outputs_", "hidden_layer_sizes_", "n_members_",
                 "clip_inputs_", *_NETWORK)

#: The file format: the fields of each estimator's record, by class, under the names of the attributes they are
#: (an unfitted estimator's record has none). :func:`dump` refuses an estimator with a fitted attribute that is not
#: listed here, so that a new, renamed or moved attribute is a decision about the format: list it here, and when
#: files written before cannot be read as they are (a field renamed or restructured, a new required one), raise
#: :data:`FORMAT_VERSION` and convert the older records in :class:`_Reader`.
FIELDS = {
    "PoissonSpikeRegressor": Fields(_DISTRIBUTION, optional=("feature_names_in_", *_NETWORK_OPTIONAL)),
    "GaussianUncertaintyRegressor": Fields((*_DISTRIBUTION, "y_loc_", "y_scale_", "linear_weight_",
                                            "_linear_component"), optional=("feature_names_in_", *_NETWORK_OPTIONAL)),
    "DeepEnsembleRegressor": Fields(("estimators_", "n_features_in_"), optional=("feature_names_in_",)),
    "TripletEmbedder": Fields(("n_features_in_", "classes_", "input_shape_", "module_kind_", "input_size_",
                               "cnn_blocks_", "cnn_width_", "n_members_", "augment_", "max_epochs_",
                               "n_iter_no_change_", "miner_", "_n_features_out", *_NETWORK),
                              optional=("feature_names_in_", *_NETWORK_OPTIONAL)),
}
#: What an unpickled estimator carries that is no part of the model (scikit-learn's pickle bookkeeping): not
#: written, and ignored in the files of version 2, which wrote it.
_NOT_FIELDS = ("_sklearn_version",)


def dump(estimator, file) -> None:
    """Write a fitted (or unfitted) estimator of this package to ``file`` (a path or a binary file object).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn_costs import PoissonSpikeRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(100, 2)), rng.poisson(2.0, size=100)
    >>> model = PoissonSpikeRegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> buffer = io.BytesIO()
    >>> dump(model, buffer)
    >>> loaded = load(buffer)
    >>> bool((loaded.predict(X) == model.predict(X)).all())
    True
    """
    writer = _Writer()
    record = writer.estimator(estimator, "model")
    try:
        package_version = version("sklearn-costs")
    except PackageNotFoundError:
        package_version = "unknown"
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "sklearn_costs_version": package_version,
                "estimator": record}
    arrays, weights = io.BytesIO(), io.BytesIO()
    np.savez(arrays, **writer.arrays)
    torch.save({"modules": writer.weights, "optimizers": writer.optimizers, "criteria": writer.criteria}, weights)
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("estimator.json", json.dumps(metadata, indent=1))
        archive.writestr("arrays.npz", arrays.getvalue())
        archive.writestr("weights.pt", weights.getvalue())


def load(file):
    """Read an estimator written by :func:`dump` from ``file`` (a path or a binary file object).

    Nothing the file names is imported or called: the estimator class must be one of :data:`ESTIMATORS`, losses
    are found by their registry name, arrays are read without pickle and the weights by
    ``torch.load(weights_only=True)``. A file that names anything else raises ``ValueError``.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> X = np.linspace(-1, 1, 60)[:, None]
    >>> model = GaussianUncertaintyRegressor(max_epochs=3, random_state=0).fit(X, 2 * X[:, 0])
    >>> buffer = io.BytesIO()
    >>> dump(model, buffer)
    >>> lower, upper = load(buffer).predict_interval(X[:2])
    >>> bool((lower < upper).all())
    True
    """
    if hasattr(file, "seek"):
        file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            metadata = json.loads(archive.read("estimator.json"))
            if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or \
                    metadata.get("format_version") not in READABLE_VERSIONS:
                found = metadata if not isinstance(metadata, dict) else metadata.get("format")
                raise ValueError(f"not a {FORMAT} file of a format version load reads "
                                 f"({', '.join(map(str, READABLE_VERSIONS))}): found {found!r} version "
                                 f"{metadata.get('format_version') if isinstance(metadata, dict) else None!r}")
            with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as arrays:
                arrays = dict(arrays)
            weights = torch.load(io.BytesIO(archive.read("weights.pt")), map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"the file is not a readable {FORMAT} file ({type(exc).__name__}: {exc}); it is "
                         "incomplete or was altered. Save the model again with sklearn_costs.persistence.dump."
                         ) from exc
    if not (isinstance(weights, dict) and {"modules", "optimizers"} <= set(weights)):
        raise ValueError("the file's weights.pt does not hold the networks' weights and optimizer states; the file "
                         "was altered")
    return _Reader(arrays, weights).estimator(_field(metadata, "estimator", "the file"))


def _field(record, name, where):
    """``record[name]``, or a ``ValueError`` saying that ``where`` lacks it (a file cut short or altered)."""
    if not isinstance(record, dict) or name not in record:
        raise ValueError(f"{where} lacks its {name!r} entry; the file is incomplete or was altered. Save the model "
                         "again with sklearn_costs.persistence.dump.")
    return record[name]


class _Writer:
    """Turns estimators into JSON records, collecting their arrays and network weights on the side."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self.optimizers: dict[str, dict] = {}
        #: per net, its criterion's state when it has one (a proxy loss's proxies): files of models without one, as
        #: all those written before proxy losses, hold none, and load as they did
        self.criteria: dict[str, dict[str, torch.Tensor]] = {}

    def estimator(self, estimator, key):
        name = type(estimator).__name__
        if ESTIMATORS.get(name) is not type(estimator):
            raise TypeError(f"dump writes the estimators of sklearn-costs ({', '.join(ESTIMATORS)}); got {name}. "
                            "Save a Pipeline's steps one by one (skops.io for scikit-learn's own).")
        params = {k: self.value(v, f"{key}.{k}", f"the parameter {k}") for k, v in estimator.get_params(False).items()}
        fields = FIELDS[name]
        fitted = {attr for attr in vars(estimator)
                  if attr not in params and attr not in _NOT_FIELDS and (attr.endswith("_") or attr.startswith("_"))}
        unlisted = sorted(fitted - {*fields.required, *fields.optional})
        if unlisted:
            raise TypeError(f"{name} has fitted attributes that the file format does not list: "
                            f"{', '.join(unlisted)}. They belong in sklearn_costs.persistence.FIELDS (a change of the "
                            "format), or are not fitted state and should not be set on the estimator.")
        attributes = {}
        for attr in (*fields.required, *fields.optional):
            if attr not in fitted:
                continue
            value = getattr(estimator, attr)
            if attr == "net_":
                self.weights.update({f"{key}.{k}": v.detach().cpu().clone()
                                     for k, v in value.module_.state_dict().items()})
                self.optimizers[key] = _to_cpu(value.optimizer_.state_dict())
                criterion = value.criterion_.state_dict()
                if criterion:
                    self.criteria[key] = _to_cpu(dict(criterion))
                attributes[attr] = {"__net__": key, "batch_size": value.batch_size}
            else:
                attributes[attr] = self.value(value, f"{key}.{attr}", f"the fitted attribute {attr}")
        return {"class": name, "params": params, "attributes": attributes}

    def value(self, value, key, what):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return value.item()
        if isinstance(value, (list, tuple)):
            items = [self.value(v, f"{key}.{i}", what) for i, v in enumerate(value)]
            return items if isinstance(value, list) else {"__tuple__": items}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.value(v, f"{key}.{k}", what) for k, v in value.items()}}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                if not all(isinstance(v, str) for v in value.ravel()):
                    raise TypeError(f"{what} holds objects other than strings; dump cannot write it")
                return {"__strings__": value.tolist()}
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, pd.DataFrame):
            return {"__frame__": {"index": self.value(value.index.to_numpy(), key + ".index", what),
                                  "index_name": value.index.name,
                                  "columns": {str(c): self.value(value[c].to_numpy(), f"{key}.{c}", what)
                                              for c in value.columns}}}
        if isinstance(value, Loss):
            return {"__loss__": self.registered_name(type(value), what), "task": value.task,
                    "params": self.value(value.get_params(False), key, what), **_loss_source(type(value))}
        if isinstance(value, type) and issubclass(value, Loss):
            return {"__loss_class__": self.registered_name(value, what), "task": value.task,
                    **_loss_source(value)}
        if type(value).__name__ in ESTIMATORS:
            return {"__estimator__": self.estimator(value, key)}
        hint = {torch.nn.Module: "pass module='auto', 'mlp' or 'cnn', or save the network with torch.save",
                type: "pass the optimizer by name ('adam', 'adamw', 'sgd', 'rmsprop', 'lbfgs')",
                np.random.RandomState: "use an int random_state"}
        advice = next((h for t, h in hint.items() if isinstance(value, t)), "pickle is the only way to save it, "
                      "and a pickle file must come from someone you trust")
        raise TypeError(f"dump cannot write {what}, a {type(value).__name__} ({value!r:.80}): {advice}")

    @staticmethod
    def registered_name(cls, what):
        try:
            found = get_loss(cls.name, cls.task)
        except (ValueError, TypeError, ImportError):
            found = None
        if type(found) is not cls:
            raise TypeError(f"dump cannot write {what}: the loss {cls.__name__} is not registered under its name "
                            f"{cls.name!r}, so it could not be found again on load. Register it "
                            "(sklearn_costs.losses.register_loss, or a package's entry point).")
        return cls.name


def _loss_source(cls):
    """Where the registered loss ``cls`` comes from: ``{"source": distribution, "source_version": version}`` for a
    plugin package's loss, nothing for the package's own (or one registered in the session that wrote the file)."""
    info = next((i for i in available_losses(cls.task) if i.name == cls.name and i.cls is cls), None)
    if info is None or info.source == BUILTIN_SOURCE:
        return {}
    try:
        return {"source": info.source, "source_version": version(info.source)}
    except PackageNotFoundError:
        return {"source": info.source}


def _to_cpu(state):
    if torch.is_tensor(state):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


class _Reader:
    """Builds estimators from the JSON records of a file, checking each against :data:`FIELDS` and the estimator's
    parameter constraints, with the file's arrays and weights."""

    def __init__(self, arrays, weights):
        self.arrays, self.weights, self.optimizers = arrays, weights["modules"], weights["optimizers"]
        self.criteria = weights.get("criteria", {})

    def estimator(self, record):
        name = _field(record, "class", "an estimator record of the file")
        cls = ESTIMATORS.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"the file names the class {name!r}, which load does not build; it "
                             f"builds only {', '.join(ESTIMATORS)}")
        params = _field(record, "params", f"the {name} record")
        attributes = record.get("attributes", {})
        if not (isinstance(params, dict) and isinstance(attributes, dict)):
            raise ValueError(f"the {name} record's parameters and fitted attributes must be JSON objects; the file "
                             "was altered")
        estimator = cls(**{k: self.value(v) for k, v in params.items()})
        try:
            estimator.check_parameters()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the file holds a {name} whose parameters are not valid: {exc} The file was altered or "
                             "written by other code; load refuses it.") from exc
        fields = FIELDS[name]
        attributes = {k: v for k, v in attributes.items() if k not in _NOT_FIELDS}
        for attr in attributes:
            if attr not in fields.required and attr not in fields.optional:
                raise ValueError(f"the file sets {attr!r}, which is not a fitted attribute of {name} "
                                 "(sklearn_costs.persistence.FIELDS); load refuses it")
        missing = [attr for attr in fields.required if attr not in attributes]
        if attributes and missing:
            raise ValueError(f"the file's {name} lacks the fitted attributes {', '.join(missing)}; the file is "
                             "incomplete or was altered. Save the model again with sklearn_costs.persistence.dump.")
        net = None
        for attr, value in attributes.items():
            if isinstance(value, dict) and "__net__" in value:
                net = value
            else:
                setattr(estimator, attr, self.value(value))
        if net is not None:
            estimator.net_ = self.net(estimator, net)
            if "batch_size_" in fields.optional and "batch_size_" not in attributes:  # a file from before it
                estimator.batch_size_ = estimator.net_.batch_size
        return estimator

    def net(self, estimator, record):
        """The estimator's net, rebuilt from its fitted settings and filled with the file's weights."""
        key = record["__net__"]
        prefix = key + "."
        state = {k[len(prefix):]: v for k, v in self.weights.items() if k.startswith(prefix)}
        if key not in self.optimizers:
            raise ValueError(f"the file lacks the optimizer state of the network {key!r}; the file is incomplete or "
                             "was altered")
        try:
            net = estimator.rebuild_net(state, batch_size=record.get("batch_size"),
                                        optimizer_state=self.optimizers[key], criterion_state=self.criteria.get(key))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(f"the weights of the network {key!r} in the file do not fit the network that its "
                             f"{type(estimator).__name__}'s settings build ({type(exc).__name__}: {exc}); the file "
                             "is incomplete or was altered") from exc
        if key not in self.criteria and net.criterion_.state_dict():
            raise ValueError(f"the file lacks the learned parameters of the loss of the network {key!r} (its "
                             f"{type(estimator.loss_).__name__}'s proxies); the file is incomplete or was altered")
        return net

    def value(self, value):
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if not isinstance(value, dict) or not value:
            return value
        (tag, content), *_ = value.items()
        if tag == "__tuple__":
            return tuple(self.value(v) for v in content)
        if tag == "__dict__":
            return {k: self.value(v) for k, v in content.items()}
        if tag == "__array__":
            if content not in self.arrays:
                raise ValueError(f"the file refers to the array {content!r}, which its arrays.npz lacks; the file is "
                                 "incomplete or was altered")
            return self.arrays[content]
        if tag == "__strings__":
            return np.array(content, dtype=object)
        if tag == "__frame__":
            index = pd.Index(self.value(content["index"]), name=content["index_name"])
            return pd.DataFrame({c: self.value(v) for c, v in content["columns"].items()}, index=index)
        if tag == "__loss__":
            loss = self.loss(value).set_params(**self.value(value["params"]))
            try:
                loss.check_parameters()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"the file holds a loss {content!r} whose parameters are not valid: {exc} The file "
                                 "was altered or written by other code; load refuses it.") from exc
            return loss
        if tag == "__loss_class__":
            return type(self.loss(value))
        if tag == "__estimator__":
            return self.estimator(content)
        raise ValueError(f"unknown record {tag!r} in the file")

    @staticmethod
    def loss(record):
        """A fresh instance of the loss a record names, or an error naming the package that provides it."""
        name, task = next(iter(record.values())), record.get("task")
        try:
            return get_loss(name, task)
        except LossPluginError:
            raise  # the plugin is installed but does not load: its message says which and why
        except ValueError as exc:
            if any(info.name == name for info in available_losses(None)):
                raise  # registered for another task: the registry's message says so
            source = record.get("source")
            if source is not None:
                release = f" {record['source_version']}" if "source_version" in record else ""
                where = (f"comes from the plugin package {source!r}{release}, which is not installed here. Install "
                         f"it (pip install {source}) and load the file again.")
            else:
                where = (f"is not registered here: it comes from a loss plugin (a package of the entry-point group "
                         f"{ENTRY_POINT_GROUP!r}) that is not installed, which this file does not name, or was "
                         "registered with register_loss by the code that saved the model. Install the package that "
                         "provides it (or register the loss) and load the file again.")
            raise ValueError(f"the model in this file was trained with the {task!r} loss {name!r}, which {where}"
                             ) from exc


__all__ = ["dump", "load", "ESTIMATORS", "FIELDS", "FORMAT_VERSION", "Fields", "READABLE_VERSIONS"]
