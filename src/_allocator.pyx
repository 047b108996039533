# Design: the Python face of the cached NumPy allocator in array_cache.h (why
# it exists and how it caches: there).  One module, compiled once (it holds
# no vector code), so the cache is one per process whichever kernel build
# is loaded.  softmax_core._array_cache is the only caller: install() makes
# the handler current in the calling context and returns the one it
# replaced, which restore() puts back.  A handler the user installed (a
# tracing or pinned-memory allocator, say) is left in place: install() then
# changes nothing and returns None, and restore(None) does nothing.
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from libc.string cimport strcmp

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)
    object PyDataMem_GetHandler()

cdef extern from "array_cache.h":
    ctypedef struct PyDataMem_Handler:
        char name[127]
    PyDataMem_Handler sc_ac_handler
    size_t SC_AC_MIN_BLOCK, SC_AC_MAX_BLOCK, SC_AC_MAX_BYTES, SC_AC_MAX_COUNT
    int SC_AC_ASAN_POISONING
    int sc_ac_init()
    void sc_ac_set_hugepages(int on) nogil
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
# Whether this build poisons cached blocks for AddressSanitizer.
ASAN_POISONING = bool(SC_AC_ASAN_POISONING)

try:  # NumPy's own switch for MADV_HUGEPAGE, which the cache follows
    from numpy._core.multiarray import _get_madvise_hugepage
except ImportError:  # pragma: no cover - NumPy < 2
    try:
        from numpy.core.multiarray import _get_madvise_hugepage
    except ImportError:
        _get_madvise_hugepage = None


def install():
    """Make the cached allocator NumPy's current one; returns the one replaced.

    Returns None, and changes nothing, where the current allocator is neither
    NumPy's default nor this one: a handler the user chose stays in place.
    NumPy's hugepage switch (``_set_madvise_hugepage``) is read here, once
    per call, for the whole process: a change takes effect at the next one.
    """
    current = PyDataMem_GetHandler()
    cdef PyDataMem_Handler *handler = <PyDataMem_Handler *>PyCapsule_GetPointer(
        current, "mem_handler")
    if handler != &sc_ac_handler and strcmp(handler.name, b"default_allocator") != 0:
        return None
    if _get_madvise_hugepage is not None:
        sc_ac_set_hugepages(1 if _get_madvise_hugepage() else 0)
    return PyDataMem_SetHandler(_HANDLER)


def restore(previous):
    """Make ``previous`` (what `install` returned) the current allocator again."""
    if previous is not None:
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
