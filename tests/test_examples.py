"""Every script of the example gallery runs to the end, as in the docs build, so that none of them rots."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_the_gallery_has_the_examples_the_docs_promise():
    names = {path.stem for path in EXAMPLES}
    assert {"plot_spike_times_to_rates", "plot_grid_search_count_losses", "plot_uncertainty_calibration",
            "plot_one_shot_faces", "plot_writing_a_loss_plugin", "plot_grid_search_on_dask",
            "plot_spike_history_from_nwb"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(script, tmp_path):
    if "dask" in script.stem:
        pytest.importorskip("distributed", reason="the Dask example needs sklearn-costs[dask]")
    if "nwb" in script.stem:
        pytest.importorskip("pynwb", reason="the NWB example needs sklearn-costs[neuro]")
    pytest.importorskip("matplotlib", reason="the examples draw figures")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
