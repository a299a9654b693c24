"""sklearn_costs.persistence: exact round trips without pickle, and files that name code are refused."""

import contextlib
import importlib
import io
import json
import pickle
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.exceptions import DeviceWarning
from sklearn_costs.losses import PoissonLoss, refresh
from sklearn_costs.persistence import FIELDS, FORMAT_VERSION, dump, load

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["speed", "lean", "throttle"])
COUNTS = rng.poisson(np.exp(0.3 * X.to_numpy()[:, :2]))
REAL = X["speed"].to_numpy() * 2 + rng.normal(size=120)
IMAGES = rng.normal(size=(120, 8, 8)).astype(np.float32)
NAMES = np.array(["ada", "bo", "cy", "di"])[np.arange(120) % 4]


def _round_trip(model):
    buffer = io.BytesIO()
    dump(model, buffer)
    return load(io.BytesIO(buffer.getvalue()))


CASES = {
    "poisson": (lambda: PoissonSpikeRegressor(loss="negative_binomial", hidden_layer_sizes=(8,), max_epochs=3,
                                              random_state=0), X, COUNTS),
    "gaussian": (lambda: GaussianUncertaintyRegressor(loss="student_t", hidden_layer_sizes=(8,), max_epochs=3,
                                                      random_state=0), X, REAL),
    "ensemble": (lambda: DeepEnsembleRegressor(GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), max_epochs=3),
                                               n_estimators=2, random_state=0), X, REAL),
    "embedder cnn": (lambda: TripletEmbedder(embedding_dim=4, max_epochs=2, random_state=0), IMAGES, NAMES),
    "embedder mlp": (lambda: TripletEmbedder(embedding_dim=4, hidden_layer_sizes=(8,), max_epochs=2,
                                             random_state=0), X, NAMES),
    "embedder proxy_anchor": (lambda: TripletEmbedder("proxy_anchor", embedding_dim=4, hidden_layer_sizes=(8,),
                                                      n_members=2, max_epochs=2, random_state=0), X, NAMES),
}


def _outputs(model, X, y):
    if isinstance(model, TripletEmbedder):
        return [model.transform(X), model.score(X, y)]
    out = [model.predict(X), *model.predict(X, return_std=True), model.log_likelihood(X, y), model.score(X, y)]
    if hasattr(model, "predict_interval"):
        out += [*model.predict_interval(X, 0.8), model.predict_cdf(X, y)]
    return out


@pytest.mark.parametrize("case", CASES)
def test_a_loaded_model_predicts_exactly_as_the_saved_one(case):
    make, X, y = CASES[case]
    model = make().fit(X, y)
    loaded = _round_trip(model)
    assert type(loaded) is type(model)
    assert repr(loaded.get_params()) == repr(model.get_params())
    for before, after in zip(_outputs(model, X, y), _outputs(loaded, X, y)):
        np.testing.assert_array_equal(after, before)
    members = getattr(model, "estimators_", [model])
    for original, copy in zip(members, getattr(loaded, "estimators_", [loaded])):
        pd.testing.assert_frame_equal(copy.history_, original.history_)
        assert copy.loss_.get_params() == original.loss_.get_params()
        if hasattr(original, "linear_weight_"):  # the mixture's linear component comes back with its weight
            assert original.linear_weight_ > 0 and copy.linear_weight_ == original.linear_weight_
    if isinstance(X, pd.DataFrame):
        assert list(loaded.feature_names_in_) == list(X.columns)
    if isinstance(model, TripletEmbedder):
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
        assert loaded.input_size_ == model.input_size_ and loaded.n_members_ == model.n_members_
        state = model.net_.criterion_.state_dict()  # a proxy loss's proxies
        assert state.keys() == loaded.net_.criterion_.state_dict().keys()
        for name, value in state.items():
            torch.testing.assert_close(loaded.net_.criterion_.state_dict()[name], value, rtol=0, atol=0)


def test_an_unfitted_estimator_round_trips_its_parameters(tmp_path):
    model = TripletEmbedder(hidden_layer_sizes=(32, 16), input_size=(12, 10), miner="batch_hard", margin=0.3)
    dump(model, tmp_path / "model.zip")
    loaded = load(tmp_path / "model.zip")
    assert loaded.get_params() == model.get_params() and loaded.hidden_layer_sizes == (32, 16)


def test_a_loaded_model_trains_on_with_warm_start():
    make, X, y = CASES["poisson"]
    loaded = _round_trip(make().fit(X, y))
    before = loaded.predict(X)
    loaded.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert loaded.n_iter_ == 3 + 2 and not np.array_equal(loaded.predict(X), before)
    assert list(loaded.history_.index) == [1, 2, 3, 4, 5]


