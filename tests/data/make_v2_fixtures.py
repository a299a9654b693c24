"""Wrote tests/data/*_v2.zip (format version 2) with persistence.dump of commit 4c54dda, and the outputs the
saved models gave (*_v2_expected.npz). Kept to show how the fixtures were made; run from the repository root
(``python tests/data/make_v2_fixtures.py``); importing it, as pytest's doctest collection does, writes nothing."""
import numpy as np
import pandas as pd

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs.persistence import dump


def main():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["speed", "lean", "throttle"])
    COUNTS = rng.poisson(np.exp(0.3 * X.to_numpy()[:, :2]))
    REAL = X["speed"].to_numpy() * 2 + rng.normal(size=60)
    IMAGES = rng.normal(size=(40, 8, 8)).astype(np.float32)
    NAMES = np.array(["ada", "bo", "cy", "di"])[np.arange(40) % 4]
    models = {
        "gaussian_linear": (GaussianUncertaintyRegressor(hidden_layer_sizes=(4,), n_members=1, linear_weight=0.5,
                                                         max_epochs=2, random_state=0), X, REAL),
        "poisson_members": (PoissonSpikeRegressor(hidden_layer_sizes=(4,), n_members=2, max_epochs=2, random_state=0),
                            X, COUNTS),
        "ensemble": (DeepEnsembleRegressor(GaussianUncertaintyRegressor(hidden_layer_sizes=(4,), n_members=1,
                                                                        max_epochs=2), n_estimators=2, random_state=0),
                     X, REAL),
        "embedder": (TripletEmbedder(embedding_dim=3, cnn_width=4, n_members=1, max_epochs=2, random_state=0),
                     IMAGES, NAMES),
    }
    for name, (model, Xs, y) in models.items():
        model.fit(Xs, y)
        dump(model, f"tests/data/{name}_v2.zip")
        if isinstance(model, TripletEmbedder):
            out = {"X": Xs, "transform": model.transform(Xs)}
        else:
            mean, std = model.predict(Xs, return_std=True)
            out = {"X": Xs.to_numpy(), "columns": np.array(Xs.columns, dtype=str), "mean": mean, "std": std}
            if hasattr(model, "linear_weight_"):
                print(name, "linear_weight_", model.linear_weight_)
        np.savez(f"tests/data/{name}_v2_expected.npz", **out)
        print(name, {k: v for k, v in vars(model).items() if k.endswith("_") or k.startswith("_")}.keys())


if __name__ == "__main__":
    main()
