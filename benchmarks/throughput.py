"""Speed and memory of the estimators against bare PyTorch loops on the same modules, in one process.

Nine tables, every figure measured in this run:

1. Training and prediction throughput (rows/s) of each estimator at batch sizes 128 / 1024 / 8192, against
   - the same estimator on skorch's default path (a ``DataLoader`` collating rows one by one),
   - a bare PyTorch loop with a ``DataLoader`` over a ``TensorDataset``,
   - a bare PyTorch loop that slices one shuffled tensor,
   - the same slicing loop with PyTorch's own loss (``F.poisson_nll_loss(log_input=True)``,
     ``F.gaussian_nll_loss`` on the softplus std plus the estimator's floor) in place of the package's,
   all training a copy of the estimator's own module (one network: ``n_members=1``) and the same optimizer.
   The embedder runs twice: an MLP on 12 features and a CNN (``module="cnn"``, one member) on 32x32 images, a
   tenth as many rows.
   Prediction: ``estimator.predict`` against the bare module applied to slices without gradients.
2. Scaling of the Poisson fit time with the number of rows (1e4 .. 1e6) and of neurons (10 .. 1000).
3. Spike binning throughput (spikes/s) for 1e7 and 1e8 spikes (NumPy, one core).
4. Training rows/s on the CPU and, where PyTorch finds one, a CUDA GPU (float32 and bfloat16 autocast), for the
   Poisson MLP and the CNN embedder.
5. Peak memory of a fit, measured in a fresh process: the peak resident memory above what the process held
   before ``fit`` (X and y included), as a multiple of the size of X + y.
6. The Poisson loss alone, forward and backward on one batch of counts (microseconds per step): the full NLL
   (with ``log k!``), the training objective (without it), and PyTorch's ``F.poisson_nll_loss``.
7. A large count matrix (``--large ROWS NEURONS FEATURES``, default 500,000 x 1,000 uint8 counts and 20
   covariates, hidden (64, 64), batch 4096, one epoch), each run in a fresh process: the estimator's fit
   (``n_threads="auto"``) against a bare loop (slicing, PyTorch's loss, each batch's counts made float32 as it is
   cut) at 1 and 2 threads; seconds and the whole process's peak resident memory.
8. ``torch.compile`` (``--skip`` everything else and keep ``compile``): the bare slicing loop on the Poisson and
   Gaussian regressors' modules, eager against compiled (``torch.compile(module)``, default mode), rows/s after a
   first epoch that pays the compilation (reported in seconds).
9. A memory-mapped recording (``--memmap ROWS NEURONS FEATURES``, default 5,000,000 x 1,000 uint8 counts, 5 GB,
   and 20 float32 covariates, written to ``--memmap-dir``: ten copies of one simulated 500,000-bin block), one
   epoch of ``PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), batch_size=4096)`` on ``np.load(...,
   mmap_mode="r")``: ``fit`` on the maps and ``partial_fit`` over contiguous chunks, each in a fresh process;
   seconds, the peak of the process's anonymous memory (its own allocations, sampled every 10 ms from
   ``/proc/self/status``) and the peak resident set, which also counts the pages of the mapped file that the
   operating system keeps in its cache and may drop at any time. It runs only with ``--memmap-dir`` (a folder with
   room for the files, deleted afterwards).

Usage::

    python benchmarks/throughput.py                      # everything, about 5 minutes on 2 cores
    python benchmarks/throughput.py --quick              # smaller sizes, for a smoke test
    python benchmarks/throughput.py --threads 1
    python benchmarks/throughput.py --skip throughput scaling binning devices memory loss large compile \
        --memmap-dir /tmp                                # the 5 GB memory-mapped recording alone (table 9)
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sklearn_costs import GaussianUncertaintyRegressor, PoissonSpikeRegressor, TripletEmbedder
from sklearn_costs._training import IdentityBatchLoader, TensorDataset
from sklearn_costs.preprocessing import bin_spikes

N_FEATURES = 12


def count_data(n_rows, n_neurons=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    W = rng.normal(scale=0.3, size=(N_FEATURES, n_neurons))
    Y = rng.poisson(np.exp(-1 + np.tanh(X @ W))).astype(np.float32)
    return X, Y


def continuous_data(n_rows, seed=0):
    X, _ = count_data(n_rows, 1, seed)
    rng = np.random.default_rng(seed + 1)
    y = (np.sin(X[:, 0]) + 0.3 * X[:, 1] + rng.normal(size=n_rows) * (0.1 + 0.2 * np.abs(X[:, 2])))
    return X, y.astype(np.float32)


def identity_data(n_rows, n_identities=200, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_identities, size=n_rows)
    centres = rng.normal(size=(n_identities, N_FEATURES))
    X = (centres[labels] + rng.normal(scale=0.8, size=(n_rows, N_FEATURES))).astype(np.float32)
    return X, labels


def image_identity_data(n_rows, n_identities=200, seed=0):
    """32x32 grey images, a tenth as many as ``n_rows`` (a CNN's step costs far more than an MLP's): each
    identity a random smooth pattern, each image its pattern shifted by a pixel or two plus noise."""
    rng = np.random.default_rng(seed)
    n_images = max(n_rows // 10, 4 * n_identities)
    labels = rng.integers(n_identities, size=n_images)
    coarse = rng.normal(size=(n_identities, 8, 8))
    patterns = np.kron(coarse, np.ones((4, 4)))  # (identities, 32, 32)
    shifts = rng.integers(-2, 3, size=(n_images, 2))
    images = np.stack([np.roll(patterns[k], tuple(shift), axis=(0, 1)) for k, shift in zip(labels, shifts)])
    images = images + rng.normal(scale=0.5, size=images.shape)
    return images[:, None].astype(np.float32), labels


ESTIMATORS = {
    "PoissonSpikeRegressor": (PoissonSpikeRegressor, count_data),
    "GaussianUncertaintyRegressor": (GaussianUncertaintyRegressor, continuous_data),
    "TripletEmbedder": (TripletEmbedder, identity_data),
    "TripletEmbedder (CNN)": (TripletEmbedder, image_identity_data),
}
#: the estimators of table 5 (peak memory at 1e6 rows): not the CNN, whose epoch over 1e5 images would take minutes
MEMORY_ESTIMATORS = ("PoissonSpikeRegressor", "GaussianUncertaintyRegressor", "TripletEmbedder")
#: the estimators whose batches are P identities x K samples (no DataLoader counterpart in skorch's default path)
EMBEDDERS = ("TripletEmbedder", "TripletEmbedder (CNN)")


def torch_poisson_nll(raw, y):
    """PyTorch's Poisson NLL of the log rate, summed over neurons and averaged over rows as the package's is."""
    return F.poisson_nll_loss(raw[..., 0], y, log_input=True, full=False, reduction="sum") / len(y)


def torch_gaussian_nll(raw, y):
    """PyTorch's Gaussian NLL, the std a softplus of the second output plus the estimator's floor (1e-3)."""
    std = F.softplus(raw[..., 1]) + 1e-3
    return F.gaussian_nll_loss(raw[..., 0], y, std**2, full=True, reduction="sum") / len(y)


#: PyTorch's own loss for each regressor's default loss (the embedder's loss has no PyTorch counterpart here).
TORCH_LOSSES = {"PoissonSpikeRegressor": torch_poisson_nll, "GaussianUncertaintyRegressor": torch_gaussian_nll}


def make(name, batch_size, epochs, batching="slices"):
    cls = ESTIMATORS[name][0]
    # the embedders with the triplet loss, as docs/scaling.rst's rows were measured (loss="auto" picks by identities)
    members = {"TripletEmbedder": {"loss": "triplet"},
               "TripletEmbedder (CNN)": {"loss": "triplet", "module": "cnn", "n_members": 1}}.get(
        name, {"n_members": 1})
    model = cls(hidden_layer_sizes=(64, 64), batch_size=batch_size, max_epochs=epochs, early_stopping=False,
                random_state=0, **members)
    model._batching = batching
    return model


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def training_tensors(model, X, y):
    """The tensors the estimator's net trains on: its own target preprocessing, reproduced for the bare loops."""
    y = np.asarray(y)
    if isinstance(model, TripletEmbedder):
        return torch.as_tensor(X), torch.as_tensor(np.unique(y, return_inverse=True)[1])
    y = y.reshape(len(y), -1).astype(np.float32)
    if getattr(model, "y_loc_", None) is not None:
        y = (y - model.y_loc_) / model.y_scale_
    return torch.as_tensor(X), torch.as_tensor(y)


