"""Real-data benchmark of GaussianUncertaintyRegressor: the UCI regression sets of the predictive-uncertainty
literature (Hernandez-Lobato and Adams 2015), their published 90/10 splits, test NLL and RMSE in original units.

Side by side in one run, on the same splits:
- ``GaussianUncertaintyRegressor()`` as a user gets it (only ``random_state`` set): its ``"auto"`` settings
  resolved from the data (five members side by side, predicting their mixture with a Bayesian linear regression
  weighted by the held-out rows, on these sets), and the same without the linear part (``linear_weight=0``),
- one network (``n_members=1``), and with ``--members-sweep`` also 2 and 3 members (the choice of the
  ``n_members`` rule), and with ``--ensemble`` DeepEnsembleRegressor of 5 separate networks,
- a homoscedastic MLP (the same network trained by least squares, one constant std from the training residuals),
- NGBoost (Duan et al. 2020; ``pip install ngboost``), default settings, Normal distribution,
- with ``--rows N`` (the first N training rows of each split: small tables) also a linear Gaussian
  (``BayesianRidge`` after ``StandardScaler``) and the defaults without input clipping (``clip_inputs=False``).

Every hyper-parameter choice uses the training split only (early stopping on an inner random 10%).

Usage::

    python benchmarks/uncertainty.py                          # energy, yacht, concrete, kin8nm; 20 splits
    python benchmarks/uncertainty.py --sets yacht --splits 5
    python benchmarks/uncertainty.py --sets all --ensemble
    python benchmarks/uncertainty.py --sets all --splits 5 --members-sweep   # naval and protein: their first 2
    python benchmarks/uncertainty.py --sets all --splits 3 --rows 50 --no-ngboost
    python benchmarks/uncertainty.py --claims          # the claims that were unit tests (CLAIMS), about 30 s

``--claims`` runs the comparisons that tests/test_real_data.py asserted until they moved here (issue 30: a result
that only a long fit can show is a benchmark, not a unit test), each with the test's set, split, rows, estimators,
one PyTorch thread and margin, and says whether each still holds (exit code 1 if one does not).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import norm

from sklearn_costs import DeepEnsembleRegressor, GaussianUncertaintyRegressor
from sklearn_costs.datasets import load_uci

PUBLISHED_BEST_NLL = {"concrete": 2.93, "energy": 0.60, "yacht": 0.20, "kin8nm": -1.20, "naval": -5.63,
                      "protein": 2.81}
FAST_SETS = ["energy", "yacht", "concrete", "kin8nm"]


#: The first splits of the two large sets (as the published tables do, fewer of them).
LARGE_SET_SPLITS = {"naval": 2, "protein": 2}


def fit_defaults(X_train, y_train):
    return GaussianUncertaintyRegressor(random_state=0).fit(X_train, y_train)


def fit_networks_alone(X_train, y_train):
    return GaussianUncertaintyRegressor(linear_weight=0, random_state=0).fit(X_train, y_train)


def fit_unclipped(X_train, y_train):
    return GaussianUncertaintyRegressor(clip_inputs=False, random_state=0).fit(X_train, y_train)


class LinearGaussian:
    """BayesianRidge after StandardScaler: a linear mean with one constant std (and the mean's own uncertainty)."""

    def fit(self, X, y):
        from sklearn.linear_model import BayesianRidge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(StandardScaler(), BayesianRidge()).fit(X, y)
        return self

    def predict(self, X):
        return self.model.predict(X)

    def log_likelihood(self, X, y):
        mean, std = self.model.predict(X, return_std=True)
        return norm.logpdf(y, mean, std)


def fit_network(X_train, y_train, loss="gaussian", n_members=1):
    return GaussianUncertaintyRegressor(loss=loss, n_members=n_members, random_state=0).fit(X_train, y_train)


def fit_ensemble(X_train, y_train):
    return DeepEnsembleRegressor(GaussianUncertaintyRegressor(n_members=1), n_estimators=5,
                                 random_state=0).fit(X_train, y_train)


class NGBoostGaussian:
    """NGBoost's Normal regressor behind the two calls the benchmark makes."""

    def fit(self, X, y):
        from ngboost import NGBRegressor

        self.model = NGBRegressor(verbose=False, random_state=0).fit(X, y)
        return self

    def predict(self, X):
        return self.model.predict(X)

    def log_likelihood(self, X, y):
        dist = self.model.pred_dist(X)
        return norm.logpdf(y, dist.params["loc"], dist.params["scale"])


# --------------------------------------------------------------------------------------------- the former tests


def _bayesian_ridge_nll(X_train, y_train, X_test, y_test):
    """The test NLL of ``BayesianRidge`` on the raw inputs, as tests/test_real_data.py computes it."""
    from sklearn.linear_model import BayesianRidge

    mean, std = BayesianRidge().fit(X_train, y_train).predict(X_test, return_std=True)
    return -norm.logpdf(y_test, mean, std).mean()


def claim_naval_defaults():
    """``GaussianUncertaintyRegressor()`` on the first 10,000 training rows of naval's split 0: five (64, 64)
    members, a thousand held-out rows put less than 0.01 on the linear part, and the test NLL is more than 0.1
    below ``BayesianRidge``'s."""
    data = load_uci("naval")
    train, test = data.splits[0]
    train = train[:10_000]
    start = time.perf_counter()
    model = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    seconds = time.perf_counter() - start
    nll = -model.score(data.X[test], data.y[test])
    linear = _bayesian_ridge_nll(data.X[train], data.y[train], data.X[test], data.y[test])
    settings = (model.hidden_layer_sizes_, model.n_members_)
    holds = bool(settings == ((64, 64), 5) and model.linear_weight_ < 0.01 and nll < linear - 0.1)
    return {"claim": "naval, 10,000 rows: defaults against BayesianRidge",
            "former test": "test_real_data.py::test_default_regressor_on_a_10000_and_a_50_row_table_beats_a_linear_"
                           "gaussian[naval-10000-5]",
            "NLL": nll, "baseline NLL": linear, "lead": linear - nll, "required lead": 0.1,
            "settings": f"hidden_layer_sizes_ {settings[0]}, n_members_ {settings[1]}, linear_weight_ "
                        f"{model.linear_weight_:.4f} (< 0.01)",
            "holds": holds, "epochs": model.n_iter_, "fit s": seconds}


def claim_yacht_heteroscedastic():
    """Yacht's split 0 (277 training rows): the defaults' Gaussian against the same estimator trained by least
    squares with one constant std (``loss="mse"``), on the test NLL."""
    data = load_uci("yacht")
    train, test = data.splits[0]
    start = time.perf_counter()
    hetero = GaussianUncertaintyRegressor(random_state=0).fit(data.X[train], data.y[train])
    seconds = time.perf_counter() - start
    homo = GaussianUncertaintyRegressor("mse", random_state=0).fit(data.X[train], data.y[train])
    nll, baseline = -hetero.score(data.X[test], data.y[test]), -homo.score(data.X[test], data.y[test])
    return {"claim": "yacht, split 0: defaults (gaussian) against loss='mse'",
            "former test": "test_real_data.py::test_uncertainty_on_a_uci_split_beats_the_constant_std_baseline",
            "NLL": nll, "baseline NLL": baseline, "lead": baseline - nll, "required lead": 0.0, "settings": "",
            "holds": bool(nll < baseline), "epochs": hetero.n_iter_, "fit s": seconds}


#: name -> the comparison a former unit test asserted (its set, split, estimators and margin).
CLAIMS = {"naval-defaults": claim_naval_defaults, "yacht-heteroscedastic": claim_yacht_heteroscedastic}


def run_claims(names):
    """Each claim's row as a table (one PyTorch thread, as under the test suite's pytest-xdist workers)."""
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in names:
        rows.append(CLAIMS[name]())
        print(f"{rows[-1]['claim']}: NLL {rows[-1]['NLL']:.3f}, baseline {rows[-1]['baseline NLL']:.3f}, "
              f"{'holds' if rows[-1]['holds'] else 'FAILS'}", flush=True)
    frame = pd.DataFrame(rows)
    print("\n" + frame.drop(columns=["former test"]).set_index("claim").to_string(float_format=lambda v: f"{v:.3f}"))
    print("\n".join(f"- {test}" for test in frame["former test"]))
    print("every claim holds" if frame["holds"].all() else f"FAILED: {', '.join(frame.loc[~frame['holds'], 'claim'])}")
    return frame


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=FAST_SETS, help="UCI sets, or 'all'")
    parser.add_argument("--splits", type=int, default=20, help="how many of the published splits to run")
    parser.add_argument("--ensemble", action="store_true", help="also a deep ensemble of 5 separate networks")
    parser.add_argument("--members-sweep", action="store_true", help="also 2 and 3 members side by side")
    parser.add_argument("--no-ngboost", action="store_true", help="skip NGBoost")
    parser.add_argument("--methods", nargs="*", default=None, help="only these methods (by name)")
    parser.add_argument("--rows", type=int, default=None, help="train on the first ROWS rows of each training split")
    parser.add_argument("--claims", nargs="*", default=None, choices=list(CLAIMS), metavar="CLAIM",
                        help=f"only the claims that were unit tests (all, or some of {list(CLAIMS)})")
    args = parser.parse_args(argv)
    if args.claims is not None:
        frame = run_claims(args.claims or list(CLAIMS))
        if not frame["holds"].all():
            sys.exit(1)
        return frame
    sets = list(PUBLISHED_BEST_NLL) if args.sets == ["all"] else args.sets

    methods = {
        "GaussianUncertaintyRegressor() defaults": fit_defaults,
        "defaults, linear_weight=0": fit_networks_alone,
        "one network (n_members=1)": fit_network,
    }
    if args.members_sweep:
        methods["n_members=2"] = lambda X, y: fit_network(X, y, n_members=2)
        methods["n_members=3"] = lambda X, y: fit_network(X, y, n_members=3)
    methods["homoscedastic MLP (mse, n_members=1)"] = lambda X, y: fit_network(X, y, loss="mse")
    if args.rows is not None:
        methods["defaults, clip_inputs=False"] = fit_unclipped
        methods["BayesianRidge"] = lambda X, y: LinearGaussian().fit(X, y)
    if args.ensemble:
        methods["DeepEnsembleRegressor, 5 networks"] = fit_ensemble
    if not args.no_ngboost:
        methods["NGBoost"] = lambda X, y: NGBoostGaussian().fit(X, y)

    if args.methods is not None:
        unknown = sorted(set(args.methods) - set(methods))
        if unknown:
            parser.error(f"unknown methods {unknown}; choose among {list(methods)}")
        methods = {name: methods[name] for name in args.methods}
    rows = []
    for name in sets:
        data = load_uci(name)
        cap = LARGE_SET_SPLITS.get(name, args.splits) if args.rows is None else args.splits  # small tables: cheap
        splits = data.splits[: min(args.splits, cap)]
        for method, fit in methods.items():
            nll, rmse, seconds, linear_weights = [], [], [], []
            for train, test in splits:
                train = train[: args.rows]
                start = time.perf_counter()
                model = fit(data.X[train], data.y[train])
                seconds.append(time.perf_counter() - start)
                linear_weights.append(getattr(model, "linear_weight_", np.nan))
                X, y = data.X[test], data.y[test]
                nll.append(-np.mean(model.log_likelihood(X, y)))
                rmse.append(np.sqrt(np.mean((model.predict(X) - y) ** 2)))
            se = lambda v: np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan  # noqa: E731
            rows.append({"set": name, "method": method, "splits": len(splits), "NLL": np.mean(nll),
                         "NLL se": se(nll),
                         "RMSE": np.mean(rmse), "RMSE se": se(rmse), "fit s/split": np.mean(seconds),
                         "linear weight": np.mean(linear_weights),
                         "published best NLL": PUBLISHED_BEST_NLL[name]})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    table = pd.DataFrame(rows).set_index(["set", "method"])
    rows_note = f", the first {args.rows} training rows" if args.rows is not None else ""
    print(f"\n{args.splits} splits per set (naval and protein: at most 2){rows_note}\n"
          + table.to_string(float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
