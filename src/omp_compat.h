/* Design: lets the kernels ask for the OpenMP thread count whether or not the
 * extension was built with OpenMP (the serial fallback build reports 1). */
#ifndef SOFTMAX_CORE_OMP_COMPAT_H
#define SOFTMAX_CORE_OMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#define SC_HAVE_OPENMP 1
static inline int sc_omp_max_threads(void) { return omp_get_max_threads(); }
#else
#define SC_HAVE_OPENMP 0
static inline int sc_omp_max_threads(void) { return 1; }
#endif
#endif