def batch_plan(X, y, batch_size, identities):
    """Row indices of one epoch's batches: random rows, or (for the embedder) its P identities x K images."""
    if identities:
        return IdentityBatchLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)._batches()
    order = torch.randperm(len(X))
    return [order[i : i + batch_size] for i in range(0, len(X), batch_size)]


#: Options of the bare loops' Adam (``--fused-bare``: the fused update the estimators use on PyTorch >= 2.4).
BARE_ADAM = {}


def bare_loop(module, criterion, X, y, batch_size, epochs, loader, identities=False):
    """A hand-written training loop; its batches hold the same rows as the estimator's would."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, **BARE_ADAM)
    module.train()
    dataset = torch.utils.data.TensorDataset(X, y)

    def run():
        for _ in range(epochs):
            plan = batch_plan(X, y, batch_size, identities)
            if loader == "dataloader":
                iterator = torch.utils.data.DataLoader(dataset, batch_sampler=plan)
            else:
                iterator = ((X[rows], y[rows]) for rows in plan)
            for xb, yb in iterator:
                optimizer.zero_grad()
                criterion(module(xb), yb).backward()
                optimizer.step()

    return len(X) * epochs / timed(run)


def bare_predict(module, X, batch_size):
    module.eval()

    def run():
        with torch.no_grad():
            torch.cat([module(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])

    return len(X) / timed(run)


def throughput_table(rows, epochs, batch_sizes, names, repeats=1):
    """Table 1; with ``repeats > 1`` every figure is the median of that many runs, the estimator's and the bare
    loops' runs alternating (so that a slow spell of the machine falls on both), and each ratio the median of the
    runs' ratios."""
    records = []
    for name in names:
        X, y = ESTIMATORS[name][1](rows)
        make(name, 256, 1).fit(X[:2000], y[:2000])  # imports and first-call set-up, outside every timing
        for batch_size in batch_sizes:
            runs = [_throughput_run(name, X, y, batch_size, epochs) for _ in range(repeats)]
            records.append({key: (runs[0][key] if isinstance(runs[0][key], str) or key == "batch"
                                  else float(np.median([run[key] for run in runs]))) for key in runs[0]})
            print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records).set_index(["estimator", "batch"])


