"""Real-data benchmark of TripletEmbedder: one-shot recognition of identities never seen in training, on the
Olivetti (64x64) or ORL (112x92) faces, or on Omniglot's handwritten characters (105x105).

Faces protocol (shared/data/faces/README.md): 4-fold cross-validation over the 40 people (30 train / 10 test)
repeated with 3 seeds, the same splits for every method. Metrics on the test people: 10-way one-shot accuracy (one
photo of each enrolled, the other 9 recognised by 1-NN; mean over 20 random enrolments), 5-shot accuracy, recall@1
(leave-one-out 1-NN) and verification ROC AUC over all pairs of test photos.

Omniglot protocol (shared/data/omniglot/README.md): the 8 alphabets in 4 folds of 2, each fold trained on the other
6 (leave-alphabets-out); per held-out alphabet, 20 draws of 20 of its characters, one drawing of each enrolled
(by one drawer) and one by another drawer classified by 1-NN: 20-way within-alphabet one-shot accuracy.

"TripletEmbedder() defaults" gets the images as they come (ORL 112x92, Omniglot 105x105) and no argument but
``random_state``: its ``"auto"`` settings are resolved in ``fit``. Raw pixels, PCA and NCA see the README's
resolution (Olivetti 64x64, ORL 56x46, Omniglot 105x105).

Usage::

    python benchmarks/faces.py                          # Olivetti, all methods, 12 splits
    python benchmarks/faces.py --data orl
    python benchmarks/faces.py --data omniglot          # 4 leave-alphabets-out folds
    python benchmarks/faces.py --jobs 16                # splits and methods in 16 processes (one thread each)
    python benchmarks/faces.py --methods "raw pixels + 1-NN" "TripletEmbedder() defaults"
    python benchmarks/faces.py --data omniglot --fit-all   # time one default fit on every image, as given
    python benchmarks/faces.py --digits 0 1 2 --threads 2  # the demo's digits protocol, one fit per seed
    python benchmarks/faces.py --loss multi_similarity proxy_anchor   # a row per loss, the defaults otherwise
    python benchmarks/faces.py --data orl --methods "TripletEmbedder() defaults" --loss proxy_anchor --jobs 8
    python benchmarks/faces.py --digits 0 1 2 --loss triplet multi_similarity   # the digits protocol per loss
    python benchmarks/faces.py --data omniglot --model-seeds 0 1 2 --jobs 2   # the defaults' spread over seeds
    python benchmarks/faces.py --claims --jobs 2        # the accuracy claims that were unit tests (CLAIMS)
    python benchmarks/faces.py --claims omniglot-defaults

``--loss`` adds the row ``TripletEmbedder(loss='NAME')`` (every other setting at its default) for each registered
embedding loss named (or ``auto``), and, beside the table, how it does against ``TripletEmbedder() defaults``
(``loss="auto"``: the multi-similarity loss on at most 100 training identities, the triplet loss on more) split by
split; with ``--digits`` or ``--fit-all`` it fits each loss in turn.

``--claims`` runs the comparisons that tests/test_real_data.py and tests/test_triplet.py asserted until they moved
here (issue 30: a result that only a long fit can show is a benchmark, not a unit test), each with the test's
data, split, estimator, one PyTorch thread and margin, and says whether each still holds (exit code 1 if one does
not). The test suite keeps fast checks of the same fits' plumbing on the real images (a few epochs).
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline, make_union

from sklearn_costs import TripletEmbedder
from sklearn_costs.datasets import load_faces, load_omniglot
from sklearn_costs.metrics import few_shot_accuracy, one_shot_accuracy, recall_at_1


def verification_auc(emb, labels):
    d = cdist(emb, emb, "sqeuclidean")
    upper = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    return float(roc_auc_score(same, -d[upper]))


def within_alphabet_one_shot(emb, characters, alphabets, drawers, n_way=20, n_draws=20, random_state=0):
    """Lake et al.'s one-shot task: per alphabet, ``n_draws`` times ``n_way`` of its characters, one drawing of each
    by drawer A enrolled, one by drawer B classified by its nearest enrolled drawing; the mean accuracy."""
    rng = np.random.default_rng(random_state)
    scores = []
    for alphabet in np.unique(alphabets):
        in_alphabet = alphabets == alphabet
        chars = np.unique(characters[in_alphabet])
        for _ in range(n_draws):
            pick = rng.choice(chars, min(n_way, len(chars)), replace=False)
            enrol_drawer, query_drawer = rng.choice(np.unique(drawers[in_alphabet]), 2, replace=False)
            enrol = [np.flatnonzero((characters == c) & (drawers == enrol_drawer))[0] for c in pick]
            query = [np.flatnonzero((characters == c) & (drawers == query_drawer))[0] for c in pick]
            nearest = cdist(emb[query], emb[enrol], "sqeuclidean").argmin(1)
            scores.append(np.mean(nearest == np.arange(len(pick))))
    return float(np.mean(scores))


def downsample(images, factor):
    """Average ``factor x factor`` blocks of pixels (64x64 -> 16x16 for factor 4)."""
    n, h, w = images.shape
    images = images[:, : h - h % factor, : w - w % factor]  # crop to whole blocks
    h, w = images.shape[1:]
    return images.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


# The tuned recipe of the earlier benchmark runs: photos averaged to 16-22 pixels a side (Olivetti 4x4 blocks,
# ORL's 112x92 originals 5x5 blocks), two blocks, augmentation, patience 40, ten seeds side by side.
POOL = {"olivetti": 4, "orl": 5, "omniglot": 5}


def tuned_union(members):
    return make_union(*[
        TripletEmbedder(n_members=1, cnn_blocks=2, augment=True, n_iter_no_change=40, max_epochs=200, random_state=s)
        for s in range(members)
    ])


def flat(images):
    return images.reshape(len(images), -1)


#: name -> (input, embed(X_train, y_train, X_test) -> test embeddings). Inputs: "given" (as the data set comes:
#: ORL 112x92, Omniglot 105x105), "readme" (the README's resolution: ORL 56x46), "pooled" (``POOL``).
METHODS = {
    "raw pixels + 1-NN": ("readme", lambda X, y, Xt: flat(Xt)),
    "PCA(50) + 1-NN": ("readme", lambda X, y, Xt: PCA(50, random_state=0).fit(flat(X)).transform(flat(Xt))),
    "PCA(50) + NCA(32) + 1-NN": (
        "readme",
        lambda X, y, Xt: make_pipeline(PCA(50, random_state=0), NeighborhoodComponentsAnalysis(32, random_state=0))
        .fit(flat(X), y).transform(flat(Xt)),
    ),
    "TripletEmbedder() defaults": ("given", lambda X, y, Xt: TripletEmbedder(random_state=0).fit(X, y).transform(Xt)),
    "tuned: 10 x TripletEmbedder CNN pooled (FeatureUnion)": (
        "pooled", lambda X, y, Xt: tuned_union(10).fit(X, y).transform(Xt)),
}


#: The defaults with another loss, as ``--loss`` names its rows.
LOSS_METHOD = re.compile(r"TripletEmbedder\(loss='(\w+)'\)")


def loss_method(loss):
    """The name of the row of ``TripletEmbedder(loss=loss)`` with every other setting at its default."""
    return f"TripletEmbedder(loss={loss!r})"


#: ``--model-seeds``: the defaults with another ``random_state`` (the network's start, batches and augmentations).
SEEDED_METHOD = re.compile(r"TripletEmbedder\(random_state=(\d+)\) defaults")


def method_of(name):
    """``(input, embed)`` of a row of :data:`METHODS`, or of a row that ``--loss`` adds."""
    if name in METHODS:
        return METHODS[name]
    seeded = SEEDED_METHOD.fullmatch(name)
    if seeded is not None:
        seed = int(seeded[1])
        return "given", lambda X, y, Xt: TripletEmbedder(random_state=seed).fit(X, y).transform(Xt)
    match = LOSS_METHOD.fullmatch(name)
    if match is None:
        raise KeyError(name)
    loss = match[1]
    return "given", lambda X, y, Xt: TripletEmbedder(loss=loss, random_state=0).fit(X, y).transform(Xt)


def load(name):
    """Images (float32, ink or brightness in [0, 1]) in each input form, labels, and the extra Omniglot columns."""
    if name == "omniglot":
        data = load_omniglot()
        images = data.images.astype(np.float32)
        extra = {"alphabet": data.alphabet, "drawer": data.drawer}
    else:
        data = load_faces(name)
        images = data.images.astype(np.float32) / 255.0
        extra = {}
    inputs = {"given": images, "readme": downsample(images, 2) if name == "orl" else images,
              "pooled": downsample(images, POOL[name])}
    return inputs, data.target, extra


def splits(name, labels, extra, n_seeds):
    """Boolean train masks, the same for every method."""
    if name == "omniglot":
        alphabets = np.unique(extra["alphabet"])
        order = np.random.default_rng(0).permutation(len(alphabets))
        return [~np.isin(extra["alphabet"], alphabets[order[2 * k : 2 * k + 2]]) for k in range(4)]
    people = np.unique(labels)
    return [np.isin(labels, people[train]) for seed in range(n_seeds)
            for train, _ in KFold(4, shuffle=True, random_state=seed).split(people)]


def run(job):
    """One (data set, split, method): its metrics and fit seconds. One torch thread per process."""
    import torch

    torch.set_num_threads(1)
    name, split, method, n_seeds = job
    inputs, labels, extra = load(name)
    train = splits(name, labels, extra, n_seeds)[split]
    source, embed = method_of(method)
    images = inputs[source]
    start = time.perf_counter()
    emb = embed(images[train], labels[train], images[~train])
    seconds = time.perf_counter() - start
    y = labels[~train]
    if name == "omniglot":
        row = {"one-shot": within_alphabet_one_shot(emb, y, extra["alphabet"][~train], extra["drawer"][~train],
                                                    random_state=split)}
    else:
        row = {"one-shot": one_shot_accuracy(emb, y, random_state=split),
               "5-shot": few_shot_accuracy(emb, y, shots=5, random_state=split),
               "recall@1": recall_at_1(emb, y), "ROC AUC": verification_auc(emb, y)}
    return {"method": method, "split": split, **row, "fit s": seconds}


def report(row):
    print(f"split {row['split']}, {row['method']}: one-shot {row['one-shot']:.3f}, {row['fit s']:.1f} s", flush=True)
    return row


def fit_all(name, loss="auto"):
    """The time of one default fit (with ``loss``) on every image of the data set, as a user would run it (PyTorch's
    threads)."""
    inputs, labels, _ = load(name)
    images = inputs["given"]
    start = time.perf_counter()
    model = TripletEmbedder(loss=loss, random_state=0).fit(images, labels)
    seconds = time.perf_counter() - start
    settings = ["module_kind", "input_size", "cnn_blocks", "n_members", "max_epochs", "n_iter_no_change"]
    resolved = ", ".join(f"{k}_={getattr(model, k + '_')!r}" for k in settings)
    print(f"{name}: {len(images)} images of shape {images.shape[1:]}; TripletEmbedder(loss={loss!r}, "
          f"random_state=0).fit: {seconds:.0f} s, {model.n_iter_} epochs; {resolved}")
    return seconds


def digits_protocol():
    """The demo's digits protocol (``sklearn-costs demo embedding``): the 1,797 8x8 digits as float32 images, their
    labels, and the mask of those trained on (0-6; one-shot on 7-9)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target, digits.target < 7


