"""
Spike history and coupling, from an NWB file to a closed-loop simulation
========================================================================

The models neuroscientists fit to population recordings (Pillow et al. 2008) see, besides the behaviour, each
neuron's own recent spikes (a refractory period, bursts) and the other neurons' (coupling). This example goes the
whole way with a recording kept as NWB, the community's file format:

1. read the units, the hand position and the trials of an NWB file into binned tables (``load_nwb``);
2. add every neuron's past counts as features (``SpikeHistory``), with history restarting at every trial;
3. cross-validate by trial, with and without history;
4. read the coupling filters off a Poisson GLM, and compare them with the truth;
5. simulate the fitted model in closed loop, its own spikes feeding its history (``simulate_recurrent``).

Reading NWB needs the ``neuro`` extra: ``pip install "sklearn-costs[neuro]"`` (pynapple and pynwb).
"""

# %%
# A recording with known history filters
# --------------------------------------
# Four neurons driven by the hand's velocity, each with a refractory self-history, and two couplings
# (neuron 0 excites neuron 1, neuron 1 inhibits neuron 2), in 12 trials of 20 s with a 5 s pause between them.
# The counts are drawn bin by bin (50 ms), then placed as spike times inside their bins, as a recording would
# store them.
from datetime import datetime, timezone

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
bin_width, n_lags = 0.05, 10
n_trials, trial_bins, pause_bins = 12, 400, 100
n_bins = n_trials * (trial_bins + pause_bins)
time = np.arange(n_bins) * bin_width
velocity = np.stack([np.convolve(rng.normal(size=n_bins), np.hanning(15), mode="same") for _ in range(2)], 1)
velocity /= velocity.std(0)
in_trial = (np.arange(n_bins) % (trial_bins + pause_bins)) < trial_bins

lags = np.arange(1, n_lags + 1)
true_filters = np.zeros((4, 4, n_lags))  # [to, from, lag]
for i in range(4):
    true_filters[i, i] = -1.5 * np.exp(-(lags - 1) / 1.5)  # refractoriness
true_filters[1, 0] = 0.3 * np.exp(-((lags - 2) ** 2) / 4.0)  # 0 excites 1, peaking 2 bins later
true_filters[2, 1] = -0.5 * np.exp(-((lags - 3) ** 2) / 6.0)  # 1 inhibits 2
tuning = rng.normal(0, 0.6, size=(4, 2))
counts = np.zeros((n_bins, 4))
for t in range(n_bins):
    eta = np.log([0.6, 0.4, 0.5, 0.3]) + tuning @ velocity[t]
    start = t - (t % (trial_bins + pause_bins))  # history restarts with each trial
    for lag in range(1, min(n_lags, t - start) + 1):
        eta = eta + true_filters[:, :, lag - 1] @ counts[t - lag]
    counts[t] = rng.poisson(np.exp(eta)) if in_trial[t] else 0
spike_times = {i: np.sort(np.repeat(time, counts[:, i].astype(int)) + rng.uniform(0, bin_width,
                                                                                  int(counts[:, i].sum())))
               for i in range(4)}

# %%
# Write it as NWB, read it back binned
# ------------------------------------
# pynwb writes the units table, the hand position (a ``SpatialSeries`` sampled at 100 Hz) and the trials;
# ``load_nwb`` reads them with pynapple, bins the spikes and averages the position onto the same bins.
import pynwb
from pynwb.behavior import Position, SpatialSeries

