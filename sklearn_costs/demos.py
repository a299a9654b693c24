"""The vignettes run by ``sklearn-costs demo``: each trains on embedded or simulated data, prints a table and saves
figures. Each runs at one of three sizes: ``"default"`` (all three in about two minutes on two cores),
``"full"`` (``--full``: more data, folds and epochs) and ``"quick"`` (``--quick``: a few seconds,
the test suite's end-to-end check)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

SIZES = ("quick", "default", "full")
#: Processes of the demos' grid searches: their small networks train on one thread each, so two fits at a time use
#: two cores (the demos' target machine has two). The quick demos' fits take less than starting the processes.
SEARCH_JOBS = {"quick": 1, "default": 2, "full": 2}


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}; got {size!r}")


def _save(fig, path: Path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


def _maybe_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed; figures skipped (pip install "sklearn-costs[plot]")')
        return None
    return plt


def spikes_demo(output: Path, size: str = "default"):
    """Spike times of simulated motor-cortex neurons -> binned counts -> grid search over count losses."""
    _check_size(size)
    from sklearn.linear_model import PoissonRegressor
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .datasets import make_motorcycle_spikes
    from .metrics import poisson_d2_score
    from .poisson import PoissonSpikeRegressor
    from .preprocessing import LagFeatures, bin_covariates, bin_spikes

    n_neurons, duration, max_epochs, n_splits = {"quick": (6, 40.0, 3, 2), "default": (20, 200.0, 60, 3),
                                                 "full": (30, 300.0, 150, 3)}[size]
    sim = make_motorcycle_spikes(n_neurons=n_neurons, duration=duration, overdispersion=0.3, random_state=0)
    print(f"{len(sim.spikes)} spikes of {n_neurons} neurons over {duration:.0f} s; 12 riding covariates")
    counts = bin_spikes(sim.spikes, bin_width=0.05, t_start=0.0, t_stop=duration)
    covariates = bin_covariates(sim.covariates, counts.index, bin_width=0.05)
    cut = int(0.8 * len(counts))  # the last 20% of the ride is the test set: no shuffling of time bins
    X_train, X_test = covariates.iloc[:cut], covariates.iloc[cut:]
    Y_train, Y_test = counts.iloc[:cut], counts.iloc[cut:]

    pipe = Pipeline(
        [
            ("history", LagFeatures(n_lags=2)),
            ("model", PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), max_epochs=max_epochs, random_state=0)),
        ]
    )
    losses = ["poisson", "negative_binomial", "zero_inflated_poisson", "mse"]
    print(f"grid search over {len(losses)} count losses x {n_splits} time-series folds "
          f"(a network of up to {max_epochs} epochs per fit; one line per fit):")
    search = GridSearchCV(pipe, {"model__loss": losses}, cv=TimeSeriesSplit(n_splits=n_splits), verbose=2,
                          n_jobs=SEARCH_JOBS[size])
    start = time.perf_counter()
    search.fit(X_train, Y_train)
    print(f"grid search: {time.perf_counter() - start:.1f} s")

    print("test table: each loss refitted on the whole training part, then a Poisson GLM per neuron")
    rows = []
    for loss, cv_d2 in zip(losses, search.cv_results_["mean_test_score"]):
        model = search.best_estimator_ if loss == search.best_params_["model__loss"] else clone(pipe).set_params(
            model__loss=loss).fit(X_train, Y_train)
        rows.append(
            {
                "model": f"network, {loss}",
                "cv D2": cv_d2,
                "test D2": model.score(X_test, Y_test),
                "test log-lik/bin": model[-1].log_likelihood(model[0].transform(X_test), Y_test).sum(1).mean(),
            }
        )
    lagged = LagFeatures(n_lags=2).fit(X_train)
    scaler = StandardScaler().fit(lagged.transform(X_train))
    glm_pred = np.column_stack(
        [
            PoissonRegressor(alpha=1e-4, solver="newton-cholesky", max_iter=300)
            .fit(scaler.transform(lagged.transform(X_train)), Y_train[c])
            .predict(scaler.transform(lagged.transform(X_test)))
            for c in counts.columns
        ]
    )
    rows.append({"model": "GLM per neuron (sklearn)", "test D2": poisson_d2_score(Y_test, glm_pred)})
    rows.append({"model": "true rates (ceiling)", "test D2": poisson_d2_score(Y_test, sim.expected_counts.iloc[cut:])})
    table = pd.DataFrame(rows).set_index("model")
    print(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep=""))
    print(f"best loss by time-series CV: {search.best_params_['model__loss']}")

    plt = _maybe_pyplot()
    if plt is None:
        return table
    from .plotting import plot_rates, plot_training_curves

    best = search.best_estimator_
    window = slice(0, 400)
    fig, axes = plt.subplots(4, 1, figsize=(9, 7), sharex=True)
    plot_rates(
        Y_test.iloc[window],
        best.predict(X_test.iloc[window]),
        true_rates=sim.expected_counts.iloc[cut:].iloc[window],
        bin_width=0.05,
        axes=axes,
    )
    fig.suptitle(f"Predicted vs binned counts (test), loss={best[-1].loss_.name}")
    _save(fig, output / "spikes_rates.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    plot_training_curves(best[-1], ax=ax)
    _save(fig, output / "spikes_training.png")
    plt.close("all")
    return table


def uncertainty_demo(output: Path, size: str = "default"):
    """Heteroscedastic simulator -> grid search over continuous losses -> calibration table and plots."""
    _check_size(size)
    from sklearn.model_selection import GridSearchCV, KFold

    from .datasets import make_heteroscedastic_regression
    from .gaussian import GaussianUncertaintyRegressor
    from .metrics import uncertainty_report

    n, max_epochs, n_splits = {"quick": (400, 20, 2), "default": (1500, 100, 3), "full": (2500, 300, 3)}[size]
    train = make_heteroscedastic_regression(n, random_state=0)
    test = make_heteroscedastic_regression(2000, random_state=1)
    print(f"{n} training points; the noise std varies 20-fold with the inputs (known true std)")
    losses = ["gaussian", "laplace", "student_t", "beta_nll", "mse"]
    # large batches and a high learning rate keep the demo short on two cores
    model = GaussianUncertaintyRegressor(hidden_layer_sizes=(64, 64), lr=1e-2, batch_size=128,
                                         max_epochs=max_epochs, random_state=0)
    print(f"grid search over {len(losses)} continuous losses x {n_splits} folds (up to {max_epochs} epochs per fit; "
          "one line per fit):")
    search = GridSearchCV(model, {"loss": losses}, cv=KFold(n_splits, shuffle=True, random_state=0), verbose=2,
                          n_jobs=SEARCH_JOBS[size])
    start = time.perf_counter()
    search.fit(train.X, train.y)
    print(f"grid search: {time.perf_counter() - start:.1f} s")
    print("test table: each loss refitted on all training points, scored on 2000 new ones")

    rows = {}
    fitted = {}
    for loss, cv_score in zip(losses, search.cv_results_["mean_test_score"]):
        if loss == search.best_params_["loss"]:
            est = search.best_estimator_
        else:
            est = clone(model).set_params(loss=loss).fit(train.X, train.y)
        fitted[loss] = est
        report = uncertainty_report(est, test.X, test.y)
        _, std = est.predict(test.X, return_std=True)
        rows[loss] = {"cv log density": cv_score, **report,
                      "corr(std, true std)": np.corrcoef(std, test.true_std)[0, 1] if np.std(std) > 0 else np.nan}
    oracle = -np.mean(-np.log(test.true_std) - 0.5 * ((test.y - test.true_mean) / test.true_std) ** 2
                      - 0.5 * np.log(2 * np.pi))
    table = pd.DataFrame(rows).T
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"test NLL of the true distribution (floor): {oracle:.3f}; best loss by CV: {search.best_params_['loss']}")

    plt = _maybe_pyplot()
    if plt is None:
        return table
    from .plotting import plot_prediction_bands, plot_reliability_diagram, plot_std_vs_error

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for loss in ("gaussian", "student_t", "mse"):
        plot_reliability_diagram(fitted[loss], test.X, test.y, ax=ax)
    _save(fig, output / "uncertainty_reliability.png")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    plot_std_vs_error(fitted["gaussian"], test.X, test.y, ax=ax, true_std=test.true_std)
    _save(fig, output / "uncertainty_std.png")
    # A slice through the input space: x1 = x2 = x3 = 0, where y = sin(2 x0) + sigma(x0) * noise.
    x0 = np.random.default_rng(2).uniform(-2, 2, 400)
    slice_X = pd.DataFrame({"x0": x0, "x1": 0.0, "x2": 0.0, "x3": 0.0})
    slice_y = np.sin(2 * x0) + (0.05 + 0.2 * (1 + np.sin(3 * x0))) * np.random.default_rng(3).normal(size=400)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot_prediction_bands(fitted["gaussian"], slice_X, slice_y, "x0", ax=ax)
    ax.set_title("x1 = x2 = x3 = 0: mean and 90% band along x0")
    _save(fig, output / "uncertainty_bands.png")
    plt.close("all")
    return table


def embedding_demo(output: Path, size: str = "default"):
    """One-shot recognition of digit classes never seen in training: the default TripletEmbedder vs raw pixels, PCA
    and NCA."""
    _check_size(size)
    quick = size == "quick"
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NeighborhoodComponentsAnalysis
    from sklearn.pipeline import make_pipeline

    from .metrics import one_shot_accuracy, recall_at_1
    from .triplet import TripletEmbedder

    digits = load_digits()
    images, labels = digits.images.astype(np.float32), digits.target
    seen = labels < 7
    X_seen, y_seen = images[seen], labels[seen]
    X_new, y_new = images[~seen], labels[~seen]
    flat_seen, flat_new = X_seen.reshape(len(X_seen), -1), X_new.reshape(len(X_new), -1)
    print(f"train on digits 0-6 ({seen.sum()} images); recognise 7-9 from one enrolled image each")

    rows = []

    def add(name, embed_new, seconds):
        rows.append({"method": name, "3-way one-shot": one_shot_accuracy(embed_new, y_new),
                     "recall@1": recall_at_1(embed_new, y_new), "fit s": seconds})

    add("raw pixels", flat_new, 0.0)
    print("fitting PCA(20) and PCA(30) + NCA(16) on the seen digits")
    start = time.perf_counter()
    pca = PCA(20, random_state=0).fit(flat_seen)
    add("PCA(20)", pca.transform(flat_new), time.perf_counter() - start)
    start = time.perf_counter()
    nca = make_pipeline(PCA(30, random_state=0), NeighborhoodComponentsAnalysis(16, random_state=0,
                                                                                max_iter=200 if size == "full" else 50))
    nca.fit(flat_seen, y_seen)
    add("PCA(30) + NCA(16)", nca.transform(flat_new), time.perf_counter() - start)
    # The default: its "auto" settings enlarge the 8x8 digits to 16x16 for a two-block CNN, augment them and train
    # five networks side by side with the multi-similarity loss (seven identities). --quick (the test suite's run)
    # caps the epochs and says so.
    name = "TripletEmbedder() defaults" + (", max_epochs=5 (--quick)" if quick else "")
    embedder = TripletEmbedder(random_state=0, **({"max_epochs": 5} if quick else {}))
    print(f"fitting {name} (verbose=1: the settings it resolves, then one line per epoch)")
    embedder.set_params(verbose=1)
    start = time.perf_counter()
    embedder.fit(X_seen, y_seen)
    add(name, embedder.transform(X_new), time.perf_counter() - start)
    fitted = {name: embedder}
    table = pd.DataFrame(rows).set_index("method")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))

    plt = _maybe_pyplot()
    if plt is None:
        return table
    best = max(fitted, key=lambda n: table.loc[n, "3-way one-shot"])
    emb = fitted[best].transform(images)
    xy = PCA(2, random_state=0).fit_transform(emb)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for digit in range(10):
        mask = labels == digit
        ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.6, label=f"{digit}{'' if digit < 7 else ' (new)'}")
    ax.set_title(f"{best}: 2-D PCA of the embedding")
    ax.legend(markerscale=3, fontsize="small", ncol=2)
    _save(fig, output / "embedding_2d.png")
    plt.close("all")
    return table


DEMOS = {"spikes": spikes_demo, "uncertainty": uncertainty_demo, "embedding": embedding_demo}
