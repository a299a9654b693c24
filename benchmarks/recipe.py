"""One candidate change to the TripletEmbedder's default recipe, measured as docs/benchmarks.rst reports it.

The candidate is estimator parameters (``--params``, JSON) and/or other values of the constants behind the
``"auto"`` rules and the CNN (``--rule NAME=VALUE``: ``TARGET_STEPS``, ``MEMBER_ROWS``, ``MAX_SIDE``,
``AUGMENT_MAX_SHIFT``, ``AUGMENT_MAX_ROTATION``, ``AUGMENT_MAX_SCALE``, ``POOL_GRID`` ... of
``sklearn_costs._embedder_settings``, ``MIN_IDENTITIES_HELD_OUT_WHOLE`` of ``sklearn_costs._training``). It runs:

- ``--data omniglot``: ``benchmarks/faces.py``'s 4 leave-two-alphabets-out folds (20-way within-alphabet one-shot
  on the held-out alphabets), one fit per fold and seed;
- ``--data digits``: the demo's protocol (train on the 1,264 8x8 digits 0-6, 3-way one-shot on 7-9), one fit per
  seed;
- ``--data olivetti`` / ``--data orl``: ``benchmarks/faces.py``'s splits of the 40 people (30 train / 10 test; the
  first ``--splits`` of them), 10-way one-shot accuracy on the test people, one fit per split and seed.

``--identities N`` trains each Omniglot fold on ``N`` of its training characters (a random choice, the same for
every seed and candidate): the same images and task with fewer identities, for a rule that depends on how many
identities there are.

Each fit runs in its own process with one PyTorch thread (``--jobs`` at a time), with ``random_state`` the seed.
Without ``--params`` and ``--rule`` it measures the defaults, the row to compare with in the same run.
``--curve N`` records the held-out accuracy after every ``N``-th epoch of each fit (and after the first), with
every epoch's validation loss: how long the accuracy of identities the network never sees keeps improving, against
how long early stopping trains. ``--replay-patience P ...`` then replays each fit's early stopping with patience
``P`` on its recorded validation losses and prints where it would have stopped and the accuracy recorded nearest
the epoch it would have restored (a fit stopped by a shorter patience trains the same epochs up to there).
``--tta N`` also scores test-time augmentation: each held-out image embedded as the mean of its embedding and of
``N`` randomly augmented copies (the fit's own augmentation), renormalised per member.

Usage::

    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --rule MIN_IDENTITIES_HELD_OUT_WHOLE=10
    python benchmarks/recipe.py --data omniglot --params '{"cnn_blocks": 4}'
    python benchmarks/recipe.py --data omniglot --rule TARGET_STEPS=6000
    python benchmarks/recipe.py --data omniglot --rule POOL_GRID=3
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --tta 8
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --params '{"n_iter_no_change": 40}' \
        --curve 1 --replay-patience 5 13
    python benchmarks/recipe.py --data orl --seeds 1 2 --params '{"loss": "multi_similarity"}'
    python benchmarks/recipe.py --data omniglot --folds 0 1 --identities 60 --params '{"loss": "multi_similarity"}'
    python benchmarks/recipe.py --data omniglot --rule AUGMENT_MAX_SHIFT=0.12 AUGMENT_MAX_ROTATION=15 \
        AUGMENT_MAX_SCALE=0.2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The modules whose constants ``--rule`` may set.
RULE_MODULES = ("sklearn_costs._embedder_settings", "sklearn_costs._training")


def apply_rules(rules):
    """Set each ``NAME=VALUE`` of ``rules`` on the module of :data:`RULE_MODULES` that defines ``NAME`` (an int or
    float constant); an unknown name raises ``ValueError``."""
    import importlib

    modules = [importlib.import_module(name) for name in RULE_MODULES]
    for rule in rules:
        name, _, value = rule.partition("=")
        module = next((m for m in modules if isinstance(getattr(m, name, None), (int, float))), None)
        if module is None or not value:
            raise ValueError(f"--rule {rule!r}: expected NAME=VALUE with NAME a numeric constant of "
                             f"{' or '.join(RULE_MODULES)}")
        setattr(module, name, type(getattr(module, name))(value))


def augmented_embedding(model, images, n_views):
    """The mean of the embedding of ``images`` and of ``n_views`` randomly augmented copies of them (the fitted
    network's own :class:`~sklearn_costs.modules.ImageAugment`, switched to training mode), each member's part
    renormalised to the length the network gives it."""
    import torch

    from sklearn_costs.modules import ImageAugment

    augment = [m for m in model.net_.module_.modules() if isinstance(m, ImageAugment)]
    if not augment:
        raise ValueError("--tta needs a CNN trained with augmentation (augment_ True)")
    views = [model.transform(images)]
    torch.manual_seed(0)
    for _ in range(n_views):
        augment[0].train()
        try:
            views.append(model.transform(images))
        finally:
            augment[0].eval()
    mean = np.mean(views, axis=0).reshape(len(images), model.n_members_, -1)
    mean /= np.linalg.norm(mean, axis=2, keepdims=True) * np.sqrt(model.n_members_)
    return mean.reshape(len(images), -1)


class AccuracyCurve:
    """While it is active (``with``), the held-out ``accuracy`` of the network's embedding of ``tested`` after
    every ``every``-th epoch (and the first) of a fit, as ``(epoch, accuracy)`` pairs in ``points``. It measures
    from the early-stopping callback's end of epoch, which every fit with early stopping runs; it changes no
    weight and draws no random number, so the fit trains as it would without it."""

    def __init__(self, tested, accuracy, every):
        self.tested, self.accuracy, self.every = tested, accuracy, every
        self.points = []

    def __enter__(self):
        import torch

        from sklearn_costs._images import as_network_input
        from sklearn_costs._training import EarlyStopping, TensorDataset

        flat = np.asarray(self.tested, dtype=np.float32).reshape(len(self.tested), -1)
        inputs = TensorDataset(torch.as_tensor(as_network_input(flat, tuple(self.tested.shape[1:]))))
        original = self._original = EarlyStopping.on_epoch_end
        curve = self

        def on_epoch_end(callback, net, **kwargs):
            epoch = len(net.history)
            if epoch == 1 or epoch % curve.every == 0:
                embedding = net.forward(inputs, training=False, device="cpu").numpy()
                curve.points.append((epoch, round(float(curve.accuracy(embedding)), 4)))
            return original(callback, net, **kwargs)

        EarlyStopping.on_epoch_end = on_epoch_end
        return self

    def __exit__(self, *exc):
        from sklearn_costs._training import EarlyStopping

        EarlyStopping.on_epoch_end = self._original


def replay_stopping(valid_loss, patience):
    """Where early stopping with ``patience`` would have ended a fit with these per-epoch validation losses, and
    the best epoch it would have restored, as ``(stop, best)`` (epochs from 1; skorch's rule: stop once the loss
    has not fallen below its best for ``patience`` epochs in a row)."""
    best, best_epoch, misses = np.inf, 0, 0
    for epoch, loss in enumerate(valid_loss, 1):
        if loss < best:
            best, best_epoch, misses = loss, epoch, 0
        else:
            misses += 1
            if misses >= patience:
                return epoch, best_epoch
    return len(valid_loss), best_epoch


def nearest_accuracy(curve, epoch):
    """The accuracy of ``curve`` (``(epoch, accuracy)`` pairs) recorded nearest ``epoch``."""
    return min(curve, key=lambda point: abs(point[0] - epoch))[1]


def replay_table(rows, patiences):
    """For each patience, the mean epoch at which each fit of ``rows`` (with ``curve`` and ``valid_loss``) would
    have stopped and the mean accuracy nearest the epoch it would have restored, as printable lines."""
    lines = [f"the fits as run: {np.mean([r['epochs'] for r in rows]):.1f} epochs, "
             f"one-shot {np.mean([r['one-shot'] for r in rows]):.3f}"]
    for patience in patiences:
        replays = [replay_stopping(r["valid_loss"], patience) for r in rows]
        stops = [stop for stop, _ in replays]
        accuracy = [nearest_accuracy(r["curve"], best) for r, (_, best) in zip(rows, replays)]
        lines.append(f"patience {patience}: would stop after {np.mean(stops):.1f} epochs ({min(stops)}-{max(stops)}), "
                     f"one-shot nearest the restored epoch {np.mean(accuracy):.3f}")
    return lines


def some_identities(labels, train, identities, random_state=0):
    """The rows of ``train`` (a mask) whose label is one of ``identities`` of its labels, drawn at random
    (``--identities``)."""
    available = np.unique(labels[train])
    if not 2 <= identities <= len(available):
        raise ValueError(f"--identities {identities}: this split trains on 2 to {len(available)} identities")
    kept = np.random.default_rng(random_state).choice(available, identities, replace=False)
    return train & np.isin(labels, kept)


def omniglot_fit(fold, seed, params, rules, tta=0, identities=None, curve=0):
    import faces

    inputs, labels, extra = faces.load("omniglot")
    train = faces.splits("omniglot", labels, extra, 1)[fold]
    images = inputs["given"]
    fitted = train if identities is None else some_identities(labels, train, identities, random_state=fold)

    def accuracy(emb):
        return faces.within_alphabet_one_shot(emb, labels[~train], extra["alphabet"][~train], extra["drawer"][~train],
                                              random_state=fold)

    return _fit_and_score(images[fitted], labels[fitted], images[~train], accuracy, seed, params, rules, tta, curve,
                          fold=fold, identities=len(np.unique(labels[fitted])))


def faces_fit(name, split, seed, params, rules, tta=0, curve=0):
    import faces

    from sklearn_costs.metrics import one_shot_accuracy

    inputs, labels, extra = faces.load(name)
    train = faces.splits(name, labels, extra, 1)[split]
    images = inputs["given"]
    return _fit_and_score(images[train], labels[train], images[~train],
                          lambda emb: one_shot_accuracy(emb, labels[~train], random_state=split), seed, params, rules,
                          tta, curve, split=split)


def digits_fit(seed, params, rules, tta=0, curve=0):
    import faces

    from sklearn_costs.metrics import one_shot_accuracy

    images, labels, seen = faces.digits_protocol()
    return _fit_and_score(images[seen], labels[seen], images[~seen], lambda emb: one_shot_accuracy(emb, labels[~seen]),
                          seed, params, rules, tta, curve)


def _fit_and_score(images, labels, tested, accuracy, seed, params, rules, tta, curve, **where):
    """One fit of ``TripletEmbedder(random_state=seed, **params)`` under ``rules`` on one PyTorch thread, its
    ``accuracy`` on the embeddings of ``tested`` (and of their ``tta`` augmented copies; with ``curve``, after every
    ``curve``-th epoch too), as a row."""
    import torch

    from sklearn_costs import TripletEmbedder

    torch.set_num_threads(1)
    apply_rules(rules)
    model = TripletEmbedder(random_state=seed, **params)
    recorder = AccuracyCurve(tested, accuracy, curve) if curve else contextlib.nullcontext()
    start = time.perf_counter()
    with recorder:
        model.fit(images, labels)
    seconds = time.perf_counter() - start
    row = _row(model, accuracy(model.transform(tested)), seconds, **where, seed=seed)
    if curve:
        row["curve"] = recorder.points
        row["valid_loss"] = [round(float(v), 5) for v in model.history_["valid_loss"]]
    if tta:
        row[f"one-shot, tta {tta}"] = accuracy(augmented_embedding(model, tested, tta))
    return row


def _row(model, accuracy, seconds, **where):
    return {**where, "one-shot": accuracy, "fit s": seconds, "epochs": model.n_iter_, "n_members_": model.n_members_,
            "input_size_": model.input_size_, "cnn_blocks_": model.cnn_blocks_}


def _run(job):
    kind, args = job
    if kind == "omniglot":
        return omniglot_fit(*args)
    if kind == "digits":
        return digits_fit(*args)
    return faces_fit(kind, *args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["omniglot", "digits", "olivetti", "orl"], default="digits")
    parser.add_argument("--params", default="{}", help="TripletEmbedder parameters as JSON")
    parser.add_argument("--rule", nargs="*", default=[], metavar="NAME=VALUE", help="a rule constant's value")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3], help="Omniglot folds")
    parser.add_argument("--identities", type=int, default=None, metavar="N",
                        help="train each Omniglot fold on N of its characters")
    parser.add_argument("--splits", type=int, default=4, help="the first faces splits")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tta", type=int, default=0, metavar="N",
                        help="also score the mean embedding of each held-out image and N augmented copies")
    parser.add_argument("--curve", type=int, default=0, metavar="N",
                        help="record the held-out accuracy after every N-th epoch, and the validation losses")
    parser.add_argument("--replay-patience", type=int, nargs="+", default=[], metavar="P",
                        help="with --curve: replay each fit's early stopping with patience P")
    args = parser.parse_args(argv)
    if args.replay_patience and not args.curve:
        parser.error("--replay-patience replays the validation losses that --curve records; give --curve N")
    if args.identities is not None and args.data != "omniglot":
        parser.error("--identities subsamples the Omniglot folds' characters; it needs --data omniglot")
    params = json.loads(args.params)
    apply_rules(args.rule)  # fails here, before any fit, on an unknown name
    if args.data == "omniglot":
        jobs = [("omniglot", (fold, seed, params, args.rule, args.tta, args.identities, args.curve))
                for seed in args.seeds for fold in args.folds]
    elif args.data == "digits":
        jobs = [("digits", (seed, params, args.rule, args.tta, args.curve)) for seed in args.seeds]
    else:
        jobs = [(args.data, (split, seed, params, args.rule, args.tta, args.curve))
                for seed in args.seeds for split in range(args.splits)]
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(_run, jobs):
            print(row, flush=True)
            rows.append(row)
    for column in ["one-shot"] + ([f"one-shot, tta {args.tta}"] if args.tta else []):
        accuracy = np.array([row[column] for row in rows])
        if args.data != "digits":  # the mean of the folds or splits per seed, then over seeds
            accuracy = accuracy.reshape(len(args.seeds), -1).mean(1)
        spread = f" +- {accuracy.std(ddof=1):.3f}" if len(accuracy) > 1 else ""
        print(f"{args.data}, params {params}, rules {args.rule}: {column} {accuracy.mean():.3f}{spread} "
              f"(seeds {args.seeds}), fit {np.mean([row['fit s'] for row in rows]):.0f} s per fit")
    if args.replay_patience:
        print("\n".join(replay_table(rows, args.replay_patience)))
    return rows


if __name__ == "__main__":
    main()