nwb = pynwb.NWBFile(session_description="simulated reaching", identifier="example",
                    session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
for times in spike_times.values():
    nwb.add_unit(spike_times=times)
position = Position(name="Position")
fine = np.arange(2 * n_bins) * bin_width / 2  # 100 Hz, twice the bin rate
position.add_spatial_series(SpatialSeries(name="hand", data=np.repeat(velocity, 2, axis=0), timestamps=fine,
                                          reference_frame="start of the reach"))
nwb.create_processing_module("behavior", "behaviour").add(position)
for k in range(n_trials):
    start = k * (trial_bins + pause_bins) * bin_width
    nwb.add_trial(start_time=start, stop_time=start + trial_bins * bin_width)
with pynwb.NWBHDF5IO("session.nwb", "w") as io:
    io.write(nwb)

from sklearn_costs.datasets import load_nwb
from sklearn_costs.preprocessing import segment_labels

data = load_nwb("session.nwb", bin_width=bin_width, t_start=0.0, t_stop=n_bins * bin_width)
trial = segment_labels(data.counts.index, epochs=data.trials)
keep = trial >= 0  # the bins inside a trial
Y = data.counts[keep]
X = data.covariates.join(data.counts)[keep].assign(trial=trial[keep])
print(X.shape, "bins in trials;", data.trials.shape[0], "trials")
X.head()

# %%
# History features in a pipeline, cross-validated by trial
# --------------------------------------------------------
# ``SpikeHistory`` replaces the count columns of ``X`` by their past (lags 1..10 on raised-cosine bumps): bin
# ``t``'s features never hold bin ``t``'s counts, the targets. ``trial_col`` restarts the history at each
# trial. ``GroupKFold`` over trials keeps every test trial unseen.
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.preprocessing import SpikeHistory

units = list(Y.columns)
with_history = make_pipeline(SpikeHistory(counts=units, n_lags=n_lags, n_basis=5, trial_col="trial"),
                             PoissonSpikeRegressor(random_state=0))
cv = GroupKFold(n_splits=4)
scores = {
    "behaviour only": cross_val_score(PoissonSpikeRegressor(random_state=0), X[["hand_x", "hand_y"]], Y,
                                      groups=X["trial"], cv=cv),
    "behaviour + spike history and coupling": cross_val_score(with_history, X, Y, groups=X["trial"], cv=cv),
}
pd.DataFrame(scores).agg(["mean", "std"]).T.rename(columns={"mean": "mean D2", "std": "std over folds"})

# %%
# Coupling filters of a GLM
# -------------------------
# With ``hidden_layer_sizes=()`` the estimator is a Poisson GLM, whose weights on the history bumps make one
# filter per (neuron, presynaptic neuron) pair: ``SpikeHistory.filters`` turns ``coef_`` into them. The fitted
# filters (lines) follow the true ones (dashes): refractoriness on the diagonal, the two couplings off it.
glm = make_pipeline(SpikeHistory(counts=units, n_lags=n_lags, basis=None, trial_col="trial"),
                    PoissonSpikeRegressor(hidden_layer_sizes=(), optimizer="lbfgs", lr=1.0, batch_size=-1,
                                          max_epochs=100, early_stopping=False, random_state=0))
glm.fit(X, Y)
filters = glm[0].filters(glm[-1].coef_)
fig, axes = plt.subplots(4, 4, figsize=(8, 6.5), sharex=True, sharey=True)
for i in range(4):
    for j in range(4):
        ax = axes[i, j]
        ax.axhline(0, color="0.8", lw=0.8)
        ax.plot(lags, true_filters[i, j], "k--", lw=1)
        ax.plot(lags, filters[(i, units[j])], color="C0")
        if i == 3:
            ax.set_xlabel(f"lag (bins), from {units[j]}")
    axes[i, 0].set_ylabel(f"to {units[i]}")
fig.suptitle("History filters: fitted GLM (blue) and truth (dashed)")
fig.tight_layout()

# %%
# Closed-loop simulation
# ----------------------
# ``simulate_recurrent`` runs the fitted model bin by bin on new covariates, drawing each bin's counts and feeding
# them back as the history of the next bins. The simulated neurons keep the recording's refractoriness: the
# autocorrelation of their counts dips at lag 1, as the recorded ones do.
from sklearn_costs import simulate_recurrent

simulated, rates = simulate_recurrent(glm, X[["hand_x", "hand_y", "trial"]], random_state=0)
last = (X["trial"] == X["trial"].max()).to_numpy()


def autocorrelation(x, max_lag=8):
    x = x - x.mean()
    return np.array([np.corrcoef(x[:-k], x[k:])[0, 1] for k in range(1, max_lag + 1)])


fig, (ax_rate, ax_acf) = plt.subplots(1, 2, figsize=(10, 3.2))
seconds = np.arange(last.sum()) * bin_width
ax_rate.plot(seconds, rates["unit1"][last], label="rate in closed loop, unit1")
ax_rate.plot(seconds, simulated["unit1"][last], ".", ms=3, color="0.4", label="simulated counts")
ax_rate.set_xlabel("time in the last trial (s)")
ax_rate.legend(fontsize=8)
for name, color in zip(units, ["C0", "C1", "C2", "C3"]):
    ax_acf.plot(range(1, 9), autocorrelation(Y[name].to_numpy()), color=color, label=f"{name} recorded")
    ax_acf.plot(range(1, 9), autocorrelation(simulated[name].to_numpy().astype(float)), "--", color=color)
ax_acf.axhline(0, color="0.8", lw=0.8)
ax_acf.set_xlabel("lag (bins)")
ax_acf.set_ylabel("autocorrelation of counts")
ax_acf.set_title("recorded (lines) and simulated (dashes)")
fig.tight_layout()
plt.show()
