"""Sphinx configuration of the sklearn-costs documentation."""

import sklearn_costs

project = "sklearn-costs"
author = "sklearn-costs developers"
release = sklearn_costs.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_default_options = {}
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = "sklearn-costs"
nitpicky = False
