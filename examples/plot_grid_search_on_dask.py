"""
Searching over losses on a Dask cluster
=======================================

A grid search is many independent fits: scikit-learn hands them to joblib, and joblib hands them to a Dask cluster
when asked (``pip install "sklearn-costs[dask]"``). Here the cluster is two worker processes on this machine; with
``Client("scheduler-address:8786")`` the same code runs on many machines. Fitted models are plain pickles, so they
travel back from the workers; ``n_threads=1`` keeps each fit to one core, as many fits share the machine, and
``n_members=1`` to one network.
"""

# %%
import time

import joblib
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_costs import GaussianUncertaintyRegressor
from sklearn_costs.datasets import make_heteroscedastic_regression

data = make_heteroscedastic_regression(1000, random_state=0)
search = GridSearchCV(
    GaussianUncertaintyRegressor(lr=1e-2, batch_size=128, max_epochs=30, n_members=1, n_threads=1, random_state=0),
    {"loss": ["gaussian", "laplace", "student_t", "mse"], "hidden_layer_sizes": [(32,), (64, 64)]},
    cv=KFold(3, shuffle=True, random_state=0),
    n_jobs=-1,
)

# %%
if __name__ == "__main__":  # worker processes re-import the script's module; only the main process searches
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as client:
            print(client)
            start = time.perf_counter()
            with joblib.parallel_backend("dask"):
                search.fit(data.X, data.y)
            print(f"{len(search.cv_results_['params']) * 3} fits in {time.perf_counter() - start:.1f} s")

    results = pd.DataFrame(search.cv_results_)
    results["hidden_layer_sizes"] = results["param_hidden_layer_sizes"].astype(str)
    table = results.pivot(index="param_loss", columns="hidden_layer_sizes", values="mean_test_score")
    print("mean log predictive density (higher is better):")
    print(table.round(3).to_string())
    print("best:", search.best_params_, f"score {search.best_score_:.3f}")
    _, std = search.best_estimator_.predict(data.X.iloc[:3], return_std=True)
    print("predicted std of the first rows:", np.round(std, 3))
