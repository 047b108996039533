"""The one place that decides which backend serves a call.

``get_namespace(*arrays)`` returns ``(xp, backend)`` once per call, and each
public function hands the call to that backend:

=============  ===========================================  ==========================
backend        arrays                                       implementation
=============  ===========================================  ==========================
``NUMPY``      NumPy arrays and array-likes (lists,         compiled kernels
               scalars)                                     (``_softmax_numpy``,
                                                            ``_losses_numpy``)
``BRIDGED``    float16/32/64 arrays of another namespace    the same kernels, through
               in CPU memory (torch CPU tensors, JAX CPU    zero-copy views
               arrays, array_api_strict, ...)               (``_bridge``)
``AUTOGRAD``   torch CPU tensors of the above kind, one of  autograd Functions over
               them requiring grad, grad mode on            the same kernels
                                                            (``_torch_autograd``)
``CUPY``       CuPy arrays                                  CUDA kernels
                                                            (``_softmax_cupy``,
                                                            ``_losses_cupy``), else
                                                            ``GENERIC``
``GENERIC``    everything else (GPU tensors, dask,          pure array-API code
               integer or bfloat16 data, ...)               (``_softmax_generic``,
                                                            ``_losses_generic``)
=============  ===========================================  ==========================

``array_api_compat.array_namespace`` is the source of namespaces.  A plain
``numpy.ndarray`` is recognised first by type, and so is an all-torch call,
which keeps the dispatch cost of small calls to a few hundred nanoseconds (a
microsecond for torch); anything that is not an array of some namespace
(lists, scalars) is converted like ``numpy.asarray``.

Mixed namespaces raise ``TypeError``, with one exception: NumPy arrays in a
call with dask arrays are promoted to dask (the call is ``GENERIC`` in
``array_api_compat.dask.array``), because a dask computation takes NumPy
arrays as constants anyway.  ``get_namespace_and_arrays`` makes that
decision and the conversion in one step; the public functions call it.
"""

import array_api_compat
import numpy as np

from ._bridge import bridgeable, torch_tensor_type

__all__ = ["NUMPY", "BRIDGED", "AUTOGRAD", "CUPY", "GENERIC", "get_namespace",
           "get_namespace_and_arrays"]

NUMPY = "numpy"
BRIDGED = "bridged"
AUTOGRAD = "autograd"
CUPY = "cupy"
GENERIC = "array_api"


def _is_array(a):
    return isinstance(a, np.ndarray) or array_api_compat.is_array_api_obj(a)


_TORCH_XP = []  # array_api_compat.torch, imported on the first torch call


def _torch_call(present, tensor):
    """``(xp, backend)`` when the arrays of the call are torch tensors (array-likes
    such as lists and floats aside) and the first one is a tensor, else None."""
    if not isinstance(present[0], tensor):
        return None
    tensors = [a for a in present if isinstance(a, tensor)]
    if len(tensors) != len(present) and any(
            _is_array(a) for a in present if not isinstance(a, tensor)):
        return None  # another namespace too: array_api_compat says what is mixed
    if not _TORCH_XP:
        from array_api_compat import torch as xp

        _TORCH_XP.append(xp)
    xp = _TORCH_XP[0]
    if not bridgeable(present[0], tensors[1:]):
        return xp, GENERIC
    import torch

    if torch.is_grad_enabled() and any(a.requires_grad for a in tensors):
        # the autograd Functions take tensors; with array-likes in the call,
        # torch's own operations (GENERIC) keep the graph
        return xp, (AUTOGRAD if len(tensors) == len(present) else GENERIC)
    return xp, BRIDGED


def _dask_call(arrays_only):
    """The dask namespace when the arrays are dask and NumPy arrays, at least
    one of them dask (NumPy arrays are then promoted), else None."""
    dask_arrays = [a for a in arrays_only if array_api_compat.is_dask_array(a)]
    if not dask_arrays or len(dask_arrays) == len(arrays_only):
        return None  # no promotion to decide
    if not all(array_api_compat.is_dask_array(a) or array_api_compat.is_numpy_array(a)
               for a in arrays_only):
        return None  # torch and dask, say: array_api_compat says what is mixed
    return array_api_compat.array_namespace(*dask_arrays)


def _decide(arrays):
    """``(xp, backend, promote)`` of a call's arrays; ``promote``: NumPy arrays
    of the call are to become dask arrays."""
    present = [a for a in arrays if a is not None]
    if present and type(present[0]) is not np.ndarray:  # a torch call is told apart first
        tensor = torch_tensor_type()
        if tensor is not None:
            call = _torch_call(present, tensor)
            if call is not None:
                return (*call, False)
    if all(type(a) is np.ndarray or not _is_array(a) for a in present):
        return _NUMPY_CALL
    arrays_only = [a for a in present if _is_array(a)]
    xp = _dask_call(arrays_only)
    if xp is not None:
        return xp, GENERIC, True
    xp = array_api_compat.array_namespace(*arrays_only)
    if array_api_compat.is_numpy_namespace(xp):
        return _NUMPY_CALL
    if array_api_compat.is_cupy_namespace(xp):
        return xp, CUPY, False
    if _is_array(present[0]) and bridgeable(present[0], arrays_only[1:]):
        return xp, BRIDGED, False
    return xp, GENERIC, False


_NUMPY_CALL = (np, NUMPY, False)


def get_namespace(*arrays):
    """Return ``(xp, backend)`` for the given arrays (``None`` entries skipped).

    The first array is the call's value array (the logits, the input): its
    dtype decides whether a CPU array of another namespace is bridged to the
    kernels.  Mixing namespaces raises ``TypeError``, except that NumPy
    arrays mixed with dask arrays give dask's namespace (``GENERIC``).
    """
    xp, backend, _ = _decide(arrays)
    return xp, backend


def get_namespace_and_arrays(*arrays):
    """Return ``(xp, backend, arrays)``: ``get_namespace``'s answer and the
    arrays to compute with.

    They are the given arrays themselves, except in a call that mixes NumPy
    and dask arrays, where the NumPy arrays (NumPy scalars included) become
    dask arrays of one chunk (``None`` entries and array-likes such as lists
    stay as they are: each function converts those in its namespace).
    """
    xp, backend, promote = _decide(arrays)
    if promote:
        arrays = tuple(xp.asarray(a) if array_api_compat.is_numpy_array(a) else a
                       for a in arrays)
    return xp, backend, arrays
