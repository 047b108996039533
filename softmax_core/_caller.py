"""Warnings that point at the user's code, whatever path the call took.

A fixed ``stacklevel`` is right for one call path only: a NumPy fit reaches
its warnings through fewer of our frames than a fit on dask arrays (its
block survey, its chain of tasks) or a ``partial_fit``.  `warn_at_caller`
counts the frames instead: the warning is attributed to the first frame
outside this package and outside scikit-learn's ``base.py`` (the
``_fit_context`` wrapper around ``fit``), so it names the line that called
``fit``, ``partial_fit`` or the ``Pipeline``/search that did.
"""

import contextlib
import os
import sys
import warnings

__all__ = ["warn_at_caller"]

_PACKAGE = os.path.dirname(os.path.realpath(__file__)) + os.sep
_WRAPPERS = {os.path.realpath(contextlib.__file__)}
try:
    import sklearn.base

    _WRAPPERS.add(os.path.realpath(sklearn.base.__file__))
except ImportError:  # pragma: no cover - scikit-learn is a dependency
    pass


def _ours(filename):
    path = os.path.realpath(filename)
    return path.startswith(_PACKAGE) or path in _WRAPPERS


def warn_at_caller(message, category):
    """``warnings.warn(message, category)`` at the first frame that is not ours."""
    frame, level = sys._getframe(1), 1
    while frame is not None and _ours(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
