"""The shared estimator base, exercised through PoissonSpikeRegressor (the other estimators reuse every line)."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special
from sklearn.exceptions import NotFittedError

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs._divergence import GUARD_MIN_ROWS, GUARD_ROWS, _guard_sample, guard_rows
from sklearn_costs._training import SliceLoader, TensorDataset
from sklearn_costs.base import resolve_device
from sklearn_costs.exceptions import TrainingDivergedError
from sklearn_costs.losses import PoissonLoss


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    Y = rng.poisson(np.exp(0.2 + X @ np.array([[0.5, -0.3], [0.2, 0.4], [0.0, 0.1]])))
    return X, Y


def small(**kw):
    kw.setdefault("hidden_layer_sizes", (8,))
    kw.setdefault("max_epochs", 5)
    kw.setdefault("random_state", 0)
    return PoissonSpikeRegressor(**kw)


def test_same_seed_same_predictions_other_seed_differs(data):
    X, Y = data
    a = small().fit(X, Y).predict(X)
    b = small().fit(X, Y).predict(X)
    c = small(random_state=1).fit(X, Y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_the_global_torch_rng(data):
    X, Y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small().fit(X, Y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_history_has_train_and_validation_loss_per_epoch(data):
    X, Y = data
    model = small(max_epochs=4).fit(X, Y)
    assert list(model.history_.columns) == ["train_loss", "valid_loss", "dur"]
    assert list(model.history_.index) == [1, 2, 3, 4]
    assert model.history_.notna().all().all() and model.n_iter_ == 4
    assert model.history_["train_loss"].iloc[-1] < model.history_["train_loss"].iloc[0]


def test_without_early_stopping_no_validation(data):
    X, Y = data
    model = small(early_stopping=False, max_epochs=3).fit(X, Y)
    assert model.history_["valid_loss"].isna().all()


def test_early_stopping_stops_and_restores_the_best_epoch(data):
    X, Y = data
    # one network: with members the validation loss is their mean loss, not the mixture's
    model = small(max_epochs=300, n_iter_no_change=3, lr=0.05, hidden_layer_sizes=(64,), n_members=1).fit(X, Y)
    assert model.n_iter_ < 300
    valid = model.history_["valid_loss"]
    # the kept weights are those of the best validation epoch: recomputing its loss gives that value
    n_valid = int(round(0.1 * len(X)))
    X_valid, Y_valid = X[-n_valid:], Y[-n_valid:]
    restored = -model.log_likelihood(X_valid, Y_valid).sum(1).mean()
    # the validation loss is the training objective: the NLL without log k! (a constant of the counts)
    log_factorial = special.gammaln(Y_valid + 1).sum(1).mean()
    np.testing.assert_allclose(restored - log_factorial, valid.min(), rtol=1e-4)


def test_warm_start_continues_training(data):
    X, Y = data
    model = small(warm_start=True, max_epochs=3, early_stopping=False).fit(X, Y)
    first = model.net_.module_.head.linear.weight.detach().clone()
    model.fit(X, Y)
    assert model.n_iter_ == 6
    assert not torch.equal(first, model.net_.module_.head.linear.weight)
    cold = small(max_epochs=3, early_stopping=False).fit(X, Y)
    cold.fit(X, Y)
    assert cold.n_iter_ == 3


def test_warm_start_trains_with_the_new_epochs_learning_rate_and_batch_size(data):
    X, Y = data
    model = small(warm_start=True, max_epochs=3, early_stopping=False).fit(X, Y)
    model.set_params(max_epochs=2, lr=0.02, batch_size=32).fit(X, Y)
    assert model.n_iter_ == 3 + 2
    assert model.net_.optimizer_.param_groups[0]["lr"] == 0.02 and model.net_.batch_size == 32


def test_verbose_prints_an_epoch_table(data, capsys):
    X, Y = data
    small(verbose=1, max_epochs=2).fit(X, Y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out
    small(verbose=0, max_epochs=2).fit(X, Y)
    assert capsys.readouterr().out == ""


def test_progress_bar_with_verbose_2(data, capsys):
    pytest.importorskip("tqdm")
    X, Y = data
    small(verbose=2, max_epochs=1).fit(X, Y)
    captured = capsys.readouterr()
    assert "it/s" in captured.err or "it/s" in captured.out or "%" in captured.err


class _BuggyLoss(PoissonLoss):
    """A plugin with a bug: the log of a quantity that turns negative during training."""

    def nll(self, params, y):
        return super().nll(params, y) + torch.log(params["rate"] - 3.0)


def test_divergence_stops_the_fit_naming_the_epoch_and_keeps_the_old_model(data):
    X, Y = data
    model = small().fit(X, Y)
    before = model.predict(X)
    with pytest.raises(TrainingDivergedError, match=r"training loss became nan at epoch 1.*lower learning rate"):
        model.set_params(loss=_BuggyLoss()).fit(X, Y)
    np.testing.assert_array_equal(model.predict(X), before)
    assert isinstance(model.loss_, PoissonLoss) and not isinstance(model.loss_, _BuggyLoss)


def test_exploding_learning_rate_is_reported(data):
    X, Y = data
    with pytest.raises(TrainingDivergedError, match="Try a lower learning rate"):
        small(loss="mse", optimizer="sgd", lr=1e12, max_epochs=20).fit(X, Y * 1000)
    fresh = small(loss="mse", optimizer="sgd", lr=1e12, max_epochs=20)
    with pytest.raises(TrainingDivergedError):
        fresh.fit(X, Y * 1000)
    assert not hasattr(fresh, "net_")


def test_not_fitted_error():
    with pytest.raises(NotFittedError):
        small().predict(np.zeros((2, 3)))


def test_pandas_float64_frames_just_work_and_names_are_checked(data):
    X, Y = data
    frame = pd.DataFrame(X, columns=["speed", "lean", "brake"])
    model = small().fit(frame, pd.DataFrame(Y, columns=["n1", "n2"]))
    np.testing.assert_array_equal(model.feature_names_in_, ["speed", "lean", "brake"])
    assert model.n_features_in_ == 3
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        from_array = model.predict(X)
    np.testing.assert_allclose(model.predict(frame), from_array, rtol=1e-6)
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        model.predict(frame.rename(columns={"lean": "x"}))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_features_are_refused(data, bad):
    X, Y = data
    X = X.copy()
    X[5, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        small().fit(X, Y)


def test_wrong_number_of_features_at_predict(data):
    X, Y = data
    model = small().fit(X, Y)
    with pytest.raises(ValueError, match="X has 2 features, but PoissonSpikeRegressor is expecting 3 features"):
        model.predict(X[:, :2])


def test_bad_input_leaves_a_fitted_model_unchanged(data):
    X, Y = data
    model = small().fit(X, Y)
    before = model.predict(X)
    Ybad = Y.copy()
    Ybad[3, 0] = -2
    with pytest.raises(ValueError, match="found -2 at row 3, column 0"):
        model.fit(X[:, :2], Ybad)
    assert model.n_features_in_ == 3
    np.testing.assert_array_equal(model.predict(X), before)


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got 'gpu'"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_says_so_and_suggests_cpu_or_auto(data, device):
    X, Y = data
    with pytest.raises(ValueError, match=r"finds no CUDA device.*Use device='cpu', or device='auto'"):
        small(device=device).fit(X, Y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu_and_unpickles_on_a_machine_without_cuda(data, tmp_path):
    X, Y = data
    gpu = small(device="cuda", max_epochs=3).fit(X, Y)
    assert gpu.net_.module_.head.linear.weight.is_cuda
    cpu = small(device="cpu", max_epochs=3).fit(X, Y)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-3, atol=1e-4)
    path = tmp_path / "gpu_model.pkl"
    path.write_bytes(pickle.dumps(gpu))
    np.save(tmp_path / "X.npy", X)
    script = (
        "import pathlib, pickle, warnings, numpy as np, torch\n"
        "from sklearn_costs.exceptions import DeviceWarning\n"
        "assert not torch.cuda.is_available()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    m = pickle.loads(pathlib.Path({str(path)!r}).read_bytes())\n"
        "assert [w.category for w in caught if issubclass(w.category, UserWarning)] == [DeviceWarning], caught\n"
        "assert m.device_ == 'cpu' and m.net_.device == 'cpu', (m.device_, m.net_.device)\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, m.predict(np.load({str(tmp_path / 'X.npy')!r})))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), gpu.predict(X), rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_are_cut_on_the_gpu_and_bfloat16_trains_close_to_float32(data):
    X, Y = data
    seen = []
    original = SliceLoader.__iter__

    def spy(loader):
        seen.append(loader.dataset.X.device.type)
        return original(loader)

    SliceLoader.__iter__ = spy
    try:
        mixed = small(device="cuda", precision="bfloat16", max_epochs=10).fit(X, Y)
    finally:
        SliceLoader.__iter__ = original
    assert set(seen) == {"cuda"}
    full = small(device="cuda", max_epochs=10).fit(X, Y)
    np.testing.assert_allclose(mixed.predict(X), full.predict(X), rtol=0.05)


@pytest.mark.parametrize("estimator", ["poisson", "gaussian"])
def test_tensor_slices_and_skorch_dataloader_train_the_same_network(data, estimator, monkeypatch):
    X, Y = data
    if estimator == "poisson":
        make, y = small, Y
    else:
        from sklearn_costs import GaussianUncertaintyRegressor

        make, y = GaussianUncertaintyRegressor, X[:, 0] ** 2
    predictions, histories = {}, {}
    for batching in ("slices", "dataloader"):
        monkeypatch.setattr(type(make()), "_batching", batching)
        model = make(max_epochs=4, dropout=0.1, batch_size=32, random_state=3).fit(X, y)
        predictions[batching] = model.predict(X)
        histories[batching] = model.history_[["train_loss", "valid_loss"]].to_numpy()
    np.testing.assert_allclose(predictions["slices"], predictions["dataloader"], rtol=1e-6)
    np.testing.assert_allclose(histories["slices"], histories["dataloader"], rtol=1e-6)


def test_bfloat16_mixed_precision_trains_close_to_float32(data):
    X, Y = data
    full = small(max_epochs=10).fit(X, Y)
    mixed = small(max_epochs=10, precision="bfloat16").fit(X, Y)
    assert mixed.net_.autocast_dtype is torch.bfloat16
    assert mixed.predict(X).dtype == full.predict(X).dtype
    assert not np.array_equal(mixed.predict(X), full.predict(X))  # autocast did run
    np.testing.assert_allclose(mixed.predict(X), full.predict(X), rtol=0.05)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"max_epochs": 0}, r"'max_epochs' parameter of PoissonSpikeRegressor must be an int in the range \[1, inf\)"),
        ({"batch_size": 0}, r"'batch_size' parameter .* must be an int in the range \[1, inf\), -1 \(the whole data\) "
                            r"or a str among \{'auto'\}"),
        ({"lr": -1.0}, r"'lr' parameter .* must be a float in the range \(0.0, inf\)"),
        ({"validation_fraction": 1.0}, r"'validation_fraction' parameter .* must be a float in the range \(0.0, 1.0\)"),
        ({"hidden_layer_sizes": (8, 0)}, "'hidden_layer_sizes' parameter .* must be a tuple of positive ints"),
        ({"activation": "swish!"}, "'activation' parameter .* must be a str among .*'relu'"),
        ({"optimizer": "adamm"}, "'optimizer' parameter .* must be a str among .*'adam'.* or a torch.optim.Optimizer"),
        ({"precision": "fp8"}, "'precision' parameter .* must be a str among .*'bfloat16'"),
        ({"optimizer": "lbfgs", "weight_decay": 0.1}, "lbfgs' has no weight_decay"),
    ],
)
def test_bad_parameters_are_refused_at_fit(data, params, message):
    X, Y = data
    with pytest.raises(ValueError, match=message):
        small(**params).fit(X, Y)


def test_optimizer_class_and_batch_minus_one(data):
    X, Y = data
    model = small(optimizer=torch.optim.SGD, batch_size=-1, lr=0.05).fit(X, Y)
    assert model.net_.history[-1, "train_batch_count"] == 1
    assert isinstance(model.net_.optimizer_, torch.optim.SGD)


@pytest.mark.parametrize("sized", [True, False])
def test_every_batch_loss_of_an_epoch_reaches_the_history_from_any_iterator(data, sized):
    # the losses wait on the device in one tensor sized by the iterator, or grown where it has no length
    X, Y = data
    net = small(max_epochs=1).fit(X, Y).net_
    dataset = TensorDataset(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32))
    batches = list(SliceLoader(dataset, batch_size=1, shuffle=False))
    expected = [net.validation_step(batch)["loss"].item() for batch in batches]
    net.history.new_epoch()
    net.run_single_epoch(batches if sized else iter(batches), training=False, prefix="valid",
                         step_fn=net.validation_step)
    assert net.history[-1, "valid_batch_count"] == len(batches) > 64
    np.testing.assert_allclose(net.history[-1, "batches", :, "valid_loss"], expected, rtol=1e-6)


def test_pickle_round_trip_gives_identical_predictions(data):
    X, Y = data
    model = small().fit(X, Y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_n_threads_is_restored(data):
    X, Y = data
    before = torch.get_num_threads()  # 1 in a pytest-xdist worker on two cores: then the fit asks for 2
    small(n_threads=2 if before == 1 else 1).fit(X, Y).predict(X)
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------------------------ reliability (issue #16)


def _regressor(name, **kw):
    kw.setdefault("hidden_layer_sizes", (8,))
    kw.setdefault("random_state", 0)
    return PoissonSpikeRegressor(**kw) if name == "poisson" else GaussianUncertaintyRegressor(**kw)


def _targets(name, data):
    X, Y = data
    return Y if name == "poisson" else 2 * X[:, 0] + X[:, 1]


@pytest.mark.parametrize("name, loss", [("poisson", "poisson"), ("poisson", "negative_binomial"),
                                        ("gaussian", "gaussian"), ("gaussian", "student_t")])
def test_a_one_row_fit_warns_nothing(data, name, loss):
    X, _ = data
    y = _targets(name, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _regressor(name, loss=loss, max_epochs=2).fit(X[:1], y[:1])
    assert np.isfinite(model.predict(X[:2])).all()


def _interrupt_after(monkeypatch, n_steps):
    from sklearn_costs._training import CostNet

    calls = []
    original = CostNet.train_step

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > n_steps:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CostNet, "train_step", step)
    return calls


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("name", ["poisson", "gaussian"])
def test_ctrl_c_during_fit_propagates_and_leaves_the_model_as_it_was(data, monkeypatch, name, warm_start):
    X, _ = data
    y = _targets(name, data)
    model = _regressor(name, max_epochs=3, warm_start=warm_start).fit(X, y)
    before, history = model.predict(X), model.history_.copy()
    _interrupt_after(monkeypatch, 80)  # in the third epoch
    with pytest.raises(KeyboardInterrupt):
        model.set_params(max_epochs=50, random_state=1).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    pd.testing.assert_frame_equal(model.history_, history)
    fresh = _regressor(name, max_epochs=50)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, y)
    assert not hasattr(fresh, "net_")


def test_early_stopping_still_ends_the_fit_quietly(data):
    X, Y = data
    model = small(max_epochs=200, n_iter_no_change=2, lr=0.1).fit(X, Y)
    assert model.n_iter_ < 200



@pytest.mark.parametrize(
    "change, message",
    [
        ({"loss": "negative_binomial"}, r"loss changed from PoissonLoss\(rate_link='log'\) to NegativeBinomialLoss"),
        ({"hidden_layer_sizes": (4, 4)}, r"hidden_layer_sizes changed from \(8,\) to \(4, 4\)"),
        ({"activation": "tanh"}, "activation changed from 'relu' to 'tanh'"),
        ({"dropout": 0.2}, "dropout changed from 0.0 to 0.2"),
    ],
)
def test_warm_start_refuses_a_changed_network_and_keeps_the_fitted_one(data, change, message):
    X, Y = data
    model = small(warm_start=True, max_epochs=2).fit(X, Y)
    before = model.predict(X)
    with pytest.raises(ValueError, match=message + r".*warm_start=False"):
        model.set_params(**change).fit(X, Y)
    np.testing.assert_array_equal(model.predict(X), before)
    assert model.n_iter_ == 2
    model.set_params(warm_start=False).fit(X, Y)  # a new network is built
    assert model.n_iter_ == 2 and model.predict(X).shape == Y.shape


def test_warm_start_refuses_data_of_another_shape(data):
    X, Y = data
    model = small(warm_start=True, max_epochs=2).fit(X, Y[:, :1])
    before = model.predict(X)
    with pytest.raises(ValueError, match=r"targets changed from 1 to 2.*warm_start=False"):
        model.fit(X, Y)
    with pytest.raises(ValueError, match=r"features changed from 3 to 2.*warm_start=False"):
        model.fit(X[:, :2], Y[:, :1])
    np.testing.assert_array_equal(model.predict(X), before)
    assert model.n_outputs_ == 1 and model.n_features_in_ == 3
    model.fit(X[:100], Y[:100, 0])  # the same shapes (a 1-D target of one neuron) continue
    assert model.n_iter_ == 4 and model.predict(X[:3]).shape == (3,)


def test_warm_start_with_a_changed_gaussian_std_link_is_refused(data):
    X, _ = data
    model = _regressor("gaussian", warm_start=True, max_epochs=2).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"loss changed.*std_link='softplus'.*std_link='exp'"):
        model.set_params(std_link="exp").fit(X, X[:, 0])



class _History(list):
    """What the divergence guard reads of a net: its history rows."""


def _guard_with(initial, rows):
    from sklearn_costs._divergence import DivergenceGuard

    guard = DivergenceGuard(lr=1e-3)
    guard.checked_, guard.initial_loss_, guard.best_ = 0, initial, {}
    net = type("Net", (), {"history": _History(rows)})()
    guard._check_losses(net)


def test_a_soaring_validation_loss_is_over_fitting_while_the_training_loss_is_below_its_start():
    # what a 40-row table gave (UCI concrete): the held-out NLL at 2e4 nats from an over-fitted std, while the
    # network fits its training rows ever better; early stopping keeps the best epoch, the guard must not fail
    over_fitting = [{"epoch": 1, "train_loss": 1.2, "valid_loss": 1.6},
                    {"epoch": 40, "train_loss": -0.6, "valid_loss": 2.25e4}]
    _guard_with(1.47, over_fitting)
    # the same validation loss while the training loss is above its start: the network has left the data
    diverged = [{"epoch": 1, "train_loss": 30.0, "valid_loss": 2.25e4}]
    with pytest.raises(TrainingDivergedError, match="validation loss ran away at epoch 1: 2.25e"):
        _guard_with(1.47, diverged)
    # soaring at the first epoch, with nothing within bounds before: a runaway, whatever the training loss does
    with pytest.raises(TrainingDivergedError, match="validation loss ran away at epoch 1"):
        _guard_with(1.47, [{"epoch": 1, "train_loss": 1.2, "valid_loss": 2.25e4}])
    with pytest.raises(TrainingDivergedError, match="training loss ran away at epoch 2"):
        _guard_with(1.47, [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 5e4, "valid_loss": 1.0}])


@pytest.mark.parametrize("optimizer, lr", [("adam", 1e6), ("sgd", 10.0)])
@pytest.mark.parametrize("name", ["poisson", "gaussian"])
def test_a_runaway_loss_stops_the_fit_and_keeps_the_previous_model(data, name, optimizer, lr):
    X, _ = data
    y = _targets(name, data)
    model = _regressor(name, max_epochs=3).fit(X, y)
    before = model.predict(X)
    # a Poisson log rate that runs past float32 gives a loss of inf or nan (training does not clamp it)
    ran_away = (r"(training loss ran away|training loss became (inf|nan)|weights ran away) at epoch 1"
                r".*lower learning rate")
    with pytest.raises(TrainingDivergedError, match=ran_away):
        model.set_params(optimizer=optimizer, lr=lr, max_epochs=20).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    assert model.n_iter_ == 3
    assert np.all(np.abs(before) < 1e3)


def test_divergence_error_is_public():
    from sklearn_costs import TrainingDivergedError as top
    from sklearn_costs.exceptions import TrainingDivergedError as public

    assert top is public is TrainingDivergedError
    assert issubclass(public, FloatingPointError)


@pytest.mark.parametrize("name", ["poisson", "gaussian"])
@pytest.mark.parametrize("optimizer, lr", [("adam", 3e-2), ("sgd", 1e-2), ("adam", 1e-3)])
def test_ordinary_fits_never_raise_the_divergence_guard(data, name, optimizer, lr):
    X, _ = data
    model = _regressor(name, hidden_layer_sizes=(16,), optimizer=optimizer, lr=lr, max_epochs=15)
    model.fit(X, _targets(name, data))
    assert np.isfinite(model.predict(X)).all()


def test_a_model_that_stops_learning_is_not_called_diverged(data):
    # a loss far above its best for a while (warm restart at a high learning rate) but not by orders of magnitude
    X, Y = data
    model = small(max_epochs=10, warm_start=True, early_stopping=False).fit(X, Y)
    model.set_params(lr=0.3).fit(X, Y)  # (before warm starts took the new lr, this ran at the first fit's 1e-3)
    assert model.n_iter_ == 20
    losses = model.history_["train_loss"]
    assert losses.iloc[10:].max() > 1.5 * losses.iloc[:10].min()  # the loss did run far above its best




def test_predictions_that_run_away_while_the_loss_stays_moderate_stop_the_fit(data):
    # A Gaussian NLL whose mean and std grow together grows only like log(std): at lr=1 plain SGD puts the
    # predicted means 1e4 target ranges away while the loss stays near 20 nats.
    X, _ = data
    # one network: five members side by side reach weights above 1e6 first, which the guard stops at epoch 3
    model = _regressor("gaussian", optimizer="sgd", lr=1.0, max_epochs=30, n_members=1)
    with pytest.raises(TrainingDivergedError, match=r"predictions on its training data ran away \(after \d+ epochs\)"):
        model.fit(X, _targets("gaussian", data))
    assert not hasattr(model, "net_")


def test_the_guard_checks_a_large_data_set_on_evenly_spaced_rows_and_a_small_one_whole():
    small = TensorDataset(torch.arange(100.0)[:, None], torch.zeros(100, 1))
    assert _guard_sample(small) is small
    # a tenth of the rows, but at least GUARD_MIN_ROWS and at most GUARD_ROWS
    assert guard_rows(GUARD_MIN_ROWS + 5) == GUARD_MIN_ROWS
    assert guard_rows(30_000) == 3_000
    assert guard_rows(10**7) == GUARD_ROWS
    for n in (GUARD_MIN_ROWS + 5, 3 * GUARD_ROWS + 7, 20 * GUARD_ROWS):
        large = _guard_sample(TensorDataset(torch.arange(float(n))[:, None], torch.zeros(n, 1)))
        rows = large.X[:, 0]
        assert len(large) == guard_rows(n) and rows[0] == 0 and rows[-1] == n - 1
        assert torch.all(torch.diff(rows) > 0)


def test_a_runaway_on_data_larger_than_the_guard_sample_is_stopped(monkeypatch):
    # the guard looks at 64 of the 2000 rows before and after training; its checks still stop the runaway
    monkeypatch.setattr("sklearn_costs._divergence.GUARD_ROWS", 64)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2000, 2)), rng.normal(size=2000)
    model = GaussianUncertaintyRegressor(loss="mse", hidden_layer_sizes=(4,), n_members=1, optimizer="sgd",
                                         lr=1e12, max_epochs=3, random_state=0)
    with pytest.raises(TrainingDivergedError):
        model.fit(X, y)


@pytest.mark.parametrize("optimizer, fused", [("adam", True), ("adamw", True), ("sgd", False)])
def test_adam_updates_all_weights_in_one_fused_kernel_where_pytorch_has_it(data, optimizer, fused):
    from sklearn_costs.base import fused_update_supported

    X, y = data
    model = _regressor("gaussian", optimizer=optimizer, max_epochs=2).fit(X, _targets("gaussian", data))
    group = model.net_.optimizer_.param_groups[0]
    assert bool(group.get("fused")) == (fused and fused_update_supported())
    # a fused fit is a fit like any other: it continues (warm start) and predicts finitely
    model.set_params(warm_start=True).fit(X, _targets("gaussian", data))
    assert model.n_iter_ == 4 and np.isfinite(model.predict(X)).all()


def test_a_restored_or_continued_adam_takes_the_fused_update_of_this_pytorch(data, monkeypatch):
    import sklearn_costs._device as device

    X, y = data
    model = _regressor("gaussian", max_epochs=1).fit(X, _targets("gaussian", data))
    optimizer = model.net_.optimizer_
    for group in optimizer.param_groups:
        group["fused"] = True  # as saved by a PyTorch that has the fused update
    monkeypatch.setattr(device, "fused_update_supported", lambda: False)  # loaded on one that has not
    device.match_fused_update(optimizer, "adam")
    assert all(group["fused"] is None for group in optimizer.param_groups)
    model.set_params(warm_start=True).fit(X, _targets("gaussian", data))  # continues with the plain update
    assert model.n_iter_ == 2 and all(g["fused"] is None for g in model.net_.optimizer_.param_groups)


def test_the_batch_size_of_a_fit_is_reported(data):
    X, _ = data
    model = _regressor("gaussian", max_epochs=1).fit(X, X[:, 0])
    assert model.batch_size == "auto" and model.batch_size_ == model.net_.batch_size == max(16, len(X) // 50)
    assert model.set_params(batch_size=7).fit(X, X[:, 0]).batch_size_ == 7


def test_auto_batch_size_keeps_fifty_steps_an_epoch_up_to_the_devices_cap():
    from sklearn_costs._device import auto_batch_size

    for n_rows, cpu, gpu in [(10, 16, 16), (1_000, 20, 20), (12_800, 256, 256), (100_000, 256, 2_000),
                             (10**7, 256, 4_096)]:
        assert auto_batch_size(n_rows, "cpu") == cpu
        assert auto_batch_size(n_rows, "cuda") == auto_batch_size(n_rows, "cuda:0") == gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_fit_takes_the_gpus_auto_batch_size_and_the_embedder_the_cpus():
    from sklearn_costs import TripletEmbedder

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3)).astype(np.float32)
    model = _regressor("gaussian", max_epochs=1, device="cuda").fit(X, X[:, 0])
    assert model.batch_size_ == model.net_.batch_size == 400  # 20,000 // 50; 256 on the CPU
    labels = np.repeat(np.arange(2_000), 10)
    on = {device: TripletEmbedder(max_epochs=1, device=device, random_state=0).fit(X, labels).batch_size_
          for device in ("cpu", "cuda")}
    assert on["cuda"] == on["cpu"]
