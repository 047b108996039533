"""Zero-copy bridge: CPU arrays of other namespaces run the compiled NumPy kernels.

Design: an array of another array-API namespace that lives in CPU memory
(torch CPU tensors, JAX CPU arrays, array_api_strict, anything with
``__dlpack__`` on the CPU device) is viewed as a NumPy array without a copy
(``Tensor.numpy()`` for torch, ``numpy.from_dlpack`` for the others), the
call runs on the NumPy path, and its results are viewed back in the caller's
namespace (``torch.from_numpy``, ``xp.from_dlpack``).  The only copies are
those the kernels make for NumPy input of the same layout.  ``bridgeable``
decides; ``_namespace.get_namespace`` asks it once per call.

Only float16/32/64 data are bridged (the dtypes the kernels take); integer,
bfloat16 or complex data keep the generic path, so that each namespace's own
rules for them (torch refuses integer softmax, for example) stay in force.
"""

import sys

import array_api_compat
import numpy as np

__all__ = ["bridgeable", "dtype_bridgeable", "torch_tensor_type", "to_numpy", "numpy_dtype",
           "back"]

_KDL_CPU = 1  # DLPack's device type of host memory
_FLOAT_KINDS = frozenset({"float16", "float32", "float64"})


def torch_tensor_type():
    """``torch.Tensor`` when torch has been imported, else None (never imports it)."""
    torch = sys.modules.get("torch")
    return None if torch is None else torch.Tensor


def _on_cpu(a):
    try:
        return int(a.__dlpack_device__()[0]) == _KDL_CPU
    except (AttributeError, TypeError, ValueError, BufferError):
        return False


def _dtype_name(a):
    return str(a.dtype).rsplit(".", 1)[-1]


_TORCH = []  # (the torch float dtypes the kernels take, torch.strided), once torch is in use


def _torch_facts():
    if not _TORCH:
        import torch

        _TORCH.append((frozenset({torch.float16, torch.float32, torch.float64}), torch.strided))
    return _TORCH[0]


def bridgeable(first, others):
    """Whether a call whose value array is ``first`` can run on the NumPy kernels.

    ``first`` must be a float16/32/64 array in CPU memory; every other array
    of the call must be in CPU memory too (and, for torch, dense).
    """
    tensor = torch_tensor_type()
    if tensor is not None and isinstance(first, tensor):
        floats, strided = _torch_facts()
        return (first.dtype in floats and first.is_cpu and first.layout is strided
                and not first.is_conj() and not first.is_neg()
                and all(a.is_cpu and a.layout is strided if isinstance(a, tensor)
                        else _on_cpu(a) for a in others))
    return (_dtype_name(first) in _FLOAT_KINDS and _on_cpu(first)
            and all(_on_cpu(a) for a in others))


def dtype_bridgeable(dtype):
    """Whether a ``dtype=`` argument is one the kernels produce (float16/32/64)."""
    return dtype is None or str(dtype).rsplit(".", 1)[-1] in _FLOAT_KINDS


def to_numpy(a):
    """A NumPy view of a bridged array (None stays None, NumPy stays itself, and
    array-likes such as lists or floats are converted like ``numpy.asarray``)."""
    if a is None or isinstance(a, np.ndarray):
        return a
    tensor = torch_tensor_type()
    if tensor is not None and isinstance(a, tensor):
        return (a.detach() if a.requires_grad else a).numpy()
    if not array_api_compat.is_array_api_obj(a):
        return np.asarray(a)
    return np.from_dlpack(a)


def numpy_dtype(xp, dtype):
    """The NumPy dtype of a namespace's ``dtype`` object (None stays None)."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.from_dlpack(xp.empty((0,), dtype=dtype)).dtype


def back(xp, like, result):
    """``result`` (a NumPy array or scalar, or a tuple of them) viewed in ``xp``,
    on the device of ``like`` (the call's value array)."""
    if isinstance(result, tuple):
        return tuple(back(xp, like, r) for r in result)
    result = np.asarray(result)
    tensor = torch_tensor_type()
    if tensor is not None and isinstance(like, tensor):
        import torch

        if not result.flags.writeable:  # torch wants writable memory
            result = result.copy()
        return torch.from_numpy(result)
    out = xp.from_dlpack(result)
    device = array_api_compat.device(like)
    if array_api_compat.device(out) != device:  # e.g. array_api_strict's other CPU devices
        out = array_api_compat.to_device(out, device)
    return out