def digits_defaults(seeds, threads, loss="auto"):
    """The demo's digits protocol (``sklearn-costs demo embedding``): ``TripletEmbedder(loss=loss,
    random_state=seed)`` fitted on the 1,264 8x8 digits 0-6, 3-way one-shot accuracy on 7-9 (raw pixels: 0.759); mean
    and sd over ``seeds`` of the accuracy and of the fit's wall and CPU seconds with ``threads`` PyTorch threads."""
    import torch

    torch.set_num_threads(threads)
    images, labels, seen = digits_protocol()
    rows = []
    for seed in seeds:
        model = TripletEmbedder(loss=loss, random_state=seed)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(images[seen], labels[seen])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append({"seed": seed, "one-shot": one_shot_accuracy(model.transform(images[~seen]), labels[~seen]),
                     "fit s": wall, "fit cpu s": cpu, "epochs": model.n_iter_, "max_epochs_": model.max_epochs_,
                     "n_iter_no_change_": model.n_iter_no_change_})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows).set_index("seed")
    print(f"digits 0-6 -> 7-9, loss={loss!r}, {threads} threads: one-shot {frame['one-shot'].mean():.3f} +- "
          f"{frame['one-shot'].std(ddof=1):.3f}, fit {frame['fit s'].mean():.1f} +- {frame['fit s'].std(ddof=1):.1f} s "
          f"(CPU {frame['fit cpu s'].mean():.1f} +- {frame['fit cpu s'].std(ddof=1):.1f} s)")
    return frame


