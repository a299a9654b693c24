"""Training throughput of PoissonSpikeRegressor against bare PyTorch loops on the same module.

An MLP 12 -> 64 -> 64 -> 50 with the Poisson loss on simulated counts, every figure measured in this process:
rows per second of one training epoch for
- the estimator (skorch's NeuralNet with the package's in-memory tensor batches),
- a bare PyTorch loop with a torch DataLoader over a TensorDataset,
- a bare PyTorch loop that slices one shuffled tensor.

Usage::

    python benchmarks/throughput.py                  # 60k rows, batch sizes 128, 1024, 8192
    python benchmarks/throughput.py --rows 200000 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch

from sklearn_costs import PoissonSpikeRegressor
from sklearn_costs.losses import PoissonLoss


def data(n_rows, n_features=12, n_neurons=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    W = rng.normal(scale=0.3, size=(n_features, n_neurons))
    Y = rng.poisson(np.exp(-1 + np.tanh(X @ W))).astype(np.float32)
    return X, Y


def estimator_rows_per_s(X, Y, batch_size, epochs):
    model = PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), batch_size=batch_size, max_epochs=epochs,
                                  early_stopping=False, random_state=0)
    start = time.perf_counter()
    model.fit(X, Y)
    return len(X) * epochs / (time.perf_counter() - start), model


def module_like(model):
    """A copy of the estimator's network: the same layers and input standardisation, trained apart."""
    return copy.deepcopy(model.net_.module_)


def bare_loop_rows_per_s(module, X, Y, batch_size, epochs, loader):
    loss = PoissonLoss()
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    if loader == "dataloader":
        batches = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xt, Yt), batch_size=batch_size,
                                              shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        if loader == "dataloader":
            iterator = batches
        else:
            order = torch.randperm(len(Xt))
            Xs, Ys = Xt[order], Yt[order]
            iterator = ((Xs[i : i + batch_size], Ys[i : i + batch_size]) for i in range(0, len(Xs), batch_size))
        for xb, yb in iterator:
            opt.zero_grad()
            value = loss(module(xb), yb)
            value.backward()
            opt.step()
    return len(X) * epochs / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[128, 1024, 8192])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    X, Y = data(args.rows)
    rows = []
    for batch_size in args.batch_sizes:
        ours, model = estimator_rows_per_s(X, Y, batch_size, args.epochs)
        dataloader = bare_loop_rows_per_s(module_like(model), X, Y, batch_size, args.epochs, "dataloader")
        slicing = bare_loop_rows_per_s(module_like(model), X, Y, batch_size, args.epochs, "slicing")
        rows.append({"batch size": batch_size, "estimator rows/s": ours, "DataLoader loop rows/s": dataloader,
                     "slicing loop rows/s": slicing, "vs DataLoader": ours / dataloader, "vs slicing": ours / slicing})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format=lambda v: f"{v:,.2f}"), flush=True)
    table = pd.DataFrame(rows).set_index("batch size")
    print(f"\n{args.rows} rows, MLP 12-64-64-50, Poisson loss, torch threads {torch.get_num_threads()}")
    print(table.to_string(float_format=lambda v: f"{v:,.2f}"))
    return table


if __name__ == "__main__":
    main()
