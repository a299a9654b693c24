"""Hyper-parameter search on a real Dask cluster through joblib, and models moving between processes."""

import multiprocessing
import os
import pickle
import traceback

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

from sklearn_costs import PoissonSpikeRegressor

distributed = pytest.importorskip("distributed", reason="needs dask.distributed: pip install 'sklearn-costs[dask]'")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    Y = rng.poisson(np.exp(0.3 + X[:, :2] @ np.array([[0.6, -0.2], [0.1, 0.5]])))
    return X, Y


def _search_on_a_local_cluster(search, X, Y):
    """``search`` fitted through joblib on a two-process ``LocalCluster``, and the workers' process ids.

    The workers are forked from this process, its imports done (spawned ones import PyTorch and the package again:
    5-30 s on two busy cores); the search's fits and models still travel between processes."""
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            fitted = clone(search).fit(X, Y)
        return fitted, client.run(lambda: os.getpid())


def _in_a_forked_child(function, *args, timeout=300):
    """``function(*args)`` run in a forked child of this process, its result pickled back.

    A process that has run a Dask cluster keeps Dask's offload thread; a later fork of it (tests/test_examples.py
    forks each example) inherits the executor without its thread, and a cluster started there waits forever."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def run():
        try:
            torch.set_num_threads(1)  # the parent's OpenMP threads are not in this copy
            sender.send((True, function(*args)))
        except BaseException:
            sender.send((False, traceback.format_exc()))

    child = context.Process(target=run)
    child.start()
    try:
        assert receiver.poll(timeout), f"the forked child did not answer in {timeout} s (exit code {child.exitcode})"
        done, result = receiver.recv()
    finally:
        child.join(timeout=30)
    assert done, f"the forked child failed:\n{result}"
    return result


def test_grid_search_over_losses_on_a_local_dask_cluster_equals_the_serial_run(counts):
    X, Y = counts
    # n_threads=1: two single-threaded fits per worker pair, and the same arithmetic as the serial run
    search = GridSearchCV(
        PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=8, n_threads=1, random_state=0),
        {"loss": ["poisson", "negative_binomial", "zero_inflated_poisson"]},
        cv=TimeSeriesSplit(n_splits=3),
        n_jobs=-1,
    )
    serial = clone(search).set_params(n_jobs=None).fit(X, Y)
    on_dask, workers = _in_a_forked_child(_search_on_a_local_cluster, search, X, Y)
    assert len(workers) == 2 and os.getpid() not in workers.values()  # two other processes
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"],
                               rtol=1e-6)
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_allclose(on_dask.predict(X), serial.predict(X), rtol=1e-6)


def test_a_fitted_model_travels_to_another_process_and_predicts_the_same(counts):
    X, Y = counts
    model = PoissonSpikeRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X, Y)
    with joblib.Parallel(n_jobs=2, backend="loky") as parallel:
        remote = parallel(joblib.delayed(pickle.loads(pickle.dumps(model)).predict)(X) for _ in range(2))
    for prediction in remote:
        np.testing.assert_allclose(prediction, model.predict(X), rtol=1e-6)