def test_loading_never_unpickles(monkeypatch):
    make, X, y = CASES["gaussian"]
    buffer = io.BytesIO()
    dump(make().fit(X, y), buffer)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    assert load(buffer).predict(X).shape == (120,)


class _Payload:
    def __reduce__(self):
        return (print, ("this ran on load",))


def _tampered(name, content, case="poisson"):
    make, X, y = CASES[case]
    buffer = io.BytesIO()
    dump(make().fit(X, y), buffer)
    return _rewritten(buffer, name, content)


def _rewritten(buffer, name, content):
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, content(src.read(item)) if item == name else src.read(item))
    return out


def test_a_file_naming_another_class_is_refused():
    out = _tampered("estimator.json", lambda b: b.replace(b'"class": "PoissonSpikeRegressor"', b'"class": "system"'))
    with pytest.raises(ValueError, match="names the class 'system', which load does not build"):
        load(out)


def test_weights_that_carry_code_are_refused(capsys):
    def poisoned(_):
        buffer = io.BytesIO()
        torch.save({"model.weight": _Payload()}, buffer)
        return buffer.getvalue()

    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load(_tampered("weights.pt", poisoned))
    assert "this ran on load" not in capsys.readouterr().out


@pytest.mark.parametrize("model, message", [
    (TripletEmbedder(module=torch.nn.Linear(64, 4)), "a Linear .*pass module='auto', 'mlp' or 'cnn'"),
    (PoissonSpikeRegressor(optimizer=torch.optim.Adam), "pass the optimizer by name"),
    (PoissonSpikeRegressor(random_state=np.random.RandomState(0)), "use an int random_state"),
    (TripletEmbedder(miner=lambda d, labels: None), "the parameter miner, a function .*pickle is the only way"),
])
def test_what_cannot_be_written_safely_is_refused_with_advice(model, message):
    with pytest.raises(TypeError, match=message):
        dump(model, io.BytesIO())


def test_an_unregistered_loss_is_refused():
    class Private(PoissonLoss):
        name = "private_poisson"

    with pytest.raises(TypeError, match="the loss Private is not registered under its name 'private_poisson'"):
        dump(PoissonSpikeRegressor(loss=Private()), io.BytesIO())


def test_only_the_package_estimators_are_written():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(TypeError, match="dump writes the estimators of sklearn-costs .* got Pipeline"):
        dump(make_pipeline(StandardScaler(), PoissonSpikeRegressor()), io.BytesIO())


def test_a_loaded_model_warm_starts_as_the_saved_one_does():
    make, X, y = CASES["poisson"]
    model = make().fit(X, y)
    loaded = _round_trip(model)
    for m in (model, loaded):
        m.set_params(warm_start=True, max_epochs=2).fit(X, y)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    pd.testing.assert_frame_equal(loaded.history_.drop(columns="dur"), model.history_.drop(columns="dur"))


def test_a_file_that_sets_a_method_is_refused():
    out = _tampered("estimator.json", lambda b: b.replace(b'"n_iter_":', b'"predict":'))
    with pytest.raises(ValueError, match="the file sets 'predict', which is not a fitted attribute"):
        load(out)


# ------------------------------------------------------------------ models trained on a GPU, loaded without one

_writing_as_cuda = False


def _cuda_location(storage):
    """torch's location tag of a storage, while :func:`_as_trained_on_a_gpu` is active: 'cuda:0', the tag torch
    writes for a tensor on the first GPU, for every CPU storage (None: torch's own taggers decide)."""
    return "cuda:0" if _writing_as_cuda and storage.device.type == "cpu" else None


# consulted before torch's own taggers; its deserializer leaves every storage to torch's own
torch.serialization.register_package(0, _cuda_location, lambda storage, location: None)


@contextlib.contextmanager
def _as_trained_on_a_gpu(model):
    """While active, pickle, joblib and dump write ``model`` as a fit on device='cuda' leaves it: every member's
    ``device``, ``device_`` and net device 'cuda', and every tensor tagged as one on the GPU. Loading that on this
    machine, which has no CUDA, meets what loading a GPU model on a machine without CUDA meets."""
    members = getattr(model, "estimators_", [model])
    saved = [(m.device, m.device_, m.net_.device) for m in members]
    for m in members:
        m.device = m.device_ = m.net_.device = "cuda"
    try:
        with _tensors_tagged_as_cuda():
            yield
    finally:
        for m, (device, fitted, net) in zip(members, saved):
            m.device, m.device_, m.net_.device = device, fitted, net


@contextlib.contextmanager
def _tensors_tagged_as_cuda():
    global _writing_as_cuda
    _writing_as_cuda = True
    try:
        yield
    finally:
        _writing_as_cuda = False


