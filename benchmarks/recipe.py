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
``--curve N`` and ``--patience P ...`` keep a copy of the network's weights after every epoch (``patience.py``'s
recording): ``--curve`` scores the weights of every ``N``-th epoch (and the first) on the held-out identities,
how long the accuracy of identities the network never sees keeps improving; ``--patience`` replays early stopping
with each patience ``P`` on the fit's validation losses (``patience.py``'s replay, skorch's rule) and scores the
epoch each replay restores. One fit thus gives every patience up to its own (``n_iter_no_change``). The copies
take time, so the fit seconds of such a run are not those of a plain one.
``--tta N`` also scores test-time augmentation: each held-out image embedded as the mean of its embedding and of
``N`` randomly augmented copies (the fit's own augmentation), renormalised per member.

Usage::

    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --rule MIN_IDENTITIES_HELD_OUT_WHOLE=10
    python benchmarks/recipe.py --data omniglot --params '{"cnn_blocks": 4}'
    python benchmarks/recipe.py --data omniglot --rule TARGET_STEPS=6000
    python benchmarks/recipe.py --data omniglot --rule POOL_GRID=3
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --tta 8
    python benchmarks/recipe.py --data digits --seeds 0 1 2 3 4 5 --params '{"n_iter_no_change": 13}' \
        --curve 5 --patience 3 5 8 13
    python benchmarks/recipe.py --data orl --seeds 1 2 --params '{"loss": "multi_similarity"}'
    python benchmarks/recipe.py --data omniglot --folds 0 1 --identities 60 --params '{"loss": "multi_similarity"}'
    python benchmarks/recipe.py --data omniglot --rule AUGMENT_MAX_SHIFT=0.12 AUGMENT_MAX_ROTATION=15 \
        AUGMENT_MAX_SCALE=0.2
"""

from __future__ import annotations

import argparse
import copy
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


def some_identities(labels, train, identities, random_state=0):
    """The rows of ``train`` (a mask) whose label is one of ``identities`` of its labels, drawn at random
    (``--identities``)."""
    available = np.unique(labels[train])
    if not 2 <= identities <= len(available):
        raise ValueError(f"--identities {identities}: this split trains on 2 to {len(available)} identities")
    kept = np.random.default_rng(random_state).choice(available, identities, replace=False)
    return train & np.isin(labels, kept)


def omniglot_fit(fold, seed, params, rules, measures=None, identities=None):
    import faces

    inputs, labels, extra = faces.load("omniglot")
    train = faces.splits("omniglot", labels, extra, 1)[fold]
    images = inputs["given"]
    fitted = train if identities is None else some_identities(labels, train, identities, random_state=fold)

    def accuracy(emb):
        return faces.within_alphabet_one_shot(emb, labels[~train], extra["alphabet"][~train], extra["drawer"][~train],
                                              random_state=fold)

    return _fit_and_score(images[fitted], labels[fitted], images[~train], accuracy, seed, params, rules, measures,
                          fold=fold, identities=len(np.unique(labels[fitted])))


def faces_fit(name, split, seed, params, rules, measures=None):
    import faces

    from sklearn_costs.metrics import one_shot_accuracy

    inputs, labels, extra = faces.load(name)
    train = faces.splits(name, labels, extra, 1)[split]
    images = inputs["given"]
    return _fit_and_score(images[train], labels[train], images[~train],
                          lambda emb: one_shot_accuracy(emb, labels[~train], random_state=split), seed, params, rules,
                          measures, split=split)


def digits_fit(seed, params, rules, measures=None):
    import faces

    from sklearn_costs.metrics import one_shot_accuracy

    images, labels, seen = faces.digits_protocol()
    return _fit_and_score(images[seen], labels[seen], images[~seen], lambda emb: one_shot_accuracy(emb, labels[~seen]),
                          seed, params, rules, measures)


def _fit_and_score(images, labels, tested, accuracy, seed, params, rules, measures=None, **where):
    """One fit of ``TripletEmbedder(random_state=seed, **params)`` under ``rules`` on one PyTorch thread, its
    ``accuracy`` on the embeddings of ``tested``, as a row. ``measures`` (the command's ``tta``, ``curve`` and
    ``patience``) adds the accuracy of test-time augmentation, of every ``curve``-th epoch and of the epoch that
    early stopping with each ``patience`` restores."""
    import torch
    from patience import recording, scored_by_patience, scored_epoch

    from sklearn_costs import TripletEmbedder

    measures = measures or {}
    torch.set_num_threads(1)
    apply_rules(rules)
    records = measures.get("curve") or measures.get("patience")
    model = (recording(TripletEmbedder) if records else TripletEmbedder)(random_state=seed, **params)
    start = time.perf_counter()
    model.fit(images, labels)
    seconds = time.perf_counter() - start
    row = _row(model, accuracy(model.transform(tested)), seconds, **where, seed=seed)
    if measures.get("tta"):
        row[f"one-shot, tta {measures['tta']}"] = accuracy(augmented_embedding(model, tested, measures["tta"]))
    if records:
        _check_replays(model, measures.get("patience", []))

        def score(fitted):
            return round(float(accuracy(fitted.transform(tested))), 4)

        fitted_weights = copy.deepcopy(model.net_.module_.state_dict())
        if measures.get("curve"):
            every, recorded = measures["curve"], len(model.epoch_weights.states)
            row["curve"] = {epoch: scored_epoch(model, epoch - 1, score)
                            for epoch in [1, *range(every, recorded + 1, every)]}
        row["patience"] = {patience: (accuracy_then, epochs) for patience, accuracy_then, epochs
                           in scored_by_patience(model, measures.get("patience", []), score)}
        row["valid_loss"] = [round(float(v), 5) for v in model.history_["valid_loss"]]
        model.net_.module_.load_state_dict(fitted_weights)
    return row


def _check_replays(model, patiences):
    """Refuse replays that the fit cannot show: without validation losses (no early stopping) every epoch would
    count as the best, and a patience longer than the fit's own would be cut off where the fit stopped."""
    if patiences and not np.isfinite(model.history_["valid_loss"]).any():
        raise ValueError("--patience replays early stopping on the validation losses, but this fit had none "
                         "(early_stopping=False, or too few rows to hold some out)")
    longer = [p for p in patiences if p > model.n_iter_no_change_]
    if longer:
        raise ValueError(f"--patience {longer}: longer than the fit's own patience ({model.n_iter_no_change_}), "
                         "where it stopped; set n_iter_no_change in --params to at least the longest")


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
                        help="also score the weights of every N-th epoch on the held-out identities")
    parser.add_argument("--patience", type=int, nargs="+", default=[], metavar="P",
                        help="also score the epoch that early stopping with patience P would have restored")
    args = parser.parse_args(argv)
    if args.identities is not None and args.data != "omniglot":
        parser.error("--identities subsamples the Omniglot folds' characters; it needs --data omniglot")
    params = json.loads(args.params)
    apply_rules(args.rule)  # fails here, before any fit, on an unknown name
    measures = {"tta": args.tta, "curve": args.curve, "patience": args.patience}
    if args.data == "omniglot":
        jobs = [("omniglot", (fold, seed, params, args.rule, measures, args.identities))
                for seed in args.seeds for fold in args.folds]
    elif args.data == "digits":
        jobs = [("digits", (seed, params, args.rule, measures)) for seed in args.seeds]
    else:
        jobs = [(args.data, (split, seed, params, args.rule, measures))
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
    for line in measured_lines(rows):
        print(line)
    return rows


def measured_lines(rows):
    """The mean over ``rows`` of the accuracy at each epoch scored (``--curve``, over the fits that ran that long)
    and, for each replayed patience (``--patience``), of the epochs run and the accuracy restored."""
    lines = []
    curves = [row["curve"] for row in rows if "curve" in row]
    if curves:
        epochs = sorted({epoch for curve in curves for epoch in curve})
        lines.append("one-shot by epoch (fits that ran so long): " + ", ".join(
            f"{epoch}: {np.mean([c[epoch] for c in curves if epoch in c]):.3f} "
            f"({sum(epoch in c for c in curves)})" for epoch in epochs))
    replays = [row["patience"] for row in rows if row.get("patience")]
    for patience in (replays[0] if replays else []):
        epochs = [replay[patience][1] for replay in replays]
        lines.append(f"patience {patience}: {np.mean(epochs):.1f} epochs ({min(epochs)}-{max(epochs)}), one-shot "
                     f"{np.mean([replay[patience][0] for replay in replays]):.3f}")
    return lines


if __name__ == "__main__":
    main()
