"""Every script of the example gallery runs to the end, so that none of them rots.

The test checks that each example's code runs, not what its figures show: the docs build runs the examples in full
for those (``tox -e docs``). Here every fit of the package's estimators stops after ``QUICK_EPOCHS`` epochs, and a
Dask ``LocalCluster`` forks its worker processes instead of starting fresh interpreters (:func:`quick`).

On Linux an example runs as sphinx-gallery runs it, inside the running process: here a forked copy of the test
process, whose imports of PyTorch, scikit-learn and the package are already done (3-5 s of an example in a fresh
interpreter), with one PyTorch thread (an OpenMP thread pool does not survive a fork), and whose changes to global
state (the loss registry, matplotlib, the working directory) end with it. An example that starts a Dask cluster
(``FRESH``), and every example elsewhere or with ``SKLEARN_COSTS_EXAMPLES_SUBPROCESS=1``, runs in a fresh
interpreter instead: a copy of a test process that has run other clusters can hang in its own. All see the real
data sets when the tests do (``SKLEARN_COSTS_DATA``), as the docs build does from the repository: the one-shot
example then trains on the Olivetti faces, not on its fallback of digits."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sklearn_costs.datasets import DataNotFoundError, data_home

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = 600
#: Epochs of every fit (the examples ask for 15 to 100).
QUICK_EPOCHS = 3
#: Examples that run in a fresh interpreter even on Linux.
FRESH = {"plot_grid_search_on_dask"}
#: Examples that take more than 2 s here even so (CONTRIBUTING.md): marked ``slow``.
SLOW = {"plot_grid_search_on_dask", "plot_spike_history_from_nwb", "plot_uncertainty_calibration",
        "plot_one_shot_faces"}
#: What the fresh interpreter runs: the example as ``__main__``, after :func:`quick` (and the import that PyTorch's
#: optimizers make at their first use, once for the workers it forks).
BOOTSTRAP = ("import runpy, sys, torch._dynamo; sys.path.insert(0, sys.argv[1]); "
             "from tests.test_examples import quick; quick(); "
             "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def test_the_gallery_has_the_examples_the_docs_promise():
    names = {path.stem for path in EXAMPLES}
    assert {"plot_spike_times_to_rates", "plot_grid_search_count_losses", "plot_uncertainty_calibration",
            "plot_one_shot_faces", "plot_writing_a_loss_plugin", "plot_grid_search_on_dask",
            "plot_spike_history_from_nwb"} <= names


def quick():
    """In the process that runs an example (and the Dask workers it forks): every fit of the package's estimators,
    and of the clones that searches and workers make of them, stops after ``QUICK_EPOCHS`` epochs; Dask forks its
    workers."""
    from sklearn_costs.base import NeuralCostEstimator

    resolved = NeuralCostEstimator._setting

    def capped(self, name):
        value = resolved(self, name)
        return min(value, QUICK_EPOCHS) if name == "max_epochs" else value

    NeuralCostEstimator._setting = capped
    try:
        import dask
    except ImportError:
        return
    dask.config.set({"distributed.worker.multiprocessing-method": "fork"})


def _environment():
    env = {"MPLBACKEND": "Agg"}
    try:
        env["SKLEARN_COSTS_DATA"] = str(data_home())  # found from the repository, as the docs build finds it
    except DataNotFoundError:
        pass
    return env


def _run_forked(script, cwd, env, log):
    """Run ``script`` as ``__main__`` in a forked child with ``cwd`` and ``env``, its output to ``log``; the exit
    status (0: it ran to the end)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            import runpy

            import matplotlib
            import torch

            torch.set_num_threads(1)  # the parent's OpenMP threads are not in this copy: with more, it would hang
            os.environ.update(env)
            os.chdir(cwd)
            sys.argv = [str(script)]
            matplotlib.use("Agg", force=True)
            quick()
            runpy.run_path(str(script), run_name="__main__")
            status = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return f"timed out after {TIMEOUT} s"
        time.sleep(0.05)


def _run_fresh(script, cwd, env):
    """Run ``script`` in a fresh interpreter, after :func:`quick`; the exit status and the output."""
    try:
        done = subprocess.run([sys.executable, "-c", BOOTSTRAP, str(ROOT), str(script)], cwd=cwd,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return f"timed out after {TIMEOUT} s", f"{exc.stdout or ''}{exc.stderr or ''}"
    return done.returncode, done.stdout + done.stderr


def _forkable(script):
    """Whether ``script`` may run in a forked copy of this process: on Linux, unless asked otherwise, and for an
    example that starts a Dask cluster (``FRESH``) only while no thread of Dask's is alive here. A process that has
    run a cluster keeps its offload thread ("Dask-Offload"); a copy of it has the executor without the thread, and
    its own cluster then waits on it forever."""
    if not sys.platform.startswith("linux") or os.environ.get("SKLEARN_COSTS_EXAMPLES_SUBPROCESS"):
        return False
    return script.stem not in FRESH or not any(thread.name.startswith("Dask-") for thread in threading.enumerate())


@pytest.fixture(scope="module")
def imported():
    """What every example imports, imported once in this process before the forks (under pytest-xdist a worker
    has most of it already): PyTorch's compiler front end (its optimizers import it at their first use),
    matplotlib, the package's modules."""
    import importlib

    for name in ("torch._dynamo", "matplotlib.pyplot", "pandas", "scipy.stats", "sklearn.model_selection",
                 "sklearn.pipeline", "skorch", "sklearn_costs", "sklearn_costs.plotting", "sklearn_costs.datasets",
                 "sklearn_costs.preprocessing", "sklearn_costs.metrics"):
        importlib.import_module(name)


@pytest.mark.parametrize("script", [pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if path.stem in SLOW
                                                 else []) for path in EXAMPLES])
def test_example_runs(script, tmp_path, imported):
    if "dask" in script.stem:
        pytest.importorskip("distributed", reason="the Dask example needs sklearn-costs[dask]")
    if "nwb" in script.stem:
        pytest.importorskip("pynwb", reason="the NWB example needs sklearn-costs[neuro]")
    pytest.importorskip("matplotlib", reason="the examples draw figures")
    env = _environment()
    forked = _forkable(script)
    if forked:
        log = tmp_path / "output.txt"
        code = _run_forked(script, tmp_path, env, log)
        output = log.read_text() if log.exists() else ""
    else:
        code, output = _run_fresh(script, tmp_path, env)
    assert code == 0, f"{script.name} failed ({code}):\n{output[-6000:]}"
