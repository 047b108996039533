"""What this installation runs on: kernel build, threads, array namespaces."""

import importlib.util

__all__ = ["build_info", "show_config"]

_NAMESPACES = ("numpy", "array_api_strict", "torch", "cupy", "jax", "dask")


def build_info():
    """Return a dict describing the kernel build and the available backends."""
    from ._native import KERNEL_TARGET, available_targets, kernels
    from ._threads import max_threads

    return {
        "kernel_target": KERNEL_TARGET,
        "targets_usable_here": available_targets(),
        "openmp": bool(kernels.have_openmp()),
        "openmp_threads": max_threads(),
        "array_namespaces": [n for n in _NAMESPACES if importlib.util.find_spec(n)],
    }


def show_config():
    """Print the kernel build, OpenMP threads and the array namespaces found.

    Returns
    -------
    None
        The information is printed; ``softmax_core._build_info.build_info()``
        returns it as a dict.

    Examples
    --------
    >>> from softmax_core import show_config
    >>> show_config()  # doctest: +ELLIPSIS
    softmax-core ...
    kernel build ...
    """
    from . import __version__

    info = build_info()
    print(f"softmax-core {__version__}")
    print(f"kernel build       : {info['kernel_target']} "
          f"(usable here: {', '.join(info['targets_usable_here'])})")
    print(f"OpenMP             : {'yes' if info['openmp'] else 'no (serial build)'}, "
          f"{info['openmp_threads']} thread(s)")
    print(f"array namespaces   : {', '.join(info['array_namespaces'])}")
