"""Load the compiled kernel module that best fits this CPU.

``setup.py`` builds the same kernels for several instruction-set targets
(``baseline`` everywhere, plus ``x86_64_v3`` (AVX2/FMA) and ``x86_64_v4``
(AVX-512) on x86-64).  Here we read the CPU's features as NumPy detected
them and import the most capable build the CPU can run, falling back to the
baseline build.  ``SOFTMAX_CORE_KERNELS=<target>`` forces one target (for
benchmarks and debugging).
"""

import importlib
import os

__all__ = ["kernels", "KERNEL_TARGET", "available_targets"]

# target -> CPU features (NumPy's names) the build needs
_REQUIREMENTS = {
    "x86_64_v4": ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL",
                  "AVX2", "FMA3"),
    "x86_64_v3": ("AVX2", "FMA3", "F16C", "AVX"),
    "baseline": (),
}


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return __cpu_features__


def available_targets():
    """Targets that were compiled *and* that this CPU can run, best first."""
    features = _cpu_features()
    found = []
    for target, needs in _REQUIREMENTS.items():
        if not all(features.get(f, False) for f in needs):
            continue
        try:
            importlib.import_module(f"softmax_core._kernels_{target}")
        except ImportError:
            continue
        found.append(target)
    return found


def _load():
    forced = os.environ.get("SOFTMAX_CORE_KERNELS")
    if forced:
        if forced not in _REQUIREMENTS:
            raise ImportError(f"SOFTMAX_CORE_KERNELS={forced!r} is not one of "
                              f"{sorted(_REQUIREMENTS)}")
        return importlib.import_module(f"softmax_core._kernels_{forced}")
    features = _cpu_features()
    for target, needs in _REQUIREMENTS.items():
        if all(features.get(f, False) for f in needs):
            try:
                return importlib.import_module(f"softmax_core._kernels_{target}")
            except ImportError:
                continue
    raise ImportError("softmax_core: no compiled kernel module found; "
                      "reinstall with `pip install .`")


kernels = _load()
KERNEL_TARGET = kernels.TARGET
