"""Saving and loading fitted estimators without pickle: loading a file runs no code that the file names.

``pickle`` (and ``joblib``) rebuild objects by calling whatever the file says, so a model file from someone else
can run arbitrary code on load. :func:`dump` writes a zip archive of three parts instead:

- ``estimator.json``: the estimator's class, its constructor parameters and its fitted attributes, as plain JSON
  (tuples, arrays, data frames, losses and nested estimators are tagged records);
- ``arrays.npz``: the numerical fitted attributes, read back with ``numpy.load(allow_pickle=False)``;
- ``weights.pt``: the networks' ``state_dict`` tensors and their optimizers' state (Adam's moments, ...), read back
  with ``torch.load(weights_only=True)``.

:func:`load` builds only the package's own estimators and losses from it: the class must be one of
:data:`ESTIMATORS`, a loss is looked up by its registry name, and the network is rebuilt from the fitted settings
and filled with the stored weights. Predictions of the loaded model equal the saved model's exactly.

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

import numpy as np
import pandas as pd
import torch

from .ensemble import DeepEnsembleRegressor
from .gaussian import GaussianUncertaintyRegressor
from .losses import Loss, get_loss
from .poisson import PoissonSpikeRegressor
from .triplet import TripletEmbedder

FORMAT = "sklearn-costs-model"
FORMAT_VERSION = 2
#: The classes :func:`load` builds, by name: nothing else is ever constructed from a file.
ESTIMATORS = {cls.__name__: cls for cls in (PoissonSpikeRegressor, GaussianUncertaintyRegressor, TripletEmbedder,
                                            DeepEnsembleRegressor)}


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
    torch.save({"modules": writer.weights, "optimizers": writer.optimizers}, weights)
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
    with zipfile.ZipFile(file) as archive:
        metadata = json.loads(archive.read("estimator.json"))
        if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} file of format version {FORMAT_VERSION}: found "
                             f"{metadata.get('format')!r} version {metadata.get('format_version')!r}")
        with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as arrays:
            arrays = dict(arrays)
        weights = torch.load(io.BytesIO(archive.read("weights.pt")), map_location="cpu", weights_only=True)
    return _Reader(arrays, weights).estimator(metadata["estimator"])


class _Writer:
    """Turns estimators into JSON records, collecting their arrays and network weights on the side."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self.optimizers: dict[str, dict] = {}

    def estimator(self, estimator, key):
        name = type(estimator).__name__
        if ESTIMATORS.get(name) is not type(estimator):
            raise TypeError(f"dump writes the estimators of sklearn-costs ({', '.join(ESTIMATORS)}); got {name}. "
                            "Save a Pipeline's steps one by one (skops.io for scikit-learn's own).")
        params = {k: self.value(v, f"{key}.{k}", f"the parameter {k}") for k, v in estimator.get_params(False).items()}
        attributes = {}
        for attr, value in vars(estimator).items():
            if attr in params or not (attr.endswith("_") or attr.startswith("_")):
                continue
            if attr == "net_":
                self.weights.update({f"{key}.{k}": v.detach().cpu().clone()
                                     for k, v in value.module_.state_dict().items()})
                self.optimizers[key] = _to_cpu(value.optimizer_.state_dict())
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
                    "params": self.value(value.get_params(False), key, what)}
        if isinstance(value, type) and issubclass(value, Loss):
            return {"__loss_class__": self.registered_name(value, what), "task": value.task}
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


def _to_cpu(state):
    if torch.is_tensor(state):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


class _Reader:
    def __init__(self, arrays, weights):
        self.arrays, self.weights, self.optimizers = arrays, weights["modules"], weights["optimizers"]

    def estimator(self, record):
        cls = ESTIMATORS.get(record.get("class"))
        if cls is None:
            raise ValueError(f"the file names the class {record.get('class')!r}, which load does not build; it "
                             f"builds only {', '.join(ESTIMATORS)}")
        estimator = cls(**{k: self.value(v) for k, v in record["params"].items()})
        net = None
        for attr, value in record["attributes"].items():
            if not (attr.endswith("_") or attr.startswith("_")) or attr.startswith("__") or hasattr(cls, attr):
                raise ValueError(f"the file sets {attr!r}, which is not a fitted attribute; load refuses it")
            if isinstance(value, dict) and "__net__" in value:
                net = value
            else:
                setattr(estimator, attr, self.value(value))
        if net is not None:
            prefix = net["__net__"] + "."
            state = {k[len(prefix):]: v for k, v in self.weights.items() if k.startswith(prefix)}
            estimator.net_ = estimator.rebuild_net(state, batch_size=net["batch_size"],
                                                    optimizer_state=self.optimizers[net["__net__"]])
        return estimator

    def value(self, value):
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if not isinstance(value, dict):
            return value
        (tag, content), *_ = value.items()
        if tag == "__tuple__":
            return tuple(self.value(v) for v in content)
        if tag == "__dict__":
            return {k: self.value(v) for k, v in content.items()}
        if tag == "__array__":
            return self.arrays[content]
        if tag == "__strings__":
            return np.array(content, dtype=object)
        if tag == "__frame__":
            index = pd.Index(self.value(content["index"]), name=content["index_name"])
            return pd.DataFrame({c: self.value(v) for c, v in content["columns"].items()}, index=index)
        if tag == "__loss__":
            return get_loss(content, value["task"]).set_params(**self.value(value["params"]))
        if tag == "__loss_class__":
            return type(get_loss(content, value["task"]))
        if tag == "__estimator__":
            return self.estimator(content)
        raise ValueError(f"unknown record {tag!r} in the file")


__all__ = ["dump", "load", "ESTIMATORS"]
