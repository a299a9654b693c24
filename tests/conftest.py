import os
import sys
import textwrap

import pytest
import torch

from sklearn_costs.datasets import DataNotFoundError, data_home
from sklearn_costs.losses import refresh


def pytest_configure(config):
    """Under pytest-xdist, share the cores among the workers: PyTorch's default of one thread per core in every
    worker would oversubscribe them (each fit then waits for the others' threads)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(share)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))  # the examples and demos run in subprocesses


#: Summed durations (setup, call and teardown) of every test and of those marked ``slow``, for the summary line.
_TEST_SECONDS = {"all": 0.0, "slow": 0.0}


def pytest_runtest_logreport(report):
    _TEST_SECONDS["all"] += report.duration
    if "slow" in report.keywords:
        _TEST_SECONDS["slow"] += report.duration


def pytest_terminal_summary(terminalreporter):
    """The share of the summed test time that the ``slow`` tests take (CONTRIBUTING.md: under 10%)."""
    total, slow = _TEST_SECONDS["all"], _TEST_SECONDS["slow"]
    if total > 0:
        terminalreporter.write_line(f"slow tests: {slow:.1f} s of {total:.1f} s of summed test time "
                                    f"({100 * slow / total:.1f}%; CONTRIBUTING.md keeps it under 10%)")


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install a throw-away distribution with loss entry points by putting it, with its dist-info, on sys.path.

    ``make(dist_name, module_source, entry_points)`` writes ``module_source`` as a module and registers
    ``{name: "module:attr"}`` in the group ``sklearn_costs.losses``; the registry cache is cleared before and after.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh()

    def make(dist_name, module_name, module_source, entry_points):
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(module_source))
        info = tmp_path / f"{dist_name.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[sklearn_costs.losses]\n{lines}\n")
        refresh()

    yield make
    for name in [m for m in sys.modules if m.startswith("fakeplugin")]:
        del sys.modules[name]
    refresh()


def real_data_or_skip():
    """The data folder, or skip naming where it was looked for."""
    try:
        return data_home()
    except DataNotFoundError as exc:
        pytest.skip(f"real data not available: {exc}")
