"""Speed of binning spike times: ``bin_spikes`` on a pynapple TsGroup of 10 million spikes into 1 ms bins,
against pynapple's own ``TsGroup.count``, in a fresh process (the first call pays for touching new memory).

Usage::

    python benchmarks/binning.py                       # 100 units x 100,000 spikes over 1,000 s
    python benchmarks/binning.py --units 300 --spikes-per-unit 33000
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    import pynapple as nap

    from sklearn_costs.preprocessing import bin_spikes

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--spikes-per-unit", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=1000.0, help="seconds")
    parser.add_argument("--bin-width", type=float, default=0.001, help="seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    group = nap.TsGroup({k: nap.Ts(np.sort(rng.uniform(0, args.duration, args.spikes_per_unit)))
                         for k in range(args.units)}, time_support=nap.IntervalSet(0, args.duration))
    print(f"{args.units * args.spikes_per_unit:,} spikes of {args.units} units over {args.duration:g} s, "
          f"bins of {args.bin_width * 1000:g} ms")
    for k in range(args.repeats):
        start = time.perf_counter()
        counts = bin_spikes(group, bin_width=args.bin_width)
        seconds = time.perf_counter() - start
        print(f"bin_spikes, call {k + 1}: {seconds:.2f} s -> {counts.shape} {counts.dtypes.iloc[0]}")
    start = time.perf_counter()
    reference = group.count(args.bin_width)
    print(f"pynapple TsGroup.count: {time.perf_counter() - start:.2f} s; same counts: "
          f"{np.array_equal(np.asarray(reference), counts.to_numpy()[: len(reference)])}")


if __name__ == "__main__":
    main()