GPU_CASES = {"embedder cnn": (lambda: TripletEmbedder(embedding_dim=3, cnn_width=4, n_members=1, max_epochs=2,
                                                     random_state=0), IMAGES[:40], NAMES[:40])}
GPU_CASES["embedder proxy_anchor"] = (lambda: GPU_CASES["embedder cnn"][0]().set_params(loss="proxy_anchor"),
                                      *GPU_CASES["embedder cnn"][1:])


def _unpickled(how, model, tmp_path):
    if how == "pickle":
        return pickle.loads, pickle.dumps(model)
    joblib.dump(model, tmp_path / "model.joblib")
    return joblib.load, tmp_path / "model.joblib"


needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="loads a GPU model where CUDA is absent")


@needs_no_cuda
def test_the_gpu_stand_in_writes_what_torch_writes_for_a_cuda_tensor():
    buffer = io.BytesIO()
    with _tensors_tagged_as_cuda():
        torch.save(torch.ones(3), buffer)
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        torch.load(io.BytesIO(buffer.getvalue()))
    assert torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu").tolist() == [1.0, 1.0, 1.0]


def _gpu_members(model):
    return getattr(model, "estimators_", [model])


@needs_no_cuda
@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize("case", ["gaussian", "ensemble", "embedder cnn", "embedder proxy_anchor"])
def test_a_model_trained_on_a_gpu_unpickles_onto_the_cpu_with_a_warning(case, how, tmp_path):
    make, X, y = GPU_CASES.get(case, CASES[case])
    model = make().fit(X, y)
    with _as_trained_on_a_gpu(model):
        read, saved = _unpickled(how, model, tmp_path)
    with pytest.warns(DeviceWarning, match="trained on device='cuda', but PyTorch finds no CUDA device on this "
                                           "machine: it was loaded onto the CPU"):
        loaded = read(saved)
    for member in _gpu_members(loaded):
        assert member.device_ == "cpu" and member.net_.device == "cpu" and member.device == "cuda"
        assert member.net_.module is member.net_.module_  # one network, not a copy of it
        assert all(p.device.type == "cpu" for _, p in member.net_.get_all_learnable_params())  # proxies too
    for before, after in zip(_outputs(model, X, y), _outputs(loaded, X, y)):
        np.testing.assert_allclose(after, before, rtol=1e-5)
    # moved on purpose: on the CPU it trains on
    loaded.set_params(**{("estimator__" if case == "ensemble" else "") + "device": "cpu"}).fit(X, y)
    assert all(m.device_ == "cpu" for m in _gpu_members(loaded))


@needs_no_cuda
def test_a_file_of_a_model_trained_on_a_gpu_loads_onto_the_cpu_with_a_warning():
    make, X, y = CASES["gaussian"]
    model = make().fit(X, y)
    buffer = io.BytesIO()
    with _as_trained_on_a_gpu(model):
        dump(model, buffer)
    with pytest.warns(DeviceWarning, match="loaded onto the CPU"):
        loaded = load(buffer)
    assert loaded.device_ == "cpu" and loaded.net_.device == "cpu"
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-5)
    loaded.set_params(device="cpu", warm_start=True, max_epochs=1).fit(X, y)
    assert loaded.n_iter_ == model.n_iter_ + 1


# ------------------------------------------------------------------------------- the format and what load checks

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["gaussian_linear", "poisson_members", "ensemble", "embedder"])
def test_files_of_format_version_2_load_and_predict_as_they_did(name):
    # written by sklearn-costs 0.1.0 (commit 4c54dda), with what the saved models predicted (make_v2_fixtures.py)
    expected = np.load(DATA / f"{name}_v2_expected.npz", allow_pickle=False)
    model = load(DATA / f"{name}_v2.zip")
    if isinstance(model, TripletEmbedder):
        np.testing.assert_allclose(model.transform(expected["X"]), expected["transform"], rtol=1e-6)
        return
    X = pd.DataFrame(expected["X"], columns=expected["columns"])
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mean, expected["mean"], rtol=1e-6)
    np.testing.assert_allclose(std, expected["std"], rtol=1e-6)
    if name == "gaussian_linear":
        assert model.linear_weight_ == 0.5 and model._linear_component is not None


def _record(buffer):
    with zipfile.ZipFile(buffer) as archive:
        return json.loads(archive.read("estimator.json"))


@pytest.mark.parametrize("case", ["gaussian", "ensemble", "embedder mlp"])
def test_a_file_holds_the_fields_its_format_lists(case):
    make, X, y = CASES[case]
    buffer = io.BytesIO()
    dump(make().fit(X, y), buffer)
    metadata = _record(buffer)
    assert metadata["format_version"] == FORMAT_VERSION == 3
    records = [metadata["estimator"]]
    records += [m["__estimator__"] for m in records[0]["attributes"].get("estimators_", [])]
    for record in records:
        fields = FIELDS[record["class"]]
        assert set(record["attributes"]) == {*fields.required, *fields.optional}


