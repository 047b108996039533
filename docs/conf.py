"""Sphinx configuration for the softmax-core documentation.

Design: the site is built offline (no intersphinx, no remote assets at build
time) with warnings as errors (``docs/build.sh``).  The API reference comes
from the numpydoc docstrings through autosummary (one generated page per
public object); numpydoc validation turns a missing or unknown parameter into
a warning, ``_ext/docstring_checks.py`` adds the checks numpydoc lacks (a
doctested ``Examples`` section on every public object, defaults stated,
``Raises`` sections), and ``nitpicky`` makes every unresolved reference into
this project an error (references to other projects render as plain code,
since intersphinx would need the network).  The gallery
in ``examples/`` is executed by sphinx-gallery at every build, and
``_ext/bench_table.py`` renders the benchmark table of
``benchmarks/README.md`` (and its plot) so the performance page cannot go
stale.  ``_ext/offline_assets.py`` serves MathJax from the built site (the
files of the ``sphinx-mathjax-offline`` package, in the ``[docs]`` extra) and
fails the build if any built page loads a script, stylesheet or other
resource from another host.
"""

import ast
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the in-place build of the package
sys.path.insert(0, str(DOCS / "_ext"))

import softmax_core  # noqa: E402

# -- project -----------------------------------------------------------------
project = "softmax-core"
author = "The softmax-core developers"
copyright = "2026, The softmax-core developers"
release = getattr(softmax_core, "__version__", "0.1.0")
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "docstring_checks",
    "bench_table",
    "offline_assets",
]
templates_path = ["_templates"]
# the gallery sources are read by sphinx-gallery, not by Sphinx
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples"]
default_role = "autolink"
# every cross-reference into this project must resolve; references to other
# projects cannot (no intersphinx offline) and render as plain code
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|sklearn|torch|cupy|jax|dask|threadpoolctl|array_api_strict"
               r"|array_api_compat|matplotlib|pandas)(\..*)?"),
]

# -- autodoc / autosummary ---------------------------------------------------
autosummary_generate = True
# the right-hand table of contents of a class page lists "fit()", not
# "SoftmaxRegression.fit()" (the long names were cut short at 1400 px)
toc_object_entries_show_parents = "hide"
autosummary_imported_members = True
autodoc_typehints = "none"  # types live in the numpydoc Parameters section

# -- maths -------------------------------------------------------------------
# MathJax 3 from the built site (_static/mathjax/, copied there by
# _ext/offline_assets.py), not from a CDN: the pages render without network
mathjax_path = "mathjax/tex-mml-chtml.js"

# -- numpydoc ----------------------------------------------------------------
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks = {
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "GL08",  # no docstring
    "GL10",  # reST directive without "::"
    "SS01",  # no summary line
    "PR01",  # parameter not documented
    "PR02",  # documented parameter that does not exist
    "PR03",  # parameters documented in the wrong order
    "PR04",  # parameter without a type
    "PR07",  # parameter without a description
    "PR10",  # "name: type" instead of "name : type"
    "RT01",  # no Returns section
    "RT03",  # return value without a description
    "YD01",  # generator without a Yields section
    "SA04",  # See Also entry without a description
}
# Examples with doctests, defaults stated in the type line and Raises sections
# are checked by _ext/docstring_checks.py.
numpydoc_validation_exclude = {
    r"\._[^.]*$",  # private names
    r"\.__[a-z_]+__$",  # dunder methods
    # scikit-learn machinery inherited by SoftmaxRegression
    r"\.set_[a-z_]*_request$",
    r"\.get_metadata_routing$",
}

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("softmax_core",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,  # report every broken example, then fail
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    # the sg_execution_times pages load jQuery and DataTables from CDNs; the
    # times are still printed by the build and shown under each example
    "write_computation_times": False,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
# where the site is meant to be served (it is not online yet); the "?" link of
# SoftmaxRegression's HTML representation (_doc_link_template in
# softmax_core/_regression.py) points at generated/<module>.<class>.html here
html_baseurl = "https://softmax-core.readthedocs.io/en/latest/"
html_title = f"softmax-core {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "changelog": []}
html_show_sourcelink = True
html_copy_source = True

# -- benchmark table (see _ext/bench_table.py) --------------------------------
bench_table_source = str(ROOT / "benchmarks" / "README.md")
bench_table_output = "generated/benchmarks"


# -- inherited scikit-learn docstrings ---------------------------------------
# The Methods table of SoftmaxRegression lists the methods it inherits from
# scikit-learn too (get_params, set_params, the set_*_request methods of
# metadata routing).  Their docstrings point into scikit-learn's own site
# (:ref:`User Guide <metadata_routing>`, :term:`meta-estimator`), which cannot
# resolve here: the roles become plain text.
_SKLEARN_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")


def _plain_sklearn_roles(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = _SKLEARN_ROLE.sub(lambda m: m.group(1) or m.group(2), line)


# -- gallery code width ------------------------------------------------------
# A code line wider than this scrolls in the gallery's code boxes (1400 px
# window); the build warns (so -W fails) about any such line in examples/.
# Text is not counted: the module docstring and the "# %%" comment blocks are
# rendered as paragraphs, which wrap.
GALLERY_CODE_WIDTH = 75


def long_code_lines(path, width=GALLERY_CODE_WIDTH):
    """(line number, length) of the code lines of a gallery script wider than width."""
    text = Path(path).read_text()
    tree = ast.parse(text)
    skip = set()
    first = tree.body[0] if tree.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        skip.update(range(first.lineno, first.end_lineno + 1))
    in_text = False
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("# %%"):
            in_text = True
        elif not line.startswith("#"):
            in_text = False
        if in_text:
            skip.add(number)
    return [(n, len(line)) for n, line in enumerate(lines, 1)
            if n not in skip and len(line) > width]


def _check_gallery_width(app):
    from sphinx.util import logging

    logger = logging.getLogger("softmax_core.gallery_width")
    for path in sorted((DOCS / "examples").glob("*.py")):
        for number, length in long_code_lines(path):
            logger.warning(f"{length} characters, more than {GALLERY_CODE_WIDTH}: the "
                           f"line scrolls in the gallery", location=(str(path), number))


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_roles)
    app.connect("builder-inited", _check_gallery_width)
