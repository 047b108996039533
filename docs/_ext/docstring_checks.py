"""Docstring checks that numpydoc validation does not have.

Design: numpydoc (``numpydoc_validation_checks`` in ``conf.py``) already
fails the build on undocumented, unknown or untyped parameters and on a
missing Returns section.  The project also promises, for every object in
``softmax_core.__all__``:

* ``EX`` - an ``Examples`` section that holds at least one doctest (``>>>``),
  also on the public methods of public classes;
* ``DF`` - every parameter with a default says so in its type line
  (``float, default=0.1`` or ``..., optional``);
* ``RS`` - a ``Raises`` section on functions that take parameters (they
  validate their input).

Each broken promise is a Sphinx warning, so ``sphinx-build -W`` fails.  The
check reads the raw docstring (it runs before numpydoc rewrites it) and is
applied once per object, to the objects that autodoc documents.
"""

import importlib
import inspect

from numpydoc.docscrape import FunctionDoc
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _public_names(package):
    module = importlib.import_module(package)
    return {f"{package}.{name}" for name in getattr(module, "__all__", ())}


def _param_defaults(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind is not inspect.Parameter.VAR_KEYWORD}


def _has_parameters(obj):
    try:
        return bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return False


def problems(obj, kind):
    """Return the list of broken promises of ``obj``'s docstring."""
    doc = FunctionDoc(obj, doc=inspect.getdoc(obj) or "", config={})
    found = []
    examples = "\n".join(doc["Examples"])
    if ">>>" not in examples:
        found.append("EX: no Examples section with a doctest (>>>)")
    if kind in ("function", "method") and _has_parameters(obj) and not doc["Raises"]:
        found.append("RS: no Raises section")
    types = {p.name.strip(): p.type for p in doc["Parameters"]}
    for name in _param_defaults(obj):
        type_line = types.get(name)
        if type_line is None:
            continue  # numpydoc's PR01 reports undocumented parameters
        if "default" not in type_line and "optional" not in type_line:
            found.append(f"DF: parameter {name!r} has a default that its type "
                         f"line {type_line!r} does not state")
    return found


_STATE = {"package": "", "public": set(), "seen": set()}


def _is_checked(what, name):
    if what in ("function", "class"):
        return name in _STATE["public"]
    if what == "method":
        # public methods defined by the project (not inherited from scikit-learn)
        owner, _, method = name.rpartition(".")
        return owner in _STATE["public"] and not method.startswith("_")
    return False


def _defined_here(obj, package):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == package


def _check(app, what, name, obj, options, lines):
    if not _is_checked(what, name) or not _defined_here(obj, _STATE["package"]):
        return
    if name in _STATE["seen"]:
        return
    _STATE["seen"].add(name)
    for msg in problems(obj, kind=what):
        logger.warning("%s: %s", name, msg, type="docstring_checks",
                       location=app.env.docname)


def _init(app):
    _STATE["package"] = app.config.docstring_checks_package
    _STATE["public"] = _public_names(_STATE["package"])
    _STATE["seen"] = set()


def setup(app):
    app.add_config_value("docstring_checks_package", "softmax_core", "env")
    app.connect("builder-inited", _init)
    app.connect("autodoc-process-docstring", _check, priority=100)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
