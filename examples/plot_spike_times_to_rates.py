"""
From spike times to firing rates with pandas
============================================

A neuroscientist's path from raw spike times to a scored model of every neuron's firing rate: bin the spikes,
average the behavioural covariates onto the same bins, add the previous bins as features, and fit one network for
all neurons with the Poisson likelihood.

Why Poisson: the rate that drives a neuron varies smoothly with behaviour, while in each millisecond a spike comes
or not, independently. Counts of such events in a 50 ms bin follow a Poisson distribution with the bin's expected
count :math:`\\lambda_{i,t}`, so the cost is the Poisson negative log-likelihood
:math:`\\sum_{i,t} \\lambda_{i,t} - y_{i,t} \\log \\lambda_{i,t} + \\log y_{i,t}!`.
"""

# %%
# Spike times and covariates
# --------------------------
# The simulator gives what a recording gives: a long table of spike times (one row per spike) and covariates
# sampled at their own rate (here 100 Hz), plus the true rates that generated the spikes.
import matplotlib.pyplot as plt

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.datasets import make_motorcycle_spikes
from sklearn_costs.plotting import plot_rates, plot_training_curves
from sklearn_costs.preprocessing import LagFeatures, bin_covariates, bin_spikes

ride = make_motorcycle_spikes(n_neurons=12, duration=200.0, random_state=0)
print(ride.spikes.head())
print(ride.covariates.iloc[:3, :5])

# %%
# Counts per 50 ms bin
# --------------------
# ``bin_spikes`` counts every neuron's spikes per bin in one vectorised pass; ``bin_covariates`` averages the
# covariates over the same bins, so rows line up.
counts = bin_spikes(ride.spikes, bin_width=0.05, t_start=0.0, t_stop=200.0)
covariates = bin_covariates(ride.covariates, counts.index, bin_width=0.05)
print(counts.shape, covariates.shape)
counts.iloc[:5, :6]

# %%
# The current and the previous bins as inputs
# -------------------------------------------
# A neuron responds to what happened a little earlier too. ``LagFeatures`` adds each covariate's values at the
# previous bins and keeps names, so it is the first step of a pipeline. Time order matters: the last fifth of the
# ride is the test set, not a random sample of bins.
from sklearn.pipeline import make_pipeline

cut = int(0.8 * len(counts))
X_train, X_test = covariates.iloc[:cut], covariates.iloc[cut:]
Y_train, Y_test = counts.iloc[:cut], counts.iloc[cut:]

model = make_pipeline(
    LagFeatures(n_lags=2),
    PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), max_epochs=100, random_state=0),
)
model.fit(X_train, Y_train)
print(f"fraction of Poisson deviance explained (D2), mean over neurons: {model.score(X_test, Y_test):.3f}")

# %%
# Per-neuron scores and the predicted rates
# -----------------------------------------
# ``score_per_neuron`` gives D2 neuron by neuron; ``predict`` returns the expected count per bin, always positive.
import pandas as pd

lagged_test = model[0].transform(X_test)
per_neuron = pd.Series(model[-1].score_per_neuron(lagged_test, Y_test), index=counts.columns, name="D2")
print(per_neuron.round(3).to_string())

window = slice(0, 300)
fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
plot_rates(Y_test.iloc[window], model.predict(X_test.iloc[window]),
           true_rates=ride.expected_counts.iloc[cut:].iloc[window], bin_width=0.05, axes=axes)
fig.tight_layout()

# %%
# Training curves
# ---------------
# Early stopping held out the last 10% of the training bins (not random bins, which would sit between training
# neighbours) and kept the weights of the best validation epoch.
plot_training_curves(model[-1])
plt.tight_layout()