def _throughput_run(name, X, y, batch_size, epochs):
    """One run of every figure of table 1 for one estimator and batch size."""
    model = make(name, batch_size, epochs)
    fit = len(X) * epochs / timed(model.fit, X, y)
    skorch_default = np.nan
    if name not in EMBEDDERS:  # the embedder's identity batches have no DataLoader counterpart
        default = make(name, batch_size, epochs, batching="dataloader")
        skorch_default = len(X) * epochs / timed(default.fit, X, y)
    Xt, yt = training_tensors(model, X, y)
    criterion = model.net_.criterion_
    identities = name in EMBEDDERS
    dataloader, slicing = (
        bare_loop(copy.deepcopy(model.net_.module_), criterion, Xt, yt, batch_size, epochs, loader, identities)
        for loader in ("dataloader", "slicing")
    )
    torch_loss = np.nan
    if name in TORCH_LOSSES:
        torch_loss = bare_loop(copy.deepcopy(model.net_.module_), TORCH_LOSSES[name], Xt, yt, batch_size,
                               epochs, "slicing")
    predict_fn = model.transform if name in EMBEDDERS else model.predict
    predict = len(X) / timed(predict_fn, X)
    bare_pred = bare_predict(copy.deepcopy(model.net_.module_), Xt, batch_size)
    return {
        "estimator": name, "batch": batch_size,
        "fit rows/s": fit, "skorch default path": skorch_default,
        "bare DataLoader loop": dataloader, "bare slicing loop": slicing,
        "bare loop, torch's loss": torch_loss,
        "fit vs DataLoader": fit / dataloader, "fit vs slicing": fit / slicing,
        "fit vs torch's loss": fit / torch_loss,
        "predict rows/s": predict, "bare predict": bare_pred, "predict vs bare": predict / bare_pred,
    }


