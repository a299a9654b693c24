"""How much patience early stopping needs: one fit per split with the estimator's own patience records the weights
of every epoch; early stopping is then replayed on the recorded validation losses with each smaller patience, and
the epoch that replay restores is scored on the test split. One fit per split gives every patience at once.

- UCI sets (``GaussianUncertaintyRegressor()``, published splits): test NLL and epochs run, by patience.
- M1 (``PoissonSpikeRegressor(n_iter_no_change=30)``, shuffled 8-fold or blocked 80/20): mean and median D2.

Usage::

    python benchmarks/patience.py --sets all --splits 5         # naval and protein: their first 2 splits
    python benchmarks/patience.py --m1                          # shuffled 8-fold
    python benchmarks/patience.py --m1 --blocked
    python benchmarks/patience.py --sets concrete energy yacht kin8nm --lr 1e-2
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from skorch.callbacks import Callback

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor
from sklearn_costs.datasets import load_stevenson_m1, load_uci
from sklearn_costs.metrics import poisson_d2_per_target

SETS = ["concrete", "energy", "yacht", "kin8nm", "naval", "protein"]
LARGE_SET_SPLITS = {"naval": 2, "protein": 2}


class EpochWeights(Callback):
    """Keeps a copy of the module's weights at the end of every epoch."""

    def initialize(self):
        self.states = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states.append({k: v.detach().clone() for k, v in net.module_.state_dict().items()})


def recording(estimator_class):
    """``estimator_class`` with an :class:`EpochWeights` callback in its net (as ``epoch_weights``)."""

    class Recording(estimator_class):
        def _prepared_net(self, *args, **kwargs):
            net = super()._prepared_net(*args, **kwargs)  # initialized: the callback joins its callbacks_
            self.epoch_weights = EpochWeights().initialize()
            names = [name for name, _ in net.callbacks_]
            # before early stopping, which ends the last epoch by an exception that the later callbacks never see
            at = names.index("early_stopping") if "early_stopping" in names else len(names)
            net.callbacks_.insert(at, ("epoch_weights", self.epoch_weights))
            return net

    Recording.__name__ = estimator_class.__name__
    return Recording


def replay(valid_loss, patience, threshold=1e-4):
    """(index of the epoch early stopping restores, epochs run) for ``patience``, as skorch's ``EarlyStopping``
    (relative threshold 1e-4: ``best - 1e-4 * best``) decides on these validation losses."""
    best, best_at, waited = np.inf, 0, 0
    for i, value in enumerate(valid_loss):
        if not np.isfinite(best) or value < best - threshold * best:  # skorch's rule, negative losses included
            best, best_at, waited = value, i, 0
        else:
            waited += 1
            if waited >= patience:
                return best_at, i + 1
    return best_at, len(valid_loss)


def scored_by_patience(model, patiences, score):
    """``[(patience, score of the restored epoch, epochs run)]`` for a fitted recording model."""
    valid = model.history_["valid_loss"].to_numpy()
    rows = []
    for patience in patiences:
        best_at, epochs = replay(valid, patience)
        rows.append((patience, scored_epoch(model, best_at, score), epochs))
    return rows


def scored_epoch(model, index, score):
    """``score`` of a fitted recording model with the weights it recorded after epoch ``index`` (from 0)."""
    model.net_.module_.load_state_dict(model.epoch_weights.states[index])
    return score(model)


def nll_on(model, X, y):
    return -model.score(X, y)


def d2_on(model, X, Y, null):
    per_neuron = poisson_d2_per_target(Y, model.predict(X), y_null=null)
    per_neuron[Y.sum(0) == 0] = np.nan  # undefined for a neuron silent in the test fold
    return per_neuron


def uci(sets, splits, patiences, lr=3e-3):
    rows = []
    for name in sets:
        data = load_uci(name)
        for k, (train, test) in enumerate(data.splits[: min(splits, LARGE_SET_SPLITS.get(name, splits))]):
            model = recording(GaussianUncertaintyRegressor)(lr=lr, random_state=0).fit(data.X[train], data.y[train])
            nll = partial(nll_on, X=data.X[test], y=data.y[test])
            for patience, value, epochs in scored_by_patience(model, patiences, nll):
                rows.append({"set": name, "split": k, "patience": patience, "NLL": value, "epochs": epochs})
            print(pd.DataFrame(rows[-len(patiences):]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows).groupby(["set", "patience"])[["NLL", "epochs"]].mean().unstack("patience")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    return table


def m1(blocked, patiences):
    data = load_stevenson_m1()
    X, Y = data.kinematics.to_numpy(), data.counts.to_numpy()
    cut = int(0.8 * len(X))
    folds = ([(np.arange(cut), np.arange(cut, len(X)))] if blocked
             else list(KFold(8, shuffle=True, random_state=42).split(X)))
    d2 = {p: [] for p in patiences}
    for train, test in folds:
        model = recording(PoissonSpikeRegressor)(n_iter_no_change=max(patiences), random_state=0)
        model.fit(X[train], Y[train])
        score = partial(d2_on, X=X[test], Y=Y[test], null=Y[train].mean(0))
        for patience, per_neuron, _ in scored_by_patience(model, patiences, score):
            d2[patience].append(per_neuron)
    for patience in patiences:
        per_neuron = np.nanmean(np.array(d2[patience]), 0)
        print(f"patience {patience}: mean D2 {np.nanmean(per_neuron):.4f}, median {np.nanmedian(per_neuron):.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=SETS, help="UCI sets, or 'all'")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--m1", action="store_true", help="the spike regressor on M1 instead of the UCI sets")
    parser.add_argument("--blocked", action="store_true", help="with --m1: one 80/20 split in time")
    parser.add_argument("--lr", type=float, default=3e-3, help="the Gaussian regressor's learning rate")
    args = parser.parse_args(argv)
    if args.m1:
        m1(args.blocked, [5, 10, 15, 20, 25, 30])
    else:
        uci(SETS if args.sets == ["all"] else args.sets, args.splits, [5, 10, 15, 20, 30, 50], args.lr)


if __name__ == "__main__":
    main()