# --------------------------------------------------------------------------------------------- the former tests


def _olivetti_claim_split():
    """Olivetti 64x64 in [0, 1], labels, and the former tests' split: ten people drawn by seed 0 never seen."""
    faces = load_faces("olivetti")
    images = faces.images.astype(np.float32) / 255.0
    new = np.isin(faces.target, np.random.default_rng(0).permutation(40)[:10])
    return images, faces.target, new


def _claim_row(claim, test, model, seconds, embedded, pixels, required, settings=None, expected=None):
    """One claim's figures: it holds when the embedding's one-shot accuracy is more than ``required`` above raw
    pixels' and the resolved ``settings`` are the ``expected`` ones the test asserted (if it asserted any)."""
    lead = embedded - pixels
    return {"claim": claim, "former test": test, "one-shot": embedded, "raw pixels": pixels, "lead": lead,
            "required lead": required, "settings": "" if settings is None else str(settings),
            "holds": bool(lead > required and settings == expected), "epochs": model.n_iter_, "fit s": seconds}


def _timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def claim_olivetti_defaults():
    """The defaults on the 64x64 photos as given: 24x24 inside the network, two blocks, five members; ten people
    never seen, 10-way one-shot, more than 0.05 above raw pixels."""
    X, y, new = _olivetti_claim_split()
    model = TripletEmbedder(n_threads=1, random_state=0)
    seconds = _timed_fit(model, X[~new], y[~new])
    settings = (model.input_size_, model.cnn_blocks_, model.n_members_)
    return [_claim_row("Olivetti 64x64, TripletEmbedder() defaults",
                       "test_real_data.py::test_default_embedder_on_64x64_faces_as_given_beats_raw_pixels", model,
                       seconds, one_shot_accuracy(model.transform(X[new]), y[new]),
                       one_shot_accuracy(X[new].reshape(new.sum(), -1), y[new]), 0.05, settings, ((24, 24), 2, 5))]


