"""Every script of the example gallery runs to the end, so that none of them rots.

The test checks that each example's code runs, not what its figures show: the docs build runs the examples in full
for those (``tox -e docs``). So on Linux each example runs as sphinx-gallery runs it, inside the running process,
here a forked copy of the test process whose imports of PyTorch, scikit-learn and the package are already done
(3-5 s of an example when it starts a fresh interpreter) and whose changes to global state (the loss registry,
matplotlib, the working directory) end with it; and in that copy every fit of the package's estimators stops after
``QUICK_EPOCHS`` epochs, and a Dask ``LocalCluster`` forks its worker processes from it instead of starting fresh
interpreters. Elsewhere, or with ``SKLEARN_COSTS_EXAMPLES_SUBPROCESS=1``, each example runs in full in a fresh
interpreter. Both see the real data sets when the tests do (``SKLEARN_COSTS_DATA``), as the docs build does from
the repository: the one-shot example then trains on the Olivetti faces, not on its fallback of digits."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sklearn_costs.datasets import DataNotFoundError, data_home

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
TIMEOUT = 600
#: Epochs of every fit in a forked run (the examples ask for 15 to 100).
QUICK_EPOCHS = 3


def test_the_gallery_has_the_examples_the_docs_promise():
    names = {path.stem for path in EXAMPLES}
    assert {"plot_spike_times_to_rates", "plot_grid_search_count_losses", "plot_uncertainty_calibration",
            "plot_one_shot_faces", "plot_writing_a_loss_plugin", "plot_grid_search_on_dask",
            "plot_spike_history_from_nwb"} <= names


def _environment():
    env = {"MPLBACKEND": "Agg"}
    try:
        env["SKLEARN_COSTS_DATA"] = str(data_home())  # found from the repository, as the docs build finds it
    except DataNotFoundError:
        pass
    return env


def _quick():
    """In the forked copy only: every fit of the package's estimators (and of those the examples' searches and
    Dask workers clone) stops after ``QUICK_EPOCHS`` epochs; Dask forks its workers."""
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
            os.environ.update(env)
            os.chdir(cwd)
            sys.argv = [str(script)]
            import runpy

            import matplotlib

            matplotlib.use("Agg", force=True)
            _quick()
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


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(script, tmp_path, imported):
    if "dask" in script.stem:
        pytest.importorskip("distributed", reason="the Dask example needs sklearn-costs[dask]")
    if "nwb" in script.stem:
        pytest.importorskip("pynwb", reason="the NWB example needs sklearn-costs[neuro]")
    pytest.importorskip("matplotlib", reason="the examples draw figures")
    env = _environment()
    if sys.platform.startswith("linux") and not os.environ.get("SKLEARN_COSTS_EXAMPLES_SUBPROCESS"):
        log = tmp_path / "output.txt"
        code = _run_forked(script, tmp_path, env, log)
        output = log.read_text() if log.exists() else ""
    else:
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env={**os.environ, **env},
                                capture_output=True, text=True, timeout=TIMEOUT)
        code, output = result.returncode, result.stdout + result.stderr
    assert code == 0, f"{script.name} failed ({code}):\n{output[-6000:]}"
