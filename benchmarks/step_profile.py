"""Where a training step's time goes: each estimator against a bare PyTorch loop on the same device, profiled.

For each configuration (the Poisson MLP 12-256-256-50 and the Gaussian MLP 12-64-64 at batch 1024, the CNN
embedder on 32x32 images at batch 128 and 1024, each in float32 and, on CUDA, bfloat16), both the estimator's fit
and ``benchmarks/throughput.py``'s bare slicing loop (a copy of the fitted estimator's own module, loss and Adam
update, the data already on the device) run ``--epochs`` epochs under ``torch.profiler``, after an unprofiled
warm-up. Per training step it reports:

- ``wall ms``: the run's wall time, including the device's work (synchronised at the end);
- ``kernel ms``: the device's kernels and copies, the sum of their durations (CUDA only);
- ``syncs``: the host's waits on the device (``cudaStreamSynchronize``, ``cudaDeviceSynchronize``,
  ``cudaEventSynchronize``, blocking ``cudaMemcpy``);
- ``items``: tensor-to-Python conversions (``aten::_local_scalar_dense``, the op behind ``.item()``), on the
  device (a wait) or on the CPU (Adam's step counter: no wait);
- the Poisson MLP's bare loop also runs with Adam's fused update, the estimators' own (``bare, fused Adam``);
- ``launches``: kernel launches (``cudaLaunchKernel`` and its variants);
- ``casts``: dtype conversions (``aten::_to_copy``), the cost of ``precision="bfloat16"`` on small matrices.

The estimator's figures include its fixed cost (the divergence guard's passes, the standardisation) spread over
its steps, so ``--epochs`` (default 3) should be large enough for the steps to dominate. The top host ops of each
run by self CPU time go to ``--out-dir`` as text (``step_profile_ops.txt``), with the summary table
(``step_profile.md``).

Usage::

    python benchmarks/step_profile.py --device cuda --out-dir prof      # on a GPU machine, about a minute
    python benchmarks/step_profile.py --device cpu --rows 20000          # host time alone, on the CPU
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_check import Autocast, markdown_table, timed_on  # noqa: E402
from throughput import BARE_ADAM, bare_loop, continuous_data, count_data, image_identity_data, make, training_tensors  # noqa: E402

from sklearn_costs import TripletEmbedder  # noqa: E402

#: (label, throughput.ESTIMATORS name, batch size, hidden layers or None)
CONFIGS = (
    ("Poisson MLP 12-256-256-50", "PoissonSpikeRegressor", 1024, (256, 256)),
    ("Gaussian MLP 12-64-64", "GaussianUncertaintyRegressor", 1024, (64, 64)),
    ("CNN embedder 32x32", "TripletEmbedder (CNN)", 128, None),
    ("CNN embedder 32x32", "TripletEmbedder (CNN)", 1024, None),
)
SYNC_NAMES = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")
LAUNCH_PREFIX = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchCooperativeKernel")


def counts(prof):
    """Per-name counts and device time (microseconds) of the profiled events."""
    calls, device_us = {}, 0.0
    for event in prof.key_averages():
        calls[event.key] = calls.get(event.key, 0) + event.count
        if event.device_type != torch.autograd.DeviceType.CPU and not getattr(event, "is_user_annotation", False):
            device_us += event.self_device_time_total  # as the profiler's own "Self CUDA time total" counts it
    return calls, device_us


def summarise(prof, wall, steps):
    calls, device_us = counts(prof)
    syncs = sum(n for name, n in calls.items() if name in SYNC_NAMES)
    launches = sum(n for name, n in calls.items() if name.startswith(LAUNCH_PREFIX))
    return {"steps": steps, "wall ms": 1e3 * wall / steps, "kernel ms": device_us / 1e3 / steps,
            "syncs": syncs / steps, "items": calls.get("aten::_local_scalar_dense", 0) / steps,
            "launches": launches / steps, "casts": calls.get("aten::_to_copy", 0) / steps}


def profiled(device, fn, *args):
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
    with profile(activities=activities) as prof:
        wall = timed_on(device, fn, *args)
    return prof, wall


def data_for(name, rows):
    if name == "PoissonSpikeRegressor":
        return count_data(rows)
    if name == "GaussianUncertaintyRegressor":
        return continuous_data(rows)
    return image_identity_data(rows // 10, n_identities=200)


def run_config(label, name, batch_size, hidden, precision, device, rows, epochs, out_dir, fused_bare=True):
    X, y = data_for(name, rows)

    def estimator(n_epochs):
        model = make(name, batch_size, n_epochs).set_params(device=device, precision=precision)
        return model.set_params(hidden_layer_sizes=hidden) if hidden else model

    estimator(1).fit(X[:2048], y[:2048])  # CUDA context, kernels, allocator: not profiled
    model = estimator(epochs)
    prof, wall = profiled(device, model.fit, X, y)
    steps = int(sum(model.net_.history[:, "train_batch_count"]))
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    rows_out = [{"model": label, "batch": batch_size, "precision": precision, "run": "estimator",
                 **summarise(prof, wall, steps)}]

    Xt, yt = (t.to(device) for t in training_tensors(model, X, y))
    module = copy.deepcopy(model.net_.module_)
    if precision != "float32":
        module = Autocast(module, device, getattr(torch, precision))
    identities = isinstance(model, TripletEmbedder)
    bare_loop(module, model.net_.criterion_, Xt[:2048], yt[:2048], batch_size, 1, "slicing", identities)  # warm
    prof_bare, wall_bare = profiled(device, bare_loop, module, model.net_.criterion_, Xt, yt, batch_size, epochs,
                                    "slicing", identities)
    bare_steps = epochs * -(-len(Xt) // batch_size) if not identities else steps
    rows_out.append({"model": label, "batch": batch_size, "precision": precision, "run": "bare loop",
                     **summarise(prof_bare, wall_bare, bare_steps)})
    if out_dir is not None:
        bare_table = prof_bare.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
        with open(out_dir / "step_profile_ops.txt", "a") as ops:
            ops.write(f"# {label}, batch {batch_size}, {precision}, {device}\n\n"
                      f"## estimator\n{table}\n\n## bare loop\n{bare_table}\n\n")
    if fused_bare and name == "PoissonSpikeRegressor":
        BARE_ADAM["fused"] = True  # the estimators' own update: the bare loop with it, for the update's host cost
        try:
            module = copy.deepcopy(model.net_.module_)
            prof_fused, wall_fused = profiled(device, bare_loop, module, model.net_.criterion_, Xt, yt, batch_size,
                                              epochs, "slicing", identities)
        finally:
            BARE_ADAM.pop("fused")
        rows_out.append({"model": label, "batch": batch_size, "precision": precision, "run": "bare, fused Adam",
                         **summarise(prof_fused, wall_fused, bare_steps)})
    for row in rows_out:
        print(row, flush=True)
    return rows_out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=60_000, help="rows of count data (images: a tenth)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precisions", nargs="*", default=None, help="default: float32, and bfloat16 on CUDA")
    parser.add_argument("--models", nargs="*", default=None, help="only the configurations of these labels")
    parser.add_argument("--out-dir", default=None, help="folder for the per-run op tables and step_profile.md")
    args = parser.parse_args(argv)
    cuda = torch.device(args.device).type == "cuda"
    precisions = args.precisions or (["float32", "bfloat16"] if cuda else ["float32"])
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name, batch_size, hidden in CONFIGS:
        if args.models and label not in args.models:
            continue
        for precision in precisions:
            if precision != "float32" and name != "TripletEmbedder (CNN)" and batch_size < 1024:
                continue
            rows += run_config(label, name, batch_size, hidden, precision, args.device, args.rows, args.epochs,
                               out_dir)
    name = torch.cuda.get_device_name(args.device) if cuda else "CPU"
    text = (f"# Step profile on {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads, {args.rows} rows, {args.epochs} epochs\n\n{markdown_table(rows)}\n")
    if out_dir is not None:
        (out_dir / "step_profile.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
