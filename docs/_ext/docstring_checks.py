"""Docstring checks that numpydoc validation does not have.

Design: numpydoc (``numpydoc_validation_checks`` in ``conf.py``) already
fails the build on undocumented, unknown or untyped parameters and on a
missing Returns section.  The project also promises, for every object in
``softmax_core.__all__``:

* ``EX`` - an ``Examples`` section that holds at least one doctest (``>>>``);
* ``DF`` - every parameter with a default says so in its type line
  (``float, default=0.1`` or ``..., optional``);
* ``RS`` - a ``Raises`` section for functions (they validate their input).

Each broken promise is a Sphinx warning, so ``sphinx-build -W`` fails.  The
check reads the raw docstring (it runs before numpydoc rewrites it) and is
applied once per object, to the objects that autodoc documents.
"""

import inspect

from numpydoc.docscrape import FunctionDoc
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "softmax_core"


def _public_names():
    import softmax_core

    return {f"{PACKAGE}.{name}" for name in getattr(softmax_core, "__all__", ())}


def _param_defaults(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind is not inspect.Parameter.VAR_KEYWORD}


def problems(obj, is_class):
    """Return the list of broken promises of ``obj``'s docstring."""
    doc = FunctionDoc(obj, doc=inspect.getdoc(obj) or "", config={})
    found = []
    examples = "\n".join(doc["Examples"])
    if ">>>" not in examples:
        found.append("EX: no Examples section with a doctest (>>>)")
    if not is_class and not doc["Raises"]:
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


_STATE = {"public": set(), "seen": set()}


def _check(app, what, name, obj, options, lines):
    if what not in ("function", "class") or name not in _STATE["public"]:
        return
    if name in _STATE["seen"]:
        return
    _STATE["seen"].add(name)
    for msg in problems(obj, is_class=(what == "class")):
        logger.warning("%s: %s", name, msg, type="docstring_checks",
                       location=name)


def _init(app):
    _STATE["public"] = _public_names()
    _STATE["seen"] = set()


def setup(app):
    app.connect("builder-inited", _init)
    app.connect("autodoc-process-docstring", _check, priority=100)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
