"""Root pytest configuration: what the doctests of the package need."""

from sklearn_costs.datasets import DataNotFoundError, data_home

try:
    data_home()
except DataNotFoundError:
    # The loaders' examples read the real data sets; in a checkout without them they are not collected. CI has
    # the data, so there they run.
    collect_ignore = ["sklearn_costs/datasets/real.py"]