def scaling_table(row_counts, neuron_counts, epochs, batch_size=1024):
    records = []
    for n_rows, n_neurons in [(r, 50) for r in row_counts] + [(100_000, n) for n in neuron_counts if n != 50]:
        X, Y = count_data(n_rows, n_neurons)
        model = PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), batch_size=batch_size, max_epochs=epochs,
                                      early_stopping=False, random_state=0)
        seconds = timed(model.fit, X, Y)
        records.append({"rows": n_rows, "neurons": n_neurons, "fit s": seconds,
                        "us per row per epoch": 1e6 * seconds / (n_rows * epochs)})
        print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def binning_table(spike_counts, n_neurons=100, repeats=3):
    records = []
    for n_spikes in spike_counts:
        rng = np.random.default_rng(0)
        duration = n_spikes / n_neurons / 20.0  # 20 spikes/s per neuron
        spikes = [rng.uniform(0, duration, n_spikes // n_neurons) for _ in range(n_neurons)]
        times = [timed(bin_spikes, spikes, 0.05, 0.0, duration) for _ in range(repeats)]
        records.append({"spikes": n_spikes, "neurons": n_neurons, "bins": int(duration / 0.05),
                        "first call s": times[0], "best s": min(times), "M spikes/s": n_spikes / min(times) / 1e6})
        print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
        del spikes
    return pd.DataFrame(records)


def proc_status(field):
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ``RssAnon``, ...) in bytes: what the probes
    below, each a fresh process, report."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields[field].split()[0]) * 1024


def simulated_recording(n_rows, n_neurons, n_features, seed=0):
    """Covariates (float32, standard normal) and uint8 Poisson counts of rates ``exp(-1.5 + tanh(X @ W))``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    W = rng.normal(scale=0.3, size=(n_features, n_neurons)).astype(np.float32)
    Y = np.empty((n_rows, n_neurons), dtype=np.uint8)
    for start in range(0, n_rows, 20_000):  # in chunks: the rates of all rows at once would be 8 bytes an entry
        rows = slice(start, start + 20_000)
        Y[rows] = np.minimum(rng.poisson(np.exp(-1.5 + np.tanh(X[rows] @ W))), 255)
    return X, Y


MEMORY_PROBE = """
import sys, numpy as np
sys.path.insert(0, {here!r})
from throughput import ESTIMATORS, proc_status
def rss():
    return [proc_status(k) for k in ('VmRSS', 'VmHWM')]
name, n_rows, early = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
cls, data = ESTIMATORS[name]
X, y = data(n_rows)
cls(max_epochs=1).fit(X[:1000], y[:1000])
open('/proc/self/clear_refs', 'w').write('5')  # reset the peak (VmHWM) to the current resident size
before, _ = rss()
cls(hidden_layer_sizes=(64, 64), batch_size=1024, max_epochs=1, early_stopping=early, random_state=0).fit(X, y)
print(X.nbytes + y.nbytes, rss()[1] - before)
"""


def device_table(rows, epochs):
    """Training rows/s of the Poisson MLP and the CNN embedder on the CPU and, where present, a CUDA GPU."""
    devices = [("cpu", "float32")]
    if torch.cuda.is_available():
        devices += [("cuda", "float32"), ("cuda", "bfloat16")]
    X, Y = count_data(rows)
    rng = np.random.default_rng(0)
    images = rng.random((rows // 10, 1, 32, 32), dtype=np.float32)
    ids = rng.integers(100, size=len(images))
    records = []
    for device, precision in devices:
        for name, model, data in [
            ("PoissonSpikeRegressor MLP 12-256-256-50, batch 1024",
             PoissonSpikeRegressor(hidden_layer_sizes=(256, 256), batch_size=1024), (X, Y)),
            # the triplet loss, as the recorded rows had it ("auto" would take multi-similarity for 100 identities)
            ("TripletEmbedder CNN 32x32, batch 128", TripletEmbedder("triplet", batch_size=128), (images, ids)),
        ]:
            model.set_params(max_epochs=epochs, early_stopping=False, random_state=0, device=device,
                             precision=precision)
            model.set_params(max_epochs=1).fit(data[0][:512], data[1][:512])  # CUDA context, kernels: not timed
            model.set_params(max_epochs=epochs)
            seconds = timed(model.fit, *data)
            records.append({"model": name, "device": device, "precision": precision,
                            "fit rows/s": len(data[0]) * epochs / seconds})
            print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    if len(devices) == 1:
        print("no CUDA device on this machine: the GPU rows are left out")
    return pd.DataFrame(records)


LARGE_PROBE = """
import sys, time, numpy as np, torch
sys.path.insert(0, {here!r})
from throughput import proc_status, simulated_recording, torch_poisson_nll
from sklearn_costs import PoissonSpikeRegressor
mode, n_rows, n_neurons, n_features, threads = sys.argv[1], *map(int, sys.argv[2:6])
X, Y = simulated_recording(n_rows, n_neurons, n_features)
model = PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), n_members=1, batch_size=4096, max_epochs=1,
                              n_threads=threads if threads else "auto", random_state=0)
