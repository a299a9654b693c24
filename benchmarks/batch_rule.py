"""The data behind ``batch_size="auto"`` on each device: fit time and held-out score of the defaults at several
batch sizes, and the time of ``predict`` on a large count matrix against a training epoch.

Part ``batch``: the default ``PoissonSpikeRegressor`` on the M1 recording (first of ``KFold(8, shuffle=True,
random_state=42)``; mean D2 over neurons, the null rate from the training part) and the default
``GaussianUncertaintyRegressor`` on UCI protein and kin8nm (the first published split; test NLL), each with
``batch_size`` "auto" (reported as ``batch_size_``) and the fixed sizes of ``--batch-sizes``, on ``--device``:
fit seconds, epochs, score. A rule for a device is chosen from these rows: the largest batch whose score stays
within the noise of the CPU rule's, since on a GPU a step costs about the same at 256 and 4096 rows.

Part ``predict``: ``PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), batch_size=4096)`` trained one epoch on a
``--large`` ROWS x NEURONS uint8 count matrix with 20 covariates, then ``predict`` on all its rows: seconds of
each and the dtype and size of what ``predict`` returns.

Usage::

    python benchmarks/batch_rule.py --device cuda                   # on a GPU machine, about 2 minutes
    python benchmarks/batch_rule.py --device cpu --skip predict     # the CPU rows (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_check import markdown_table, timed_on  # noqa: E402

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor  # noqa: E402
from sklearn_costs.datasets import load_stevenson_m1, load_uci  # noqa: E402
from sklearn_costs.metrics import poisson_d2_per_target  # noqa: E402


def m1():
    data = load_stevenson_m1()
    train, test = next(KFold(8, shuffle=True, random_state=42).split(data.kinematics))
    X, Y = np.asarray(data.kinematics, dtype=np.float32), np.asarray(data.counts)

    def score(model):
        d2 = poisson_d2_per_target(Y[test], model.predict(X[test]), y_null=Y[train].mean(0))
        return float(np.nanmean(d2[Y[test].sum(0) > 0]))  # neurons silent in the test part are left out

    return PoissonSpikeRegressor, X[train], Y[train], score, "D2"


def uci(name):
    data = load_uci(name)
    train, test = data.splits[0]

    def score(model):
        return float(-np.mean(model.log_likelihood(data.X[test], data.y[test])))

    return GaussianUncertaintyRegressor, data.X[train], data.y[train], score, "NLL"


DATA = {"M1 spikes": m1, "UCI protein": lambda: uci("protein"), "UCI kin8nm": lambda: uci("kin8nm")}


def batch_rows(device, batch_sizes, sets):
    rows = []
    for name in sets:
        cls, X, y, score, metric = DATA[name]()
        cls(random_state=0, device=device, max_epochs=1).fit(X[:512], y[:512])  # CUDA context: not timed
        for batch_size in ["auto", *batch_sizes]:
            model = cls(random_state=0, device=device, batch_size=batch_size)
            seconds = timed_on(device, model.fit, X, y)
            rows.append({"data": name, "rows": len(X), "batch_size": batch_size, "batch_size_": model.batch_size_,
                         "fit s": seconds, "epochs": model.n_iter_, "metric": metric, "score": score(model)})
            print(rows[-1], flush=True)
    return rows


def predict_rows(device, n_rows, n_neurons, n_features):
    generator = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(n_rows, n_features, generator=generator, device=device)
    rates = torch.exp(0.3 * X[:, :1] - 1.0).expand(n_rows, n_neurons)
    Y = torch.poisson(rates, generator=generator).clamp_max(255).to(torch.uint8)
    X, Y = X.cpu().numpy(), Y.cpu().numpy()
    model = PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), batch_size=4096, max_epochs=1, early_stopping=False,
                                  random_state=0, device=device)
    model.fit(X[:8192], Y[:8192])  # CUDA context, kernels: not timed
    fit = timed_on(device, model.fit, X, Y)
    start = time.perf_counter()
    prediction = model.predict(X)
    seconds = time.perf_counter() - start
    row = {"rows": n_rows, "neurons": n_neurons, "epoch s": fit, "predict s": seconds,
           "predict / epoch": seconds / fit, "output dtype": str(prediction.dtype),
           "output MB": prediction.nbytes / 1e6}
    print(row, flush=True)
    return [row]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1024, 4096])
    parser.add_argument("--sets", nargs="*", default=list(DATA), choices=list(DATA))
    parser.add_argument("--large", type=int, nargs=3, default=[500_000, 1000, 20],
                        metavar=("ROWS", "NEURONS", "FEATURES"))
    parser.add_argument("--skip", nargs="*", default=[], choices=["batch", "predict"])
    parser.add_argument("--out", default=None, help="markdown file written")
    args = parser.parse_args(argv)
    text = [f"# batch_size and predict on {args.device}, torch {torch.__version__}"]
    if "batch" not in args.skip:
        text += ["\n## Defaults at several batch sizes\n",
                 markdown_table(batch_rows(args.device, args.batch_sizes, args.sets))]
    if "predict" not in args.skip:
        text += ["\n## predict on a large count matrix against one training epoch\n",
                 markdown_table(predict_rows(args.device, *args.large))]
    text = "\n".join(text) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
