# Design: the Python face of the cached NumPy allocator in array_cache.h (why
# it exists and how it caches: there).  One module, compiled once (it holds
# no vector code), so the cache is one per process whichever kernel build
# is loaded.  softmax_core._array_cache is the only caller: install() makes
# the handler current in the calling context and returns the one it
# replaced, which restore() puts back.
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

cdef extern from "array_cache.h":
    ctypedef struct PyDataMem_Handler:
        pass
    PyDataMem_Handler sc_ac_handler
    size_t SC_AC_MIN_BLOCK, SC_AC_MAX_BLOCK, SC_AC_MAX_BYTES, SC_AC_MAX_COUNT
    int sc_ac_init()
    void sc_ac_stats(size_t *count, size_t *nbytes) nogil
    void sc_ac_release() nogil

if sc_ac_init() != 0:
    raise ImportError("softmax_core._allocator: pthread_atfork failed")

_HANDLER = PyCapsule_New(<void *>&sc_ac_handler, "mem_handler", NULL)
NAME = "softmax_core_cache"
MIN_BLOCK = SC_AC_MIN_BLOCK
MAX_BLOCK = SC_AC_MAX_BLOCK
MAX_BYTES = SC_AC_MAX_BYTES
MAX_COUNT = SC_AC_MAX_COUNT


def install():
    """Make the cached allocator NumPy's current one; returns the one replaced."""
    return PyDataMem_SetHandler(_HANDLER)


def restore(previous):
    """Make ``previous`` (what `install` returned) the current allocator again."""
    PyDataMem_SetHandler(previous)


def stats():
    """``(blocks, bytes)`` held in the cache now."""
    cdef size_t count = 0, nbytes = 0
    sc_ac_stats(&count, &nbytes)
    return int(count), int(nbytes)


def release():
    """Free every block the cache holds."""
    with nogil:
        sc_ac_release()