if mode == "estimator":
    model.fit(X[:2000], Y[:2000])  # imports and first-call set-up, outside the timing (as for the bare loop)
    start = time.perf_counter()
    model.fit(X, Y)
else:
    torch.set_num_threads(threads)
    model.fit(X[:2000], Y[:2000])  # the same module, built by the estimator
    module, Xt, Yt = model.net_.module_, torch.from_numpy(X), torch.from_numpy(Y)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    start = time.perf_counter()
    order = torch.randperm(n_rows)
    for i in range(0, n_rows, 4096):
        rows = order[i : i + 4096]
        optimizer.zero_grad()
        torch_poisson_nll(module(Xt[rows]), Yt[rows].float()).backward()
        optimizer.step()
print(X.nbytes + Y.nbytes, time.perf_counter() - start, proc_status('VmHWM'))
"""


MEMMAP_PROBE = """
import sys, threading, time, numpy as np
sys.path.insert(0, {here!r})
from throughput import proc_status
from sklearn_costs import PoissonSpikeRegressor
peak_anon = [0]
def sample():
    while True:
        peak_anon[0] = max(peak_anon[0], proc_status('RssAnon'))
        time.sleep(0.01)
x_path, y_path, mode, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X, Y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
make = lambda: PoissonSpikeRegressor(hidden_layer_sizes=(64, 64), n_members=1, batch_size=4096, max_epochs=1,
                                     random_state=0)
make().fit(np.asarray(X[:2000]), np.asarray(Y[:2000]))  # imports and first-call set-up, outside the figures
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
model = make()
if mode == "fit":
    model.fit(X, Y)
else:
    for begin in range(0, len(X), chunk):
        model.partial_fit(X[begin : begin + chunk], Y[begin : begin + chunk])
