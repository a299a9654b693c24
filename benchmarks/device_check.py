"""One command for a GPU check: the device tests and the device table, in one markdown file.

Three parts, each run on ``--device`` (default ``cuda``) in this one process:

1. **tests**: ``pytest tests -k "cuda or device or gpu"`` in a subprocess (the CUDA tests, which skip without a
   GPU, and those of the device parameter and of moving models between devices): its summary line and the names
   of the tests that failed.
2. **throughput**: training rows/s of the estimator against a bare PyTorch loop on the same device, in the same
   run: the Poisson MLP 12-256-256-50 at batch 1024 and 8192 and the CNN embedder on 32x32 images at batch 128
   and 1024, each in float32 and bfloat16. The bare loop is ``benchmarks/throughput.py``'s slicing loop on a copy
   of the fitted estimator's own module, loss and optimizer, with its data on the device; in bfloat16 its forward
   pass runs under ``torch.autocast`` as the estimator's does, the loss in float32.
3. **omniglot**: the default ``TripletEmbedder(random_state=0)`` fitted on the 4,840 Omniglot drawings of
   ``shared/data`` (``benchmarks/faces.py``'s loader) on the device: seconds, epochs, images/s.

Usage::

    python benchmarks/device_check.py                         # on a GPU machine: about 4 minutes on one GPU
    python benchmarks/device_check.py --device cpu --quick    # tiny sizes on the CPU, the tests of one module
                                                              # collected: a smoke test of the script
    python benchmarks/device_check.py --skip tests omniglot   # the throughput table alone

It needs the package and PyTorch (with CUDA for the default device), and the Omniglot zips for part 3 (skipped,
saying so, without them). The markdown goes to ``--out`` (default ``device_check.md``) and to stdout.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import bare_loop, count_data, image_identity_data, make, training_tensors  # noqa: E402

from sklearn_costs import TripletEmbedder  # noqa: E402
from sklearn_costs.datasets import DataNotFoundError, load_omniglot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("tests", "throughput", "omniglot")
#: The tests of part 1: the CUDA tests, the device parameter's, and loading GPU models without CUDA.
TEST_SELECTION = "cuda or device or gpu"
#: The one test module whose selected tests the quick mode collects (it holds the CUDA tests).
QUICK_TESTS = "test_base.py"
#: (estimator, batch sizes) of part 2, the names of ``throughput.ESTIMATORS``.
CONFIGS = (("PoissonSpikeRegressor", (1024, 8192)), ("TripletEmbedder (CNN)", (128, 1024)))
PRECISIONS = ("float32", "bfloat16")
#: Part 2's data and epochs: rows of count data (the CNN gets a tenth as many 32x32 images), epochs per figure, and
#: whether an untimed fit first starts the device (CUDA context, kernels); the quick mode's figures are not quoted.
SIZES = {"full": {"rows": 300_000, "epochs": 3, "identities": 200, "warm_up": True},
         "quick": {"rows": 256, "epochs": 1, "identities": 8, "warm_up": False}}


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_on(device, fn, *args):
    """Seconds ``fn(*args)`` takes, including the device work it queued."""
    synchronize(device)
    start = time.perf_counter()
    fn(*args)
    synchronize(device)
    return time.perf_counter() - start


class Autocast(torch.nn.Module):
    """``module`` with its forward pass under ``torch.autocast(dtype)`` and a float32 output, as the estimators
    run ``precision="bfloat16"``."""

    def __init__(self, module, device, dtype):
        super().__init__()
        self.module, self.device_type, self.dtype = module, torch.device(device).type, dtype

    def forward(self, x):
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            return self.module(x).float()


def run_tests(device, quick):
    """Part 1: the selected tests in a subprocess; in quick mode only collected, and from ``QUICK_TESTS`` alone (a
    smoke test of the command: collecting every test module takes 5-10 s). No pytest plugin is loaded: the selected
    tests need none, and loading those installed (Hypothesis's, xdist's) takes 1-2 s."""
    where = "tests/" + QUICK_TESTS if quick else "tests"
    command = [sys.executable, "-m", "pytest", str(ROOT / where), "-k", TEST_SELECTION, "-q", "-p",
               "no:cacheprovider", "-o", "addopts=", "--ignore", str(ROOT / "tests" / "test_device.py")]
    if quick:
        command.append("--collect-only")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    lines = done.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {"command": " ".join(["pytest", where, "-k", repr(TEST_SELECTION), *(["--collect-only"] if quick else [])]),
            "summary": lines[-1] if lines else done.stderr.strip()[-300:], "exit code": done.returncode,
            "failed": failed, "seconds": time.perf_counter() - start}


def throughput_rows(device, sizes):
    """Part 2: one row per (estimator, batch, precision)."""
    data = {"PoissonSpikeRegressor": count_data(sizes["rows"]),
            "TripletEmbedder (CNN)": image_identity_data(sizes["rows"], n_identities=sizes["identities"])}
    rows = []
    for name, batch_sizes in CONFIGS:
        X, y = data[name]
        for batch_size in batch_sizes:
            for precision in PRECISIONS:
                rows.append({"estimator": _label(name), "batch": batch_size, "precision": precision,
                             **_throughput(name, X, y, batch_size, precision, device, sizes["epochs"],
                                           sizes["warm_up"])})
                print(rows[-1], flush=True)
    return rows


def _label(name):
    return "Poisson MLP 12-256-256-50" if name == "PoissonSpikeRegressor" else "CNN embedder 32x32"


def _estimator(name, batch_size, epochs, precision, device):
    model = make(name, batch_size, epochs).set_params(device=device, precision=precision)
    if name == "PoissonSpikeRegressor":
        model.set_params(hidden_layer_sizes=(256, 256))
    return model


def _throughput(name, X, y, batch_size, precision, device, epochs, warm_up=True):
    """The estimator's training rows/s, the bare loop's on a copy of its module, and their ratio."""
    if warm_up:  # CUDA context, kernels: not timed
        _estimator(name, batch_size, 1, precision, device).fit(X[:512], y[:512])
    model = _estimator(name, batch_size, epochs, precision, device)
    fit = len(X) * epochs / timed_on(device, model.fit, X, y)
    Xt, yt = (t.to(device) for t in training_tensors(model, X, y))
    module = copy.deepcopy(model.net_.module_)
    if precision != "float32":
        module = Autocast(module, device, getattr(torch, precision))
    identities = isinstance(model, TripletEmbedder)
    bare = len(Xt) * epochs / timed_on(device, bare_loop, module, model.net_.criterion_, Xt, yt, batch_size, epochs,
                                       "slicing", identities)
    return {"rows": len(X), "epochs": epochs, "fit rows/s": fit, "bare loop rows/s": bare, "fit / bare": fit / bare}


def omniglot_row(device, quick):
    """Part 3: the default embedder's fit on every Omniglot drawing (quick: 5 characters of one alphabet, one
    network, one epoch)."""
    try:
        data = load_omniglot(alphabets=["Tagalog"] if quick else None)
    except DataNotFoundError as exc:
        return {"skipped": f"no Omniglot data: {exc}"}
    images, labels = data.images, data.target
    model = TripletEmbedder(random_state=0, device=device)
    if quick:
        keep = np.isin(labels, np.unique(labels)[:5])
        images, labels = images[keep], labels[keep]
        model.set_params(n_members=1, max_epochs=1)
    images = images.astype(np.float32)  # ink as 1.0, as benchmarks/faces.py gives them
    seconds = timed_on(device, model.fit, images, labels)
    return {"images": len(images), "shape": "x".join(map(str, images.shape[1:])), "fit s": seconds,
            "epochs": model.n_iter_, "images/s": len(images) * model.n_iter_ / seconds,
            "settings": f"input_size_={model.input_size_}, n_members_={model.n_members_}, "
                        f"max_epochs_={model.max_epochs_}"}


def markdown_table(rows):
    """``rows`` (dicts with the same keys) as a markdown table; floats with thousands separators."""
    keys = list(rows[0])

    def cell(value):
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def report(device, quick, parts):
    """The markdown of the check: the machine, then each part that ran."""
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else platform.processor()
    text = [f"# Device check: {device} ({name or 'CPU'}), torch {torch.__version__}"
            f"{', quick mode (tiny sizes: not figures to quote)' if quick else ''}"]
    if "tests" in parts:
        tests = run_tests(device, quick)
        text += [f"\n## Tests\n\n`{tests['command']}`: {tests['summary']} (exit code {tests['exit code']}, "
                 f"{tests['seconds']:.0f} s)", *[f"- {line}" for line in tests["failed"]]]
    if "throughput" in parts:
        text += ["\n## Training throughput, estimator against a bare PyTorch loop on the same device\n",
                 markdown_table(throughput_rows(device, SIZES["quick" if quick else "full"]))]
    if "omniglot" in parts:
        text += ["\n## Default TripletEmbedder on Omniglot\n", markdown_table([omniglot_row(device, quick)])]
    return "\n".join(text) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="'cuda', 'cuda:N' or 'cpu' (default: cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, tests only collected: a smoke test")
    parser.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts to leave out")
    parser.add_argument("--out", default="device_check.md", help="the markdown file written")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: PyTorch finds no CUDA device here (torch {torch.__version__}); "
                     "run it on a GPU machine, or pass --device cpu")
    text = report(args.device, args.quick, [p for p in PARTS if p not in args.skip])
    Path(args.out).write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
