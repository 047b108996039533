"""What the benchmark scripts print about the machine: the CPU model and its vector flags."""

import platform

__all__ = ["cpu_flags", "cpu_model"]

_SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")


def cpu_model():
    """The ``model name`` of /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    """The vector-instruction flags of /proc/cpuinfo that the kernel builds use, as one string."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return ""
    return " ".join(f for f in _SHOWN_FLAGS if f in flags)
