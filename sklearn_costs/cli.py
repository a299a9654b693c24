"""The ``sklearn-costs`` command: ``losses`` lists the registry, ``demo`` runs the vignettes."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from .losses import LossPluginWarning, available_losses


def _losses(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossPluginWarning)
        infos = available_losses(task=args.task, include_broken=True)
    rows = [(i.name, i.task or "?", i.source, "" if i.error is None else f"failed to load: {i.error}") for i in infos]
    widths = [max(len(r[k]) for r in rows + [("name", "task", "distribution", "")]) for k in range(3)]
    print(f"{'name':<{widths[0]}}  {'task':<{widths[1]}}  {'distribution':<{widths[2]}}")
    for name, task, source, note in rows:
        print(f"{name:<{widths[0]}}  {task:<{widths[1]}}  {source:<{widths[2]}}  {note}".rstrip())
    for w in caught:
        if issubclass(w.category, LossPluginWarning) and "could not be loaded" not in str(w.message):
            print(f"warning: {w.message}", file=sys.stderr)
    return 0


def _demo(args) -> int:
    from . import demos

    chosen = args.which or list(demos.DEMOS)
    unknown = [n for n in chosen if n not in demos.DEMOS]
    if unknown:  # refused before anything is written: no empty output folder is left behind
        print(f"unknown demo(s) {unknown}; choose from {list(demos.DEMOS)}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    for name in chosen:
        print(f"\n=== demo: {name} ({args.size}) " + "=" * (57 - len(name) - len(args.size)))
        start = time.perf_counter()
        demos.DEMOS[name](out, size=args.size)
        print(f"--- {name} finished in {time.perf_counter() - start:.1f} s")
    print(f"\nFigures written to {out.resolve()}; all demos in {time.perf_counter() - begin:.1f} s")
    return 0


def main(argv=None) -> int:
    from . import __version__, demos

    parser = argparse.ArgumentParser(prog="sklearn-costs", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_losses = sub.add_parser("losses", help="list every registered loss with its task and distribution")
    p_losses.add_argument("--task", choices=["counts", "continuous", "embedding"])
    p_losses.set_defaults(func=_losses)
    p_demo = sub.add_parser("demo", help="run the vignettes on their embedded data and save figures")
    p_demo.add_argument("which", nargs="*", help=f"demos to run, of {', '.join(demos.DEMOS)} (default: all)")
    p_demo.add_argument("--output", default="sklearn-costs-demo", help="folder for figures")
    size = p_demo.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="tiny data and few epochs: a few seconds each (the test suite's end-to-end check)")
    size.add_argument("--full", dest="size", action="store_const", const="full",
                      help="more data, folds and epochs than the default: the longer versions (several minutes)")
    p_demo.set_defaults(func=_demo, size="default")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