def test_an_attribute_the_format_does_not_list_is_refused_by_dump():
    make, X, y = CASES["poisson"]
    model = make().fit(X, y)
    model.cache_ = np.zeros(3)
    with pytest.raises(TypeError, match="fitted attributes that the file format does not list: cache_. They belong "
                                        "in sklearn_costs.persistence.FIELDS"):
        dump(model, io.BytesIO())


def test_a_file_with_invalid_parameters_is_refused():
    out = _tampered("estimator.json", lambda b: b.replace(b'"min_std": null', b'"min_std": -5'), case="gaussian")
    with pytest.raises(ValueError, match="holds a GaussianUncertaintyRegressor whose parameters are not valid: The "
                                         "'min_std' parameter .* Got -5 instead"):
        load(out)


def test_a_file_with_invalid_loss_parameters_is_refused():
    def fitted_loss_min_std(content):
        metadata = json.loads(content)
        metadata["estimator"]["attributes"]["loss_"]["params"]["__dict__"]["min_std"] = -1.0
        return json.dumps(metadata).encode()

    out = _tampered("estimator.json", fitted_loss_min_std, case="gaussian")
    with pytest.raises(ValueError, match="a loss 'student_t' whose parameters are not valid: The 'min_std' "
                                         "parameter of StudentTLoss"):
        load(out)


def _without_array(content):
    with np.load(io.BytesIO(content)) as arrays:
        kept = {k: v for k, v in arrays.items() if k != "model.history_.train_loss"}
    out = io.BytesIO()
    np.savez(out, **kept)
    return out.getvalue()


def _without_attribute(content):
    metadata = json.loads(content)
    del metadata["estimator"]["attributes"]["n_outputs_"]
    return json.dumps(metadata).encode()


def _without_weights(content):
    out = io.BytesIO()
    torch.save({**torch.load(io.BytesIO(content)), "modules": {}}, out)
    return out.getvalue()


@pytest.mark.parametrize("member, content, message", [
    ("arrays.npz", _without_array, "refers to the array 'model.history_.train_loss', which its arrays.npz lacks"),
    ("estimator.json", lambda b: b.replace(b'"n_iter_":', b'"n_iter":'),
     "the file sets 'n_iter', which is not a fitted attribute of PoissonSpikeRegressor"),
    ("estimator.json", _without_attribute,
     "the file's PoissonSpikeRegressor lacks the fitted attributes n_outputs_; the file is incomplete"),
    ("weights.pt", _without_weights, "the weights of the network 'model' in the file do not fit the network that its "
                                     r"PoissonSpikeRegressor's settings build \(RuntimeError"),
    ("estimator.json", lambda b: b[: len(b) // 2], "not a readable sklearn-costs-model file .*JSONDecodeError"),
])
def test_a_damaged_file_says_what_is_missing_or_wrong(member, content, message):
    with pytest.raises(ValueError, match=message):
        load(_tampered(member, content))


RENAMED_GAUSSIAN = """
from sklearn_costs.losses import GaussianLoss

class RenamedGaussian(GaussianLoss):
    name = "renamed_gaussian"
"""


@pytest.mark.parametrize("recorded", [True, False])
def test_a_model_whose_plugin_loss_is_missing_names_the_plugin_to_install(fake_distribution, tmp_path, recorded):
    fake_distribution("fake-gaussian", "fakeplugin_gaussian", RENAMED_GAUSSIAN,
                      {"renamed_gaussian": "fakeplugin_gaussian:RenamedGaussian"})
    make, X, y = CASES["gaussian"]
    buffer = io.BytesIO()
    dump(make().set_params(loss="renamed_gaussian").fit(X, y), buffer)
    if not recorded:  # as a file of format version 2, which did not record the plugin
        buffer = _rewritten(buffer, "estimator.json", lambda b: b.replace(b'"source": "fake-gaussian"', b'"x": 0'))
    sys.path.remove(str(tmp_path))  # the plugin uninstalled
    importlib.invalidate_caches()
    refresh()
    if recorded:
        message = ("the model in this file was trained with the 'continuous' loss 'renamed_gaussian', which comes from "
                   "the plugin package 'fake-gaussian' 0.1, which is not installed here. Install it "
                   r"\(pip install fake-gaussian\) and load the file again")
    else:
        message = ("the 'continuous' loss 'renamed_gaussian', which is not registered here: it comes from a loss "
                   "plugin .*'sklearn_costs.losses'.* Install the package that provides it \\(or register the loss\\)")
    with pytest.raises(ValueError, match=message):
        load(buffer)
