"""The TripletEmbedder CNN's training step in the two memory layouts of its feature maps: channels first (NCHW,
PyTorch's default) and channels last (NHWC, :class:`~sklearn_costs.modules.SmallCNN`'s default since issue 32).

Per configuration (width, members, image side, batch), the mean time of a training step (forward, backward and
an Adam step of a squared-norm loss, on random images) in each layout, after 3 steps not timed, and the largest
difference between the two layouts' outputs for the same weights and images. Then one fit of the default
``TripletEmbedder`` on 4 Omniglot alphabets (2,500 drawings, 105x105, ``max_epochs`` 3 without early stopping)
in each layout, with its seconds.

Usage::

    python benchmarks/cnn_layout.py                 # one PyTorch thread, as under recipe.py
    python benchmarks/cnn_layout.py --threads 2 --steps 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sklearn_costs.modules import SmallCNN

#: (width, members, side, batch): the defaults on Omniglot's folds (2 members at 24x24), on all 4,840 drawings (1),
#: width 32 with one member, and the digits' (5 members at 16x16, batches of 28 images of 7 digits, or 128).
CONFIGS = ((16, 2, 24, 128), (16, 1, 24, 128), (32, 1, 24, 128), (16, 5, 16, 28), (16, 5, 16, 128))


def step_seconds(width, members, side, batch, channels_last, steps):
    torch.manual_seed(0)
    net = SmallCNN(1, 64, width=width, blocks=2, members=members, channels_last=channels_last)
    x = torch.randn(batch, members, side, side)
    optimizer = torch.optim.Adam(net.parameters())
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        optimizer.zero_grad()
        net(x).pow(2).sum().backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def largest_difference(width, members, side):
    torch.manual_seed(0)
    first = SmallCNN(1, 64, width=width, blocks=2, members=members, channels_last=False).eval()
    last = SmallCNN(1, 64, width=width, blocks=2, members=members, channels_last=True).eval()
    last.load_state_dict(first.state_dict())
    x = torch.randn(32, members, side, side)
    with torch.no_grad():
        return float((first(x) - last(x)).abs().max())


def omniglot_fit_seconds(channels_last):
    from functools import partial
    from unittest import mock

    from sklearn_costs import TripletEmbedder, triplet
    from sklearn_costs.datasets import load_omniglot

    data = load_omniglot(alphabets=["Korean", "Latin", "Sanskrit", "Tagalog"])
    model = TripletEmbedder(max_epochs=3, early_stopping=False, random_state=0)
    with mock.patch.object(triplet, "SmallCNN", partial(SmallCNN, channels_last=channels_last)):
        start = time.perf_counter()
        model.fit(data.images.astype(np.float32), data.target)
        return time.perf_counter() - start, model.n_members_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip-fit", action="store_true", help="only the step table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, {args.threads} thread(s), {args.steps} steps timed per row")
    print("| width | members | side | batch | ms/step NCHW | ms/step NHWC | NCHW / NHWC | largest output difference |")
    print("|---|---|---|---|---|---|---|---|")
    for width, members, side, batch in CONFIGS:
        first, last = (step_seconds(width, members, side, batch, layout, args.steps) for layout in (False, True))
        print(f"| {width} | {members} | {side} | {batch} | {1000 * first:.1f} | {1000 * last:.1f} | "
              f"{first / last:.2f} | {largest_difference(width, members, side):.1e} |", flush=True)
    if not args.skip_fit:
        for layout in (False, True):
            seconds, members = omniglot_fit_seconds(layout)
            print(f"TripletEmbedder(max_epochs=3) on 2,500 Omniglot drawings, {members} members, "
                  f"{'NHWC' if layout else 'NCHW'}: {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
