/* Design: one cached kernel workspace per calling thread.
 *
 * The blocked kernels need a few hundred KiB of 64-byte aligned scratch per
 * call.  Allocating and freeing it at every call is cheap with glibc's
 * defaults, but where the process sets MALLOC_TRIM_THRESHOLD_ (dask's nanny
 * starts every worker with 65536), glibc's adaptive mmap threshold is off:
 * each block of that size is a fresh mmap whose pages fault in again -- a
 * minibatch fit then ran 1.7x slower.  So a block given back is kept for the
 * calling thread's next call (the larger one, if it already holds one) and
 * freed when that thread exits (a pthread key destructor).  take() empties
 * the slot, so a nested take in the same thread allocates its own block and
 * no two calls ever share scratch.
 */
#ifndef SOFTMAX_CORE_WORKSPACE_CACHE_H
#define SOFTMAX_CORE_WORKSPACE_CACHE_H

#include <pthread.h>
#include <stdlib.h>

typedef struct { void *ptr; size_t bytes; } sc_ws_slot;

static pthread_key_t sc_ws_key;
static pthread_once_t sc_ws_once = PTHREAD_ONCE_INIT;
static int sc_ws_key_ok = 0;

static void sc_ws_destroy(void *p)
{
    sc_ws_slot *s = (sc_ws_slot *)p;
    if (s != NULL) {
        free(s->ptr);
        free(s);
    }
}

static void sc_ws_init(void) { sc_ws_key_ok = pthread_key_create(&sc_ws_key, sc_ws_destroy) == 0; }

static sc_ws_slot *sc_ws_slot_of_thread(void)
{
    sc_ws_slot *s;
    pthread_once(&sc_ws_once, sc_ws_init);
    if (!sc_ws_key_ok)
        return NULL;
    s = (sc_ws_slot *)pthread_getspecific(sc_ws_key);
    if (s == NULL) {
        s = (sc_ws_slot *)calloc(1, sizeof(*s));
        if (s == NULL)
            return NULL;
        if (pthread_setspecific(sc_ws_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    return s;
}

/* A 64-byte aligned block of at least `bytes`: the thread's cached one, else a new one. */
static void *sc_ws_take(size_t bytes)
{
    void *p = NULL;
    sc_ws_slot *s = sc_ws_slot_of_thread();
    if (s != NULL && s->ptr != NULL && s->bytes >= bytes) {
        p = s->ptr;
        s->ptr = NULL;
        s->bytes = 0;
        return p;
    }
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

/* Give back a block of `bytes` from sc_ws_take (NULL is ignored). */
static void sc_ws_give(void *p, size_t bytes)
{
    sc_ws_slot *s;
    if (p == NULL)
        return;
    s = sc_ws_slot_of_thread();
    if (s == NULL) {
        free(p);
        return;
    }
    if (s->ptr == NULL || bytes > s->bytes) {
        free(s->ptr);
        s->ptr = p;
        s->bytes = bytes;
        return;
    }
    free(p);
}

#endif
