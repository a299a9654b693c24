"""Where and how a network runs: the device, PyTorch's CPU threads, the seeded random streams and the optimizers'
fused updates."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import torch

from ._validation import DEVICE

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "lbfgs": torch.optim.LBFGS,
}

#: Optimizers that run their update as one fused kernel over all the weights (PyTorch >= 2.4 on the CPU, and on
#: CUDA): a small network's update is otherwise a loop of several kernels per weight tensor, a third of a training
#: step at batch 128 (the update of a 12-64-64-50 MLP: 402 against 116 microseconds, one thread; fits 1.2-1.3x
#: faster at batch 128, see docs/scaling.rst).
FUSED_OPTIMIZERS = ("adam", "adamw")


def fused_update_supported() -> bool:
    """Whether this PyTorch runs fused Adam and AdamW updates on the CPU (2.4 and later)."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 4)


def match_fused_update(optimizer, name):
    """Set an Adam or AdamW ``optimizer`` (restored from a model saved elsewhere, or continued by a warm start) to
    the fused update exactly when this PyTorch has it: a saved state carries the ``fused`` flag of the PyTorch that
    saved it, which an older one cannot run."""
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        fused = name in FUSED_OPTIMIZERS and fused_update_supported()
        for group in optimizer.param_groups:
            group["fused"] = fused or None


#: The most rows a step of ``batch_size="auto"`` takes, by device type. On a CPU a step's time grows with its rows,
#: so a small batch buys more updates in the same time. On a GPU the step of these networks costs about the same
#: from hundreds to thousands of rows, because the host's work, not the device's, takes its time (an H200 trained
#: the Poisson MLP 12-256-256-50 at 2.2 ms a step at batch 1,024 and 2.6 ms at 8,192; docs/scaling.rst), so a
#: larger batch cuts the epoch's time in proportion while keeping the 50 steps an epoch that the rule gives.
AUTO_BATCH_CAP = {"cpu": 256, "cuda": 4096}


def auto_batch_size(n_rows: int, device="cpu") -> int:
    """``batch_size="auto"``: ``n_rows // 50`` (about 50 steps an epoch), at least 16 and at most the device's
    :data:`AUTO_BATCH_CAP` (256 on a CPU, 4,096 on a GPU; the two agree up to 12,800 rows)."""
    return int(np.clip(n_rows // 50, 16, AUTO_BATCH_CAP.get(torch.device(device).type, AUTO_BATCH_CAP["cpu"])))


def resolve_device(device) -> str:
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (CUDA when present) to a torch device string.

    Raises ``ValueError`` for CUDA on a machine without it, saying which device to use instead.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not DEVICE.is_satisfied_by(device):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    # "cuda" or "cuda:N"
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for, but PyTorch finds no CUDA device on this machine "
            f"(torch {torch.__version__}). Use device='cpu', or device='auto' to take a GPU only when present."
        )
    index = device.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def as_tensor(array: np.ndarray, device) -> torch.Tensor:
    """The array as a tensor on ``device``, sharing its memory when it can.

    Read-only arrays (pandas' copy-on-write frames, memory maps) are shared too: training and prediction only read
    them, so PyTorch's warning about non-writable arrays would be noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(array, device=device)


#: ``n_threads="auto"``: one PyTorch thread when a training step costs fewer multiply-adds than this (rows of a batch
#: times the network's weights), PyTorch's own thread count above it. Measured on 2 cores: with nothing else
#: running, 5 x (64, 64) networks at batch 16 (4e5) trained 1.8x faster on one thread than on two, at batch 147
#: (3.5e6) alike, and networks of 2e6 to 2e8 multiply-adds 1.3-2.5x faster on two; with another job running, two
#: threads made the batch-147 fit 7x slower (30 s against 4). Below 1e7 one thread loses little alone and wins
#: much when the cores are shared.
THREAD_WORK = 10_000_000


def resolve_threads(n_threads, module: torch.nn.Module, batch_size: int, device: str):
    """The thread count a fit uses: ``n_threads`` unless it is ``"auto"``, which gives 1 for a network whose
    training step is too small to share between threads (``batch_size`` x its weights below ``THREAD_WORK``) and
    None (PyTorch's own setting) otherwise, or on a GPU."""
    if n_threads != "auto":
        return n_threads
    if device != "cpu":
        return None
    weights = sum(p.numel() for p in module.parameters())
    return 1 if batch_size * weights < THREAD_WORK else None


@contextmanager
def torch_threads(n_threads):
    """Run with ``n_threads`` intra-op threads (``None``: leave PyTorch's setting alone)."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed, device):
    """Seed PyTorch's global generators (weights init, dropout) without disturbing the caller's state."""
    devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
