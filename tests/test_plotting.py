"""The figures of sklearn_costs.plotting draw what they say for every kind of ``y`` and model they take."""

import numpy as np
import pandas as pd
import pytest

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor
from sklearn_costs.plotting import plot_prediction_bands, plot_reliability_diagram, plot_std_vs_error

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

rng = np.random.default_rng(0)
X = pd.DataFrame({"x0": rng.uniform(-2, 2, 80), "x1": rng.normal(size=80)})
Y = pd.Series(np.sin(X["x0"]) + 0.3 * rng.normal(size=80), name="target")


@pytest.fixture(scope="module")
def model():
    return GaussianUncertaintyRegressor(hidden_layer_sizes=(8,), n_members=1, max_epochs=2, random_state=0).fit(X, Y)


def _points(ax):
    return np.concatenate([collection.get_offsets() for collection in ax.collections[:1]])


@pytest.mark.parametrize("plot", [plot_std_vs_error, lambda m, X, y: plot_prediction_bands(m, X, y, "x0")])
def test_a_one_column_dataframe_plots_the_same_points_as_a_series_or_an_array(model, plot):
    import matplotlib.pyplot as plt

    drawn = [_points(plot(model, X, y)) for y in (Y, Y.to_frame(), Y.to_numpy())]
    plt.close("all")
    assert drawn[0].shape == (80, 2)
    for points in drawn[1:]:
        np.testing.assert_array_equal(points, drawn[0])


def test_the_reliability_diagram_names_an_ensemble_by_its_members_loss(model):
    import matplotlib.pyplot as plt

    ensemble = DeepEnsembleRegressor(model, n_estimators=2, random_state=0).fit(X, Y)
    ax = plot_reliability_diagram(ensemble, X, Y)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    plt.close("all")
    assert labels[0] == "calibrated" and labels[1].startswith("gaussian (ECE ")
