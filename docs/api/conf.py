"""Sphinx configuration of fastopt's API reference.

Build (from the repository root, with fastopt, torch, sphinx and numpydoc installed):

    python -m sphinx -W --keep-going -b html docs/api build/api-docs

The pages are generated from the docstrings of the *installed* package
(autodoc imports it), which numpydoc parses: the docstrings are NumPy-style.
"""
import fastopt

project = "fastopt"
author = "The fastopt developers"
copyright = "the fastopt developers"
release = version = fastopt.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc"]

# Types come from the docstrings' Parameters / Returns sections (numpydoc);
# the annotations, which type checkers read, would repeat them in long form.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
# numpydoc: one entry per documented member, no autosummary tables of inherited ones.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"fastopt {release}"
exclude_patterns = ["_build"]