seconds = time.perf_counter() - start
time.sleep(0.05)
print(X.nbytes + Y.nbytes, seconds, peak_anon[0], proc_status('VmHWM'))
"""


def write_memmap_recording(folder, n_rows, n_neurons, n_features, block=500_000):
    """``X.npy`` (float32 covariates) and ``Y.npy`` (uint8 counts) in ``folder``: copies of one
    :func:`simulated_recording` of ``block`` bins, written through memory maps."""
    import pathlib

    folder = pathlib.Path(folder)
    Xb, Yb = simulated_recording(min(block, n_rows), n_neurons, n_features)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    Y = np.lib.format.open_memmap(folder / "Y.npy", mode="w+", dtype=np.uint8, shape=(n_rows, n_neurons))
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        X[start:stop], Y[start:stop] = Xb[: stop - start], Yb[: stop - start]
    X.flush()
    Y.flush()
    return folder / "X.npy", folder / "Y.npy"


def memmap_table(n_rows, n_neurons, n_features, folder):
    """Table 9: one epoch on a memory-mapped recording, by ``fit`` and by ``partial_fit`` over chunks."""
    import shutil
    import tempfile

    needed = n_rows * (n_neurons + 4 * n_features)
    if shutil.disk_usage(folder).free < 1.2 * needed:
        print(f"memmap table skipped: {folder} has less than {1.2 * needed / 1e9:.1f} GB free")
        return pd.DataFrame()
    records = []
    here = str(__import__("pathlib").Path(__file__).parent)
    chunk = max(n_rows // 10, 1)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        paths = write_memmap_recording(tmp, n_rows, n_neurons, n_features)
        for mode in ("fit", "partial_fit"):
            out = subprocess.run([sys.executable, "-c", MEMMAP_PROBE.format(here=here), *map(str, paths), mode,
                                  str(chunk)],
                                 capture_output=True, text=True, check=True)
            data_bytes, seconds, anon, hwm = out.stdout.split()[-4:]
            records.append({"run": mode if mode == "fit" else f"partial_fit, chunks of {chunk:,}",
                            "rows": n_rows, "neurons": n_neurons, "X + Y MB": int(data_bytes) / 1e6,
                            "epoch s": float(seconds), "peak anonymous MB": int(anon) / 1e6,
                            "peak RSS MB (with the file's cached pages)": int(hwm) / 1e6})
            print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def compile_table(rows, epochs, batch_sizes):
    records = []
    for name in ("PoissonSpikeRegressor", "GaussianUncertaintyRegressor"):
        X, y = ESTIMATORS[name][1](rows)
        model = make(name, 1024, 1).fit(X[:2000], y[:2000])
        Xt, yt = training_tensors(model, X, y)
        loss = TORCH_LOSSES[name]
        for batch_size in batch_sizes:
            eager = bare_loop(copy.deepcopy(model.net_.module_), loss, Xt, yt, batch_size, epochs, "slicing")
            compiled = torch.compile(copy.deepcopy(model.net_.module_))
            first = timed(bare_loop, compiled, loss, Xt, yt, batch_size, 1, "slicing")  # compiles
            fast = bare_loop(compiled, loss, Xt, yt, batch_size, epochs, "slicing")
            records.append({"estimator": name, "batch": batch_size, "eager rows/s": eager,
                            "compiled rows/s": fast, "compiled / eager": fast / eager,
                            "first epoch s (compiling)": first})
            print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def large_counts_table(n_rows, n_neurons, n_features):
    records = []
    here = str(__import__("pathlib").Path(__file__).parent)
    for mode, threads in [("estimator", 0), ("bare loop", 1), ("bare loop", 2)]:
        out = subprocess.run([sys.executable, "-c", LARGE_PROBE.format(here=here), mode.split()[0], str(n_rows),
                              str(n_neurons), str(n_features), str(threads)], capture_output=True, text=True,
                             check=True)
        data_bytes, seconds, peak = out.stdout.split()[-3:]
        records.append({"run": mode, "threads": threads or "auto", "rows": n_rows, "neurons": n_neurons,
                        "X + Y MB": int(data_bytes) / 1e6, "epoch s": float(seconds),
                        "peak RSS MB": int(peak) / 1e6})
        print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def memory_table(n_rows):
    records = []
    here = str(__import__("pathlib").Path(__file__).parent)
    for name in MEMORY_ESTIMATORS:
        for early in (True, False):
            out = subprocess.run([sys.executable, "-c", MEMORY_PROBE.format(here=here), name, str(n_rows),
                                  "1" if early else "0"], capture_output=True, text=True, check=True)
            data_bytes, extra = map(int, out.stdout.split()[-2:])
            records.append({"estimator": name, "rows": n_rows, "early stopping": early,
                            "X + y MB": data_bytes / 1e6, "peak extra MB": extra / 1e6,
                            "peak extra / (X + y)": extra / data_bytes})
            print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def _loss_steps(loss, raw, y):
    """The Poisson loss of one batch three ways, each a function that computes it."""
    return {
        "full NLL (with log k!)": lambda: loss.nll(loss.link(raw), y).sum(-1).mean(),
        "training objective": lambda: loss(raw, y),
        "F.poisson_nll_loss": lambda: torch_poisson_nll(raw, y),
    }


def _step_us(step, repeats):
    for _ in range(repeats // 20):  # warm-up
        step().backward()
    start = time.perf_counter()
    for _ in range(repeats):
        step().backward()
    return 1e6 * (time.perf_counter() - start) / repeats


def loss_table(shapes, repeats=2000):
    records = []
    loss = PoissonSpikeRegressor()._resolve_loss()
    for rows, neurons in shapes:
        raw = torch.randn(rows, neurons, 1, requires_grad=True)
        y = torch.poisson(torch.ones(rows, neurons))
        record = {"rows": rows, "neurons": neurons}
        for name, step in _loss_steps(loss, raw, y).items():
            record[name + " us"] = _step_us(step, repeats)
        records.append(record)
        print(pd.DataFrame(records[-1:]).to_string(index=False, float_format=_fmt), flush=True)
    return pd.DataFrame(records)


def _fmt(v):
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the throughput table")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[128, 1024, 8192])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per throughput figure")
    parser.add_argument("--estimators", nargs="*", default=list(ESTIMATORS), choices=list(ESTIMATORS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    parser.add_argument("--repeats", type=int, default=1,
                        help="table 1's figures as medians of this many alternating runs (run-to-run noise)")
    parser.add_argument("--fused-bare", action="store_true",
                        help="the throughput table's bare loops' Adam fused too (the estimators' own update on "
                             "PyTorch >= 2.4; the large matrix's bare loop keeps the plain update)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "scaling", "binning", "memory", "devices", "loss", "large",
                                 "compile", "memmap"])
    parser.add_argument("--large", type=int, nargs=3, default=[500_000, 1000, 20],
                        metavar=("ROWS", "NEURONS", "FEATURES"), help="the large count matrix of table 7")
    parser.add_argument("--memmap", type=int, nargs=3, default=[5_000_000, 1000, 20],
                        metavar=("ROWS", "NEURONS", "FEATURES"), help="the memory-mapped recording of table 9")
    parser.add_argument("--memmap-dir", default=None,
                        help="folder for table 9's files (it needs their size free); table 9 runs only with it")
    args = parser.parse_args(argv)
    if args.fused_bare:
        BARE_ADAM["fused"] = True
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    tables = {}
    if "throughput" not in args.skip:
        tables["throughput"] = throughput_table(5_000 if quick else args.rows, 1 if quick else args.epochs,
                                                args.batch_sizes, args.estimators, args.repeats)
    if "scaling" not in args.skip:
        tables["scaling"] = scaling_table([10_000, 30_000] if quick else [10_000, 100_000, 1_000_000],
                                          [10, 100] if quick else [10, 100, 1000], epochs=2)
    if "binning" not in args.skip:
        tables["binning"] = binning_table([10**6] if quick else [10**7, 10**8], repeats=2 if quick else 3)
    if "devices" not in args.skip:
        tables["devices"] = device_table(5_000 if quick else 60_000, 1 if quick else 2)
    if "memory" not in args.skip:
        tables["memory"] = memory_table(20_000 if quick else 1_000_000)
    if "large" not in args.skip:
        tables["large"] = large_counts_table(*([20_000, 100, 8] if quick else args.large))
    if "compile" not in args.skip:
        tables["compile"] = compile_table(5_000 if quick else args.rows, 1 if quick else args.epochs, args.batch_sizes)
    if "memmap" not in args.skip and args.memmap_dir:
        tables["memmap"] = memmap_table(*([50_000, 100, 8] if quick else args.memmap), args.memmap_dir)
    if "loss" not in args.skip:
        tables["loss"] = loss_table([(1024, 50), (1024, 200)], repeats=100 if quick else 2000)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads")
    for title, table in tables.items():
        print(f"\n## {title}\n{table.to_string(float_format=_fmt)}")
    return tables


if __name__ == "__main__":
    main()