def claim_olivetti_augmented_cnn():
    """Photos averaged by hand to 16x16, a two-block CNN with augmentation and patience 40 (other settings
    "auto"): ten people never seen, more than 0.03 above the 16x16 raw pixels."""
    faces = load_faces("olivetti")
    X = faces.images.astype(np.float32).reshape(400, 16, 4, 16, 4).mean(axis=(2, 4)) / 255.0  # as the test had it
    y, new = faces.target, _olivetti_claim_split()[2]
    model = TripletEmbedder(cnn_blocks=2, augment=True, n_iter_no_change=40, n_threads=1, random_state=0)
    seconds = _timed_fit(model, X[~new], y[~new])
    return [_claim_row("Olivetti 16x16, cnn_blocks=2, augment=True, n_iter_no_change=40",
                       "test_real_data.py::test_augmented_cnn_on_coarse_faces_beats_raw_pixels_one_shot", model,
                       seconds, one_shot_accuracy(model.transform(X[new]), y[new]),
                       one_shot_accuracy(X[new].reshape(new.sum(), -1), y[new]), 0.03)]


def claim_omniglot_defaults():
    """The defaults on the 105x105 drawings as given, trained on the six alphabets other than Balinese and Tagalog
    (4,020 drawings: one member): in each held-out alphabet, one-shot among all its characters, more than 0.2
    above raw pixels."""
    data = load_omniglot()
    new = np.isin(data.alphabet, ["Balinese", "Tagalog"])
    model = TripletEmbedder(n_threads=1, random_state=0)
    seconds = _timed_fit(model, data.images[~new], data.target[~new])
    settings = (model.input_size_, model.n_members_)
    emb = model.transform(data.images[new])
    rows = []
    for alphabet in ("Balinese", "Tagalog"):
        chars = data.alphabet[new] == alphabet
        labels = data.target[new][chars]
        name = f"Omniglot 105x105, TripletEmbedder() defaults, {alphabet} ({len(np.unique(labels))}-way)"
        rows.append(_claim_row(name,
                               "test_real_data.py::test_default_embedder_on_105x105_characters_of_unseen_alphabets_"
                               "beats_raw_pixels", model, seconds, one_shot_accuracy(emb[chars], labels),
                               one_shot_accuracy(data.images[new][chars].reshape(chars.sum(), -1), labels), 0.2,
                               settings, ((24, 24), 1)))
    return rows


