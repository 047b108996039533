/* Design: one cached kernel workspace per calling thread.
 *
 * The blocked kernels need a few hundred KiB (the fused linear step of a wide
 * model: tens of MiB) of 64-byte aligned scratch per
 * call.  Allocating and freeing it at every call is cheap with glibc's
 * defaults, but where the process sets MALLOC_TRIM_THRESHOLD_ (dask's nanny
 * starts every worker with 65536), glibc's adaptive mmap threshold is off:
 * each block of that size is a fresh mmap whose pages fault in again -- a
 * minibatch fit then ran 1.7x slower.  So a block given back is kept for the
 * calling thread's next call (the larger one, if it already holds one) and
 * freed when that thread exits (a pthread key destructor).  take() empties
 * the slot, so a nested take in the same thread allocates its own block and
 * no two calls ever share scratch.  Each block records its own size in a
 * 64-byte header before the pointer handed out: a small request served from
 * a large cached block gives back the large block as large (when the caller
 * said the size, a fit's per-epoch loss on 4096 rows turned the cached
 * gradient scratch into a "small" block, and the next minibatch step mapped
 * a fresh one, every epoch).
 */
#ifndef SOFTMAX_CORE_WORKSPACE_CACHE_H
#define SOFTMAX_CORE_WORKSPACE_CACHE_H

#include <pthread.h>
#include <stdlib.h>

typedef struct { void *ptr; size_t bytes; } sc_ws_slot;

static pthread_key_t sc_ws_key;
static pthread_once_t sc_ws_once = PTHREAD_ONCE_INIT;
static int sc_ws_key_ok = 0;

#define SC_WS_HEADER 64

/* The usable size of a block from sc_ws_take (its header). */
static size_t sc_ws_size(void *p) { return *(size_t *)((char *)p - SC_WS_HEADER); }

static void sc_ws_free(void *p)
{
    if (p != NULL)
        free((char *)p - SC_WS_HEADER);
}

static void sc_ws_destroy(void *p)
{
    sc_ws_slot *s = (sc_ws_slot *)p;
    if (s != NULL) {
        sc_ws_free(s->ptr);
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

/* A 64-byte aligned block of at least `bytes`: the thread's cached one, else
 * a new one; NULL if it cannot be allocated. */
static void *sc_ws_take(size_t bytes)
{
    void *raw = NULL;
    sc_ws_slot *s = sc_ws_slot_of_thread();
    if (s != NULL && s->ptr != NULL && s->bytes >= bytes) {
        void *p = s->ptr;
        s->ptr = NULL;
        s->bytes = 0;
        return p;
    }
    if (bytes > (size_t)-1 - SC_WS_HEADER
            || posix_memalign(&raw, 64, bytes + SC_WS_HEADER) != 0)
        return NULL;
    *(size_t *)raw = bytes;
    return (char *)raw + SC_WS_HEADER;
}

/* Give back a block from sc_ws_take (NULL is ignored): kept if the thread
 * holds none or a smaller one, else freed. */
static void sc_ws_give(void *p)
{
    sc_ws_slot *s;
    size_t bytes;
    if (p == NULL)
        return;
    bytes = sc_ws_size(p);
    s = sc_ws_slot_of_thread();
    if (s == NULL) {
        sc_ws_free(p);
        return;
    }
    if (s->ptr == NULL || bytes > s->bytes) {
        sc_ws_free(s->ptr);
        s->ptr = p;
        s->bytes = bytes;
        return;
    }
    sc_ws_free(p);
}

/* Bytes of the block the calling thread holds (0 if none): for the tests. */
static size_t sc_ws_cached_bytes(void)
{
    sc_ws_slot *s = sc_ws_slot_of_thread();
    return (s == NULL || s->ptr == NULL) ? 0 : s->bytes;
}

#endif
