"""Figures for the three vignettes. Needs matplotlib (``pip install "sklearn-costs[plot]"``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _targets


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('plotting needs matplotlib: pip install "sklearn-costs[plot]"') from exc
    return plt


def _axes(ax, **subplots):
    if ax is not None:
        return ax.figure, ax
    plt = _pyplot()
    return plt.subplots(**subplots)


def plot_training_curves(estimator, ax=None):
    """Training and validation loss per epoch of a fitted estimator (its ``history_``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_costs import PoissonSpikeRegressor
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = PoissonSpikeRegressor(max_epochs=3, random_state=0).fit(X, np.ones((200, 1), int))
    >>> ax = plot_training_curves(model)
    """
    history = estimator.history_
    fig, ax = _axes(ax, figsize=(5, 3.5))
    ax.plot(history.index, history["train_loss"], label="train")
    if history["valid_loss"].notna().any():
        ax.plot(history.index, history["valid_loss"], label="validation")
        best = history["valid_loss"].idxmin()
        ax.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({estimator.loss_.name})")
    ax.set_title(type(estimator).__name__)
    ax.legend()
    return ax


def plot_rates(counts, predicted, *, true_rates=None, neurons=None, bin_width=None, max_neurons=4, axes=None):
    """Binned spike counts with the predicted (and, if known, true) expected count over time, one panel a neuron.

    Parameters
    ----------
    counts : DataFrame (bins x neurons)
        Observed counts indexed by bin start.
    predicted : DataFrame or array of the same shape
        Predicted expected counts.
    true_rates : DataFrame or array, optional
        Ground-truth expected counts (simulations).
    neurons : list, optional
        Columns to show; default the first ``max_neurons``.
    bin_width : float, optional
        When given the y axis is in spikes per second instead of spikes per bin.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> counts = pd.DataFrame({"n1": [0, 2, 1, 3], "n2": [1, 0, 0, 1]})
    >>> axes = plot_rates(counts, counts.rolling(2, min_periods=1).mean().to_numpy(), bin_width=0.05)
    >>> len(axes)
    2
    """
    counts = pd.DataFrame(counts)
    predicted = pd.DataFrame(np.asarray(predicted), index=counts.index, columns=counts.columns)
    neurons = list(counts.columns[:max_neurons]) if neurons is None else list(neurons)
    if axes is None:
        plt = _pyplot()
        fig, axes = plt.subplots(len(neurons), 1, figsize=(8, 1.8 * len(neurons)), sharex=True, squeeze=False)
        axes = axes[:, 0]
    scale = 1.0 / bin_width if bin_width else 1.0
    unit = "spikes/s" if bin_width else "spikes/bin"
    t = np.asarray(counts.index, dtype=float)
    for ax, neuron in zip(axes, neurons):
        ax.bar(t, counts[neuron] * scale, width=(t[1] - t[0]) if len(t) > 1 else 1, color="0.8", label="observed")
        if true_rates is not None:
            true = pd.DataFrame(np.asarray(true_rates), index=counts.index, columns=counts.columns)
            ax.plot(t, true[neuron] * scale, color="k", linewidth=1, label="true rate")
        ax.plot(t, predicted[neuron] * scale, color="C3", linewidth=1.5, label="predicted rate")
        ax.set_ylabel(f"{neuron}\n{unit}")
    axes[0].legend(loc="upper right", fontsize="small", ncol=3)
    axes[-1].set_xlabel("time (s)")
    return axes


def _model_name(estimator) -> str:
    """The legend's name of a fitted model: its loss's (a deep ensemble's: its members'), else its class's."""
    loss = getattr(estimator, "loss_", None)
    if loss is None and getattr(estimator, "estimators_", None):
        loss = getattr(estimator.estimators_[0], "loss_", None)
    return loss.name if loss is not None else type(estimator).__name__


def plot_reliability_diagram(estimator, X, y, ax=None, label=None):
    """Observed vs expected frequency of the predictive quantiles; the diagonal is perfect calibration.

    Examples
    --------
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> d = make_heteroscedastic_regression(300, random_state=0)
    >>> model = GaussianUncertaintyRegressor(max_epochs=5, random_state=0).fit(d.X, d.y)
    >>> ax = plot_reliability_diagram(model, d.X, d.y)
    """
    from .metrics import calibration_curve, regression_calibration_error

    pit = estimator.predict_cdf(X, y)
    levels, observed = calibration_curve(pit)
    fig, ax = _axes(ax, figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    name = label or _model_name(estimator)
    ax.plot(levels, observed, marker="o", label=f"{name} (ECE {regression_calibration_error(pit):.3f})")
    ax.set_xlabel("expected frequency (quantile level)")
    ax.set_ylabel("observed frequency")
    ax.set_title("Reliability diagram")
    ax.legend(fontsize="small")
    return ax


def plot_std_vs_error(estimator, X, y, ax=None, true_std=None):
    """Predicted std against the absolute error of the mean (and against the true std when known).

    Examples
    --------
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(200, random_state=0)
    >>> model = GaussianUncertaintyRegressor(max_epochs=5, random_state=0).fit(data.X, data.y)
    >>> ax = plot_std_vs_error(model, data.X, data.y, true_std=data.true_std)
    """
    mean, std = estimator.predict(X, return_std=True)
    fig, ax = _axes(ax, figsize=(4.5, 4))
    ax.scatter(std, np.abs(_targets.targets_like(y, mean.shape) - mean), s=6, alpha=0.4, label="|y - predicted mean|")
    if true_std is not None:
        ax.scatter(std, true_std, s=6, alpha=0.6, color="C3", label="true std")
    top = float(np.max(std))
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.plot([0, top], [0, 0.798 * top], color="k", linewidth=0.8, label="E|error| of a calibrated Gaussian")
    ax.set_xlabel("predicted std")
    ax.set_ylabel("absolute error / true std")
    ax.legend(fontsize="small")
    return ax


def plot_prediction_bands(estimator, X, y, feature, coverage=0.9, ax=None):
    """Targets and the predicted mean with its central ``coverage`` interval, sorted by one feature.

    Examples
    --------
    >>> from sklearn_costs import GaussianUncertaintyRegressor
    >>> from sklearn_costs.datasets import make_heteroscedastic_regression
    >>> data = make_heteroscedastic_regression(200, random_state=0)
    >>> model = GaussianUncertaintyRegressor(max_epochs=5, random_state=0).fit(data.X, data.y)
    >>> ax = plot_prediction_bands(model, data.X, data.y, "x0", coverage=0.9)
    """
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    x = np.asarray(frame[feature] if not isinstance(feature, int) else frame.iloc[:, feature], dtype=float)
    order = np.argsort(x)
    mean = estimator.predict(X)
    lower, upper = estimator.predict_interval(X, coverage)
    fig, ax = _axes(ax, figsize=(7, 3.5))
    ax.scatter(x[order], _targets.targets_like(y, mean.shape)[order], s=5, color="0.5", label="observed")
    ax.plot(x[order], mean[order], color="C3", linewidth=1, label="predicted mean")
    ax.fill_between(x[order], lower[order], upper[order], color="C3", alpha=0.2,
                    label=f"{coverage:.0%} prediction interval")
    ax.set_xlabel(str(feature))
    ax.set_ylabel("target")
    ax.legend(fontsize="small")
    return ax


def plot_embedding_2d(embeddings, labels, ax=None, new_labels=(), max_legend=12):
    """The embeddings projected on their first two principal components, one colour per identity.

    ``new_labels`` are marked "(new)" in the legend: identities the embedder never saw in training.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.random.default_rng(0).normal(size=(30, 5))
    >>> ax = plot_embedding_2d(emb, np.repeat([0, 1, 2], 10), new_labels=[2])
    """
    from sklearn.decomposition import PCA

    embeddings = np.asarray(embeddings, dtype=float)
    labels = np.asarray(labels)
    xy = PCA(2).fit_transform(embeddings) if embeddings.shape[1] > 2 else embeddings
    fig, ax = _axes(ax, figsize=(5.5, 5))
    identities = np.unique(labels)
    new = set(np.asarray(new_labels).tolist())
    for i, identity in enumerate(identities):
        mask = labels == identity
        name = f"{identity}{' (new)' if identity in new else ''}" if i < max_legend else None
        ax.scatter(xy[mask, 0], xy[mask, 1], s=8, alpha=0.7, label=name,
                   marker="^" if identity in new else "o")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(markerscale=2, fontsize="small", ncol=2)
    return ax


def _as_images(X, shape=None):
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        if shape is None:
            side = int(round(np.sqrt(X.shape[1])))
            shape = (side, X.shape[1] // side)
        X = X.reshape(len(X), *shape[-2:]) if int(np.prod(shape[-2:])) == X.shape[1] else X.reshape(len(X), *shape)
    if X.ndim == 4:  # (n, C, H, W): channels last for imshow; grey when one channel
        X = X[:, 0] if X.shape[1] == 1 else np.moveaxis(X, 1, -1)
    return X


def plot_nearest_neighbors(embedder, queries, gallery, *, query_labels=None, gallery_labels=None, n_neighbors=4,
                           axes=None):
    """A row per query image: the query, then its ``n_neighbors`` nearest gallery images in the embedding.

    With labels, a neighbour's title is green when it is the query's identity and red when not: the picture of
    one-shot recognition (the first neighbour decides).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_costs import TripletEmbedder
    >>> rng = np.random.default_rng(0)
    >>> images, ids = rng.random((40, 8, 8)).astype("float32"), np.repeat(np.arange(10), 4)
    >>> embedder = TripletEmbedder(embedding_dim=4, max_epochs=2, random_state=0).fit(images, ids)
    >>> axes = plot_nearest_neighbors(embedder, images[:2], images[2:], query_labels=ids[:2],
    ...                               gallery_labels=ids[2:], n_neighbors=3)
    >>> axes.shape
    (2, 4)
    """
    from scipy.spatial.distance import cdist

    shape = getattr(embedder, "input_shape_", None)
    distances = cdist(np.asarray(embedder.transform(queries)), np.asarray(embedder.transform(gallery)))
    nearest = np.argsort(distances, axis=1)[:, :n_neighbors]
    query_images, gallery_images = _as_images(queries, shape), _as_images(gallery, shape)
    if axes is None:
        plt = _pyplot()
        _, axes = plt.subplots(len(query_images), n_neighbors + 1, squeeze=False,
                               figsize=(1.4 * (n_neighbors + 1), 1.5 * len(query_images)))
    for row, neighbours in enumerate(nearest):
        axes[row, 0].imshow(query_images[row], cmap="gray")
        title = "query" if query_labels is None else f"query {np.asarray(query_labels)[row]}"
        axes[row, 0].set_title(title, fontsize="small")
        for col, j in enumerate(neighbours, start=1):
            axes[row, col].imshow(gallery_images[j], cmap="gray")
            label = f"d={distances[row, j]:.2f}"
            color = "black"
            if query_labels is not None and gallery_labels is not None:
                same = np.asarray(gallery_labels)[j] == np.asarray(query_labels)[row]
                color = "green" if same else "red"
                label = f"{np.asarray(gallery_labels)[j]}  {label}"
            axes[row, col].set_title(label, fontsize="small", color=color)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    return axes