def claim_digits_defaults():
    """The demo's digits protocol with the defaults: trained on the 8x8 digits 0-6, 3-way one-shot on 7-9 above raw
    pixels."""
    images, labels, seen = digits_protocol()
    model = TripletEmbedder(random_state=0)  # the test left the threads to its pytest worker: one
    seconds = _timed_fit(model, images[seen], labels[seen])
    return [_claim_row("digits 8x8 (0-6 -> 7-9), TripletEmbedder() defaults",
                       "test_triplet.py::test_default_beats_raw_pixels_on_8x8_digits_it_never_saw", model, seconds,
                       one_shot_accuracy(model.transform(images[~seen]), labels[~seen]),
                       one_shot_accuracy(images[~seen].reshape(-1, 64), labels[~seen]), 0.0)]


def claim_olivetti_mlp():
    """An MLP embedder (one hidden layer of 256) on the 64x64 photos as given: the ten people never seen are
    recognised from one photo (10-way one-shot above 0.55; recall@1 among them above 0.85). No raw-pixel margin:
    the test asserted these two marks."""
    X, y, new = _olivetti_claim_split()
    model = TripletEmbedder(module="mlp", hidden_layer_sizes=(256,), random_state=0)  # the worker's one thread
    seconds = _timed_fit(model, X[~new], y[~new])
    emb = model.transform(X[new])
    recall, one_shot = model.score(X[new], y[new]), one_shot_accuracy(emb, y[new])
    pixels = one_shot_accuracy(X[new].reshape(new.sum(), -1), y[new])
    row = _claim_row("Olivetti 64x64, MLP (256,) embedder", "test_real_data.py::test_faces_of_people_never_seen_are_"
                     "recognised_from_one_photo", model, seconds, one_shot, pixels, -np.inf,
                     settings=f"recall@1 {recall:.3f} (> 0.85)")
    row["holds"] = bool(one_shot > 0.55 and recall > 0.85)
    row["required lead"] = "one-shot > 0.55"
    return [row]


#: name -> the comparison a former unit test asserted (its data, split, estimator and margin).
CLAIMS = {
    "olivetti-mlp": claim_olivetti_mlp,
    "olivetti-defaults": claim_olivetti_defaults,
    "olivetti-augmented-cnn": claim_olivetti_augmented_cnn,
    "omniglot-defaults": claim_omniglot_defaults,
    "digits-defaults": claim_digits_defaults,
}


def _run_claim(name):
    import torch

    torch.set_num_threads(1)  # as under the test suite's pytest-xdist workers on two cores
    rows = CLAIMS[name]()
    for row in rows:
        print(f"{row['claim']}: one-shot {row['one-shot']:.3f}, raw pixels {row['raw pixels']:.3f}, lead "
              f"{row['lead']:+.3f} (required > {row['required lead']}), {row['fit s']:.0f} s", flush=True)
    return rows


