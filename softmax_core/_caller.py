"""Warnings that point at the user's code, whatever path the call took.

A fixed ``stacklevel`` is right for one call path only: a NumPy fit reaches
its warnings through fewer of our frames than a fit on dask arrays (its
block survey, its chain of tasks) or a ``partial_fit``.  `warn_at_caller`
counts the frames instead: the warning is attributed to the first frame
outside this package and outside scikit-learn's ``base.py`` (the
``_fit_context`` wrapper around ``fit``), so it names the line that called
``fit``, ``partial_fit`` or the ``Pipeline``/search that did.
"""

import os
import sys
import warnings

__all__ = ["warn_at_caller"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKLEARN_BASE = os.path.join("sklearn", "base.py")


def _ours(filename):
    return filename.startswith(_PACKAGE) or filename.endswith(_SKLEARN_BASE) or (
        filename.endswith("contextlib.py"))


def warn_at_caller(message, category):
    """``warnings.warn(message, category)`` at the first frame that is not ours."""
    frame, level = sys._getframe(1), 1
    while frame is not None and _ours(os.path.abspath(frame.f_code.co_filename)):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
