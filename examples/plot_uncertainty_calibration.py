"""
Error bars you can trust: predicting a standard deviation
=========================================================

A chemist predicting an atom's position needs to know *how sure* each prediction is: an easy configuration and a
strained one should not get the same error bar. ``GaussianUncertaintyRegressor`` predicts a mean
:math:`\\mu_i` and a standard deviation :math:`\\sigma_i` per sample and is trained by the Gaussian negative
log-likelihood :math:`\\sum_i \\log \\sigma_i + (y_i - \\mu_i)^2 / 2\\sigma_i^2`, which punishes an error bar
that is too small (the squared error term) and one that is too large (the log term) alike.

This example checks that the error bars are *calibrated*: 90% intervals should hold 90% of the targets.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sklearn_costs import GaussianUncertaintyRegressor
from sklearn_costs.datasets import make_heteroscedastic_regression
from sklearn_costs.metrics import uncertainty_report
from sklearn_costs.plotting import plot_prediction_bands, plot_reliability_diagram, plot_std_vs_error

train = make_heteroscedastic_regression(2000, random_state=0)
test = make_heteroscedastic_regression(2000, random_state=1)
print(f"true noise std ranges from {test.true_std.min():.2f} to {test.true_std.max():.2f}")

# %%
# A heteroscedastic model and a constant-std baseline
# ---------------------------------------------------
# ``loss="mse"`` is the homoscedastic reference: least squares for the mean, one std fitted on the residuals.
models = {
    loss: GaussianUncertaintyRegressor(loss=loss, lr=1e-2, batch_size=128, max_epochs=60, random_state=0)
    .fit(train.X, train.y)
    for loss in ("gaussian", "student_t", "mse")
}
report = pd.DataFrame({loss: uncertainty_report(model, test.X, test.y) for loss, model in models.items()}).T
print(report.round(3).to_string())

# %%
# ``predict(X, return_std=True)`` returns ``(mean, std)`` as scikit-learn's Gaussian process does, and
# ``predict_interval`` the bounds of a central interval.
mean, std = models["gaussian"].predict(test.X.iloc[:5], return_std=True)
lower, upper = models["gaussian"].predict_interval(test.X.iloc[:5], coverage=0.9)
pd.DataFrame({"mean": mean, "std": std, "true std": test.true_std[:5], "90% low": lower, "90% high": upper})

# %%
# Reliability diagram and recovered noise
# ---------------------------------------
# On the diagonal, each predictive quantile is exceeded as often as it should be. The constant std of the
# baseline is too wide where the noise is small and too narrow where it is large, which the diagram shows as an
# S-shape; the heteroscedastic model recovers the true std.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for model in models.values():
    plot_reliability_diagram(model, test.X, test.y, ax=axes[0])
plot_std_vs_error(models["gaussian"], test.X, test.y, ax=axes[1], true_std=test.true_std)
fig.tight_layout()

# %%
# Prediction bands along one input
# --------------------------------
x0 = np.random.default_rng(2).uniform(-2, 2, 400)
slice_X = pd.DataFrame({"x0": x0, "x1": 0.0, "x2": 0.0, "x3": 0.0})
slice_y = np.sin(2 * x0) + (0.05 + 0.2 * (1 + np.sin(3 * x0))) * np.random.default_rng(3).normal(size=400)
ax = plot_prediction_bands(models["gaussian"], slice_X, slice_y, "x0")
ax.set_title("x1 = x2 = x3 = 0")
plt.tight_layout()