def run_claims(names, jobs=1):
    """Each claim's rows (see :func:`_claim_row`) as a table; ``jobs`` processes, one PyTorch thread each."""
    if jobs > 1:
        from multiprocessing import Pool

        with Pool(min(jobs, len(names))) as pool:
            results = pool.map(_run_claim, names)
    else:
        results = [_run_claim(name) for name in names]
    frame = pd.DataFrame([row for rows in results for row in rows])
    shown = frame.drop(columns=["former test"]).set_index("claim")
    print("\n" + shown.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\n".join(f"- {test}" for test in dict.fromkeys(frame["former test"])))
    print("every claim holds" if frame["holds"].all() else
          f"FAILED: {', '.join(frame.loc[~frame['holds'], 'claim'])}")
    return frame


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["olivetti", "orl", "omniglot"], default="olivetti")
    parser.add_argument("--seeds", type=int, default=3, help="repetitions of the 4 folds (faces)")
    parser.add_argument("--splits-run", type=int, default=None, help="run only the first splits")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--jobs", type=int, default=1, help="processes, each fitting with one torch thread")
    parser.add_argument("--fit-all", action="store_true",
                        help="only time TripletEmbedder(random_state=0).fit on all images as given (its own threads)")
    parser.add_argument("--digits", type=int, nargs="+", default=None, metavar="SEED",
                        help="only the digits protocol (train 0-6, one-shot on 7-9), one default fit per seed")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads of --digits")
    parser.add_argument("--loss", nargs="+", default=None, metavar="NAME",
                        help="embedding losses to compare with the defaults: a row TripletEmbedder(loss=NAME) "
                             "each (with --digits / --fit-all: each loss in turn)")
    parser.add_argument("--model-seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="only the defaults, one row per TripletEmbedder(random_state=SEED) on the same splits, "
                             "and their one-shot accuracy as mean +- sd over the seeds")
    parser.add_argument("--claims", nargs="*", default=None, choices=list(CLAIMS), metavar="CLAIM",
                        help=f"only the accuracy claims that were unit tests (all, or some of {list(CLAIMS)})")
    args = parser.parse_args(argv)
    if args.claims is not None:
        frame = run_claims(args.claims or list(CLAIMS), args.jobs)
        if not frame["holds"].all():
            sys.exit(1)
        return frame
    losses = args.loss or []
    from sklearn_costs.losses import available_losses

    registered = [info.name for info in available_losses("embedding")] + ["auto"]
    unknown = sorted(set(losses) - set(registered))
    if unknown:
        parser.error(f"unknown losses {unknown}; the embedding losses are {registered}")
    if args.digits:
        return [digits_defaults(args.digits, args.threads, loss) for loss in losses or ["auto"]]
    if args.fit_all:
        return [fit_all(args.data, loss) for loss in losses or ["auto"]]
    names = list(METHODS)
    if args.methods:
        unknown = set(args.methods) - set(names)
        if unknown:
            parser.error(f"unknown methods {sorted(unknown)}; choose among {names}")
        names = [n for n in names if n in args.methods]
    names += [loss_method(loss) for loss in losses if loss_method(loss) not in names]
    if args.model_seeds:
        names = [f"TripletEmbedder(random_state={seed}) defaults" for seed in args.model_seeds]

    _, labels, extra = load(args.data)
    n_splits = len(splits(args.data, labels, extra, args.seeds))
    n_splits = min(n_splits, args.splits_run or n_splits)
    jobs = [(args.data, split, method, args.seeds) for split in range(n_splits) for method in names]
    if args.jobs > 1:
        from multiprocessing import Pool

        with Pool(args.jobs) as pool:
            results = pool.imap_unordered(run, jobs)
            rows = [report(row) for row in results]
    else:
        rows = [report(run(job)) for job in jobs]
    frame = pd.DataFrame(rows)
    table = frame.groupby("method", sort=False).mean().drop(columns="split")
    table.insert(1, "one-shot sd", frame.groupby("method", sort=False)["one-shot"].std(ddof=1))
    wins = frame.pivot(index="split", columns="method", values="one-shot")
    print(f"\n{args.data}: {n_splits} splits (test identities never seen in training)")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    if args.model_seeds:
        per_seed = table["one-shot"]
        print(f"defaults over random_state {args.model_seeds}: one-shot {per_seed.mean():.3f} +- "
              f"{per_seed.std(ddof=1):.3f} (sd of the seeds' means over the {n_splits} splits)")
    if "TripletEmbedder() defaults" in wins:
        baselines = [m for m in wins if m.split(" ")[0] in ("raw", "PCA(50)")]
        if baselines:
            best = wins[baselines].max(axis=1)
            print(f"defaults above the best baseline on {(wins['TripletEmbedder() defaults'] > best).sum()} of "
                  f"{len(wins)} splits")
        for loss in losses:
            diff = wins[loss_method(loss)] - wins["TripletEmbedder() defaults"]
            print(f"loss={loss!r} against the defaults: one-shot {diff.mean():+.3f} (sd {diff.std(ddof=1):.3f} "
                  f"over splits), above it on {(diff > 0).sum()}, below on {(diff < 0).sum()} of {len(diff)} splits")
    return table


if __name__ == "__main__":
    main()
