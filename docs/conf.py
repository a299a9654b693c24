"""Sphinx configuration of the sklearn-costs documentation."""

import os

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
    "sphinx_gallery.gen_gallery",
]
# The example scripts of ../examples run at every build and their figures land in the gallery; the test suite
# runs them too (tests/test_examples.py), so a broken example fails CI before it reaches the docs. CI, which has
# just run them in the tests, executes only the ones whose figures other pages embed: it sets
# SKLEARN_COSTS_GALLERY_EXECUTE to a regular expression of those paths (see .ci/run and CONTRIBUTING.md); the
# others are rendered as code and text, without their figures.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": os.environ.get("SKLEARN_COSTS_GALLERY_EXECUTE", r"/plot_"),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_default_options = {}
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = "sklearn-costs"
nitpicky = False
