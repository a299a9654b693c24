"""
Choosing a count loss by time-series cross-validation
=====================================================

Real neurons are often burstier than Poisson: their counts are over-dispersed (variance above the mean). The
negative binomial adds a learned dispersion per neuron; the zero-inflated Poisson adds extra silent bins. Which
assumption the data support is an empirical question, answered by ``GridSearchCV`` over ``loss``.

Two cautions that this example shows:

* the default ``score`` (D2 of the predicted mean) depends only on the mean, so it compares losses fairly; the
  ``neg_log_likelihood_scorer`` compares the whole predicted distribution, which is what over-dispersion changes;
* time bins are autocorrelated, so the folds must be blocks of time (``TimeSeriesSplit``), never shuffled bins.
"""

# %%
import pandas as pd
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import Pipeline

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.datasets import make_motorcycle_spikes
from sklearn_costs.metrics import neg_log_likelihood_scorer, poisson_d2_score
from sklearn_costs.preprocessing import LagFeatures, bin_covariates, bin_spikes

ride = make_motorcycle_spikes(n_neurons=10, duration=150.0, overdispersion=0.5, random_state=1)
counts = bin_spikes(ride.spikes, bin_width=0.05, t_start=0.0, t_stop=150.0)
covariates = bin_covariates(ride.covariates, counts.index, bin_width=0.05)
print(f"variance / mean of the counts, per neuron: {(counts.var() / counts.mean()).round(2).tolist()}")

# %%
# The search
# ----------
# ``refit="log-likelihood"`` picks the loss whose predictive distribution fits held-out blocks best; D2 is
# reported beside it. One network per fit (``n_members=1``) in batches of 256 bins keeps the ten fits of the
# search to a few seconds.
pipe = Pipeline([
    ("history", LagFeatures(n_lags=2)),
    ("model", PoissonSpikeRegressor(hidden_layer_sizes=(32, 32), max_epochs=60, batch_size=256, n_members=1,
                                    random_state=0)),
])
search = GridSearchCV(
    pipe,
    {"model__loss": ["poisson", "negative_binomial", "zero_inflated_poisson"]},
    cv=TimeSeriesSplit(n_splits=3),
    scoring={"D2": make_scorer(poisson_d2_score), "log-likelihood": neg_log_likelihood_scorer},
    refit="log-likelihood",
)
search.fit(covariates, counts)

results = pd.DataFrame(search.cv_results_).set_index("param_model__loss")
print(results[["mean_test_D2", "mean_test_log-likelihood", "mean_fit_time"]].round(3).to_string())
print("chosen:", search.best_params_["model__loss"])

# %%
# Blocked folds, drawn
# --------------------
# Each fold trains on the past and is scored on the block that follows: no bin of the future leaks into training.
import matplotlib.pyplot as plt
import numpy as np

fig, ax = plt.subplots(figsize=(7, 1.8))
for k, (train, test) in enumerate(TimeSeriesSplit(n_splits=3).split(covariates)):
    ax.broken_barh([(train[0], len(train))], (k - 0.3, 0.6), color="C0")
    ax.broken_barh([(test[0], len(test))], (k - 0.3, 0.6), color="C1")
ax.set_yticks(np.arange(3), [f"fold {k}" for k in range(3)])
ax.set_xlabel("time bin (blue: train, orange: score)")
fig.tight_layout()
