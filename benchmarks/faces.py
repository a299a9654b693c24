"""Real-data benchmark of TripletEmbedder: one-shot recognition of people never seen in training, on the
Olivetti (64x64) or ORL (112x92) faces.

Protocol (shared/data/faces/README.md): 4-fold cross-validation over the 40 people (30 train / 10 test) repeated
with 3 seeds, the same splits for every method. Metrics on the test people: 10-way one-shot accuracy (one photo
of each enrolled, the other 9 recognised by 1-NN; mean over 20 random enrolments), 5-shot accuracy, recall@1
(leave-one-out 1-NN) and verification ROC AUC over all pairs of test photos.

Usage::

    python benchmarks/faces.py                    # Olivetti, 4 folds x 3 seeds (about 13 min on 2 cores)
    python benchmarks/faces.py --data orl         # ORL, the same protocol (about 16 min)
    python benchmarks/faces.py --folds-run 2      # the first 2 folds of each seed
    python benchmarks/faces.py --members 5 10 20  # ensembles of the first 5, 10, 20 CNN embedders
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline

from sklearn_costs import TripletEmbedder
from sklearn_costs.datasets import load_faces
from sklearn_costs.metrics import few_shot_accuracy, one_shot_accuracy, recall_at_1


def verification_auc(emb, labels):
    d = cdist(emb, emb, "sqeuclidean")
    upper = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    return float(roc_auc_score(same, -d[upper]))


def downsample(images, factor):
    """Average ``factor x factor`` blocks of pixels (64x64 -> 16x16 for factor 4)."""
    n, h, w = images.shape
    images = images[:, : h - h % factor, : w - w % factor]  # crop to whole blocks
    h, w = images.shape[1:]
    return images.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


# Pooling factor for the CNN's input: the photos averaged over factor x factor blocks, to 16-22 pixels a side
# (Olivetti 64x64 -> 16x16, ORL 112x92 -> 22x18). With 30 people to learn from, the coarse picture generalises
# better to new people than the full one, and trains in seconds.
POOL = {"olivetti": 4, "orl": 5}


def triplet_cnn(seed, **params):
    """The CNN embedder as benchmarked (on pooled photos): 2 blocks, augmentation, patience 40 epochs."""
    return TripletEmbedder(
        cnn_blocks=2, augment=True, n_iter_no_change=40, random_state=seed, n_threads=1, **params
    )  # one thread: several times faster for so small a net


class Members:
    """The CNN embedders of seeds 0, 1, 2, ..., each fitted once per split and shared by the one-network row and
    the k-member rows. A ``FeatureUnion`` fits each of its members on its own, so the first k members' embeddings
    side by side are exactly what ``make_union(*[triplet_cnn(seed) for seed in range(k)])`` returns (tested in
    tests/test_triplet.py), and its fit time is the sum of theirs."""

    def __init__(self):
        self.embeddings, self.seconds = [], []

    def union(self, k, X, y, Xt):
        while len(self.embeddings) < k:
            start = time.perf_counter()
            self.embeddings.append(triplet_cnn(len(self.embeddings)).fit(X, y).transform(Xt))
            self.seconds.append(time.perf_counter() - start)
        return np.hstack(self.embeddings[:k]), sum(self.seconds[:k])


def methods(members, ensemble_sizes=(5,)):
    """Name -> (input, embed): ``input`` names the images the method gets ("pixels": the README's resolution,
    "pooled": averaged by ``POOL``); ``embed(X_train, y_train, X_test)`` returns the test embeddings, or the
    embeddings and the fit seconds when it times itself. ``members`` holds this split's CNN embedders."""
    flat = lambda images: images.reshape(len(images), -1)  # noqa: E731
    return {
        "raw pixels + 1-NN": ("pixels", lambda X, y, Xt: flat(Xt)),
        "raw pixels pooled + 1-NN": ("pooled", lambda X, y, Xt: flat(Xt)),
        "PCA(50) + 1-NN": ("pixels", lambda X, y, Xt: PCA(50, random_state=0).fit(flat(X)).transform(flat(Xt))),
        "PCA(50) + NCA(32) + 1-NN": (
            "pixels",
            lambda X, y, Xt: (
                make_pipeline(PCA(50, random_state=0), NeighborhoodComponentsAnalysis(32, random_state=0))
                .fit(flat(X), y)
                .transform(flat(Xt))
            ),
        ),
        "TripletEmbedder MLP (256), semi-hard": (
            "pixels",
            lambda X, y, Xt: (
                TripletEmbedder(module="mlp", hidden_layer_sizes=(256,), random_state=0).fit(X, y).transform(Xt)
            ),
        ),
        "TripletEmbedder CNN pooled, batch-hard, margin 0.5": (
            "pooled",
            lambda X, y, Xt: triplet_cnn(0, miner="batch_hard", margin=0.5).fit(X, y).transform(Xt),
        ),
        "TripletEmbedder CNN pooled, semi-hard": ("pooled", lambda X, y, Xt: members.union(1, X, y, Xt)),
        # several seeds' embeddings side by side: squared distances add up over the members
        **{
            f"{k} x TripletEmbedder CNN pooled (FeatureUnion)": (
                "pooled",
                lambda X, y, Xt, k=k: members.union(k, X, y, Xt),
            )
            for k in ensemble_sizes
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["olivetti", "orl"], default="olivetti")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds-run", type=int, default=4)
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument(
        "--members", type=int, nargs="+", default=[5, 10], help="ensemble sizes (embedders in the FeatureUnion)"
    )
    args = parser.parse_args(argv)

    faces = load_faces(args.data)
    photos = faces.images.astype(np.float32) / 255.0
    inputs = {
        "pixels": downsample(photos, 2) if args.data == "orl" else photos,  # ORL 112x92 -> 56x46, as the README
        "pooled": downsample(photos, POOL[args.data]),
    }
    labels = faces.target
    people = np.unique(labels)
    names = list(methods(Members(), args.members))
    if args.methods:
        unknown = set(args.methods) - set(names)
        if unknown:
            parser.error(f"unknown methods {sorted(unknown)}; choose among {names}")
        names = [n for n in names if n in args.methods]

    results = {name: [] for name in names}
    for seed in range(args.seeds):
        folds = list(KFold(4, shuffle=True, random_state=seed).split(people))[: args.folds_run]
        for k, (train_people, _) in enumerate(folds):
            train = np.isin(labels, people[train_people])
            test = ~train
            chosen = methods(Members(), args.members)
            for name in names:
                source, embed = chosen[name]
                images = inputs[source]
                start = time.perf_counter()
                emb = embed(images[train], labels[train], images[test])
                seconds = time.perf_counter() - start
                if isinstance(emb, tuple):
                    emb, seconds = emb
                y = labels[test]
                results[name].append(
                    {
                        "one-shot": one_shot_accuracy(emb, y, random_state=seed),
                        "5-shot": few_shot_accuracy(emb, y, shots=5, random_state=seed),
                        "recall@1": recall_at_1(emb, y),
                        "ROC AUC": verification_auc(emb, y),
                        "fit s": seconds,
                    }
                )
            print(
                f"seed {seed} fold {k}: " + ", ".join(f"{n}: {results[n][-1]['one-shot']:.3f}" for n in names),
                flush=True,
            )
    rows = []
    for name, runs in results.items():
        frame = pd.DataFrame(runs)
        rows.append({"method": name, **frame.mean().to_dict(), "one-shot sd": frame["one-shot"].std(ddof=1)})
    table = pd.DataFrame(rows).set_index("method")
    print(f"\n{args.data}: {len(next(iter(results.values())))} splits (test people never seen in training)")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
