import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_costs import demos
from sklearn_costs.cli import main
from sklearn_costs.losses import refresh

from .test_registry import GOOD_PLUGIN, needs_example_plugin


def test_losses_lists_every_loss_with_task_and_distribution(capsys):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "task", "distribution"]
    rows = {tuple(line.split()[:3]) for line in out[1:]}
    assert ("poisson", "counts", "sklearn-costs") in rows
    assert ("mse", "continuous", "sklearn-costs") in rows and ("mse", "counts", "sklearn-costs") in rows
    assert ("triplet", "embedding", "sklearn-costs") in rows


def test_losses_for_one_task(capsys):
    main(["losses", "--task", "embedding"])
    out = capsys.readouterr().out
    assert "triplet" in out and "poisson" not in out


def test_losses_shows_plugins_and_broken_ones(fake_distribution, capsys):
    fake_distribution("fake-good", "fakeplugin_cli_good", GOOD_PLUGIN,
                      {"renamed_poisson": "fakeplugin_cli_good:Renamed"})
    fake_distribution("fake-broken", "fakeplugin_cli_broken", "raise RuntimeError('boom')\n",
                      {"shiny": "fakeplugin_cli_broken:Shiny"})
    main(["losses"])
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["renamed_poisson", "counts", "fake-good"] for line in out.splitlines())
    broken = next(line for line in out.splitlines() if line.startswith("shiny"))
    assert "fake-broken" in broken and "failed to load: boom" in broken
    refresh()


@needs_example_plugin
def test_console_script_lists_the_installed_example_plugin():
    beside_python = Path(sys.executable).with_name("sklearn-costs")
    exe = str(beside_python) if beside_python.exists() else shutil.which("sklearn-costs")
    if exe is None:
        pytest.skip("the sklearn-costs console script is not on PATH (package not installed)")
    out = subprocess.run([exe, "losses"], capture_output=True, text=True, check=True).stdout
    assert any(line.split()[:3] == ["geometric", "counts", "sklearn-costs-example-plugin"] for line in out.splitlines())


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "sklearn_costs", "losses", "--task", "counts"],
                            capture_output=True, text=True, check=True)
    assert "negative_binomial" in result.stdout


def test_unknown_demo_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["demo", "nope", "--output", str(out)]) == 2
    assert "unknown demo(s) ['nope']" in capsys.readouterr().err
    assert not out.exists()  # refused before the output folder is made


def test_demo_takes_quick_or_full_not_both(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "spikes", "--quick", "--full", "--output", str(tmp_path / "figures")])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()
    with pytest.raises(ValueError, match=r"size must be one of \('quick', 'default', 'full'\); got 'huge'"):
        demos.spikes_demo(tmp_path, size="huge")


@pytest.mark.slow
def test_spikes_demo_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "spikes", "--quick", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "=== demo: spikes (quick)" in out and "4 count losses x 2 time-series folds" in out
    assert "network, negative_binomial" in out and "GLM per neuron" in out
    assert (tmp_path / "spikes_rates.png").stat().st_size > 10_000
    assert (tmp_path / "spikes_training.png").exists()
