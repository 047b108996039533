/* Design: a NumPy data allocator (a NEP 49 PyDataMem_Handler) that keeps
 * freed blocks of 128 KiB to 16 MiB for reuse, at most 32 of them and
 * 32 MiB in all.
 *
 * Why: dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536.
 * Setting that variable turns glibc's adaptive mmap threshold off, so every
 * NumPy array of 128 KiB or more becomes a fresh mmap, unmapped again when it
 * is freed, whose pages fault in on first touch (about 2.2 us a page on the
 * 2-core test machines).  A SoftmaxRegression fit on 40,000 x 100 float32
 * made about 2,000 such faults in its one-off set-up (the samples of the
 * step size and of the epoch objective, the label encoding, the shuffle) and
 * its score about 360 more, in every task of a search.  Without the
 * variable glibc keeps such blocks in its heap (its threshold rises to the
 * largest block freed, up to 32 MiB); this handler does the same for the
 * arrays that the estimator's own calls create, in any environment, with a
 * bound on what it keeps.
 *
 * softmax_core._array_cache installs it around the estimator's methods
 * (NumPy keeps the current handler in a context variable, so only arrays
 * created by the calling thread inside the call use it).  NumPy records on
 * each array the handler that allocated it, so an array made under this one
 * gives its block back here whenever it is freed, inside the call or later.
 *
 * Every block carries a 16-byte header before the pointer handed out, its
 * capacity and the size last asked of it, so the pointer keeps malloc's
 * 16-byte alignment, realloc copies only the bytes in use, and a cached
 * block can serve any request it fits: the smallest cached block of at least
 * the request and at most twice it (a small request does not pin a large
 * block).  The oldest blocks are freed first when the bounds are reached.
 * calloc from the cache zeroes the bytes asked for.  Blocks under 128 KiB
 * (glibc's heap serves them with or without the variable) and over 16 MiB
 * (mapped and unmapped by glibc at any threshold) are passed through to
 * malloc and free.  One mutex guards the cache, as NumPy frees arrays in
 * whichever thread drops them; a fork holds it (pthread_atfork), so a child
 * never inherits it locked.  New blocks of 4 MiB or more are advised
 * MADV_HUGEPAGE, as NumPy's default allocator does, unless NumPy's own
 * switch (numpy._core.multiarray._set_madvise_hugepage) is off.
 *
 * Under AddressSanitizer a cached block is poisoned while it waits and the
 * slack beyond the bytes asked of it stays poisoned once handed out, so a
 * use after free, or an overflow into the slack, is still reported
 * ("use-after-poison") although the memory never goes back to malloc.
 */
#ifndef SOFTMAX_CORE_ARRAY_CACHE_H
#define SOFTMAX_CORE_ARRAY_CACHE_H

#include <Python.h>
#include <numpy/ndarraytypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SC_AC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_AC_ASAN 1
#endif
#endif
#ifdef SC_AC_ASAN
#include <sanitizer/asan_interface.h>
#define SC_AC_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SC_AC_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define SC_AC_ASAN_POISONING 1
#else
#define SC_AC_POISON(p, n) ((void)(p), (void)(n))
#define SC_AC_UNPOISON(p, n) ((void)(p), (void)(n))
#define SC_AC_ASAN_POISONING 0
#endif

#define SC_AC_HEADER 16
#define SC_AC_MIN_BLOCK ((size_t)128 << 10)
#define SC_AC_MAX_BLOCK ((size_t)16 << 20)
#define SC_AC_MAX_BYTES ((size_t)32 << 20)
#define SC_AC_MAX_COUNT 32
#define SC_AC_HUGEPAGE ((size_t)4 << 20)

static pthread_mutex_t sc_ac_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t sc_ac_once = PTHREAD_ONCE_INIT;
static int sc_ac_once_status = 0;
static int sc_ac_hugepages = 1;  /* NumPy's switch, read by install() */
static void *sc_ac_blocks[SC_AC_MAX_COUNT]; /* oldest first */
static size_t sc_ac_count = 0;
static size_t sc_ac_bytes = 0;

/* The header: [0] the capacity, [1] the bytes last asked for. */
static size_t *sc_ac_head(void *p) { return (size_t *)((char *)p - SC_AC_HEADER); }
static size_t sc_ac_size(void *p) { return sc_ac_head(p)[0]; }

/* Hand out `p` for `used` bytes: those become addressable, the slack not. */
static void *sc_ac_hand_out(void *p, size_t used)
{
    sc_ac_head(p)[1] = used;
    SC_AC_UNPOISON(p, used);
    SC_AC_POISON((char *)p + used, sc_ac_size(p) - used);
    return p;
}

static void sc_ac_free_block(void *p)
{
    SC_AC_UNPOISON(p, sc_ac_size(p));
    free((char *)p - SC_AC_HEADER);
}

static void sc_ac_hugepage(char *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start, end;
    if (page <= 0 || !__atomic_load_n(&sc_ac_hugepages, __ATOMIC_RELAXED))
        return;
    start = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    end = (uintptr_t)p + n;
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);  /* advice only: errors ignored */
#else
    (void)p;
    (void)n;
#endif
}

/* A new block of `size` usable bytes (zeroed if asked), or NULL. */
static void *sc_ac_new(size_t size, int zero)
{
    char *raw;
    size_t cap = size == 0 ? 1 : size;
    if (cap > SIZE_MAX - SC_AC_HEADER)
        return NULL;
    raw = (char *)(zero ? calloc(1, cap + SC_AC_HEADER) : malloc(cap + SC_AC_HEADER));
    if (raw == NULL)
        return NULL;
    ((size_t *)raw)[0] = cap;
    ((size_t *)raw)[1] = size;
    if (cap >= SC_AC_HUGEPAGE)
        sc_ac_hugepage(raw, cap + SC_AC_HEADER);
    return raw + SC_AC_HEADER;
}

/* The smallest cached block of `size` to 2 x `size` bytes, taken out of the
 * cache and handed out for `size` bytes; NULL if none. */
static void *sc_ac_take(size_t size)
{
    void *p = NULL;
    size_t i, best = SC_AC_MAX_COUNT, best_size = 0;
    if (size < SC_AC_MIN_BLOCK || size > SC_AC_MAX_BLOCK)
        return NULL;
    pthread_mutex_lock(&sc_ac_lock);
    for (i = 0; i < sc_ac_count; i++) {
        size_t s = sc_ac_size(sc_ac_blocks[i]);
        if (s >= size && s / 2 <= size && (best == SC_AC_MAX_COUNT || s < best_size)) {
            best = i;
            best_size = s;
        }
    }
    if (best != SC_AC_MAX_COUNT) {
        p = sc_ac_blocks[best];
        memmove(sc_ac_blocks + best, sc_ac_blocks + best + 1,
                (sc_ac_count - best - 1) * sizeof(void *));
        sc_ac_count--;
        sc_ac_bytes -= best_size;
    }
    pthread_mutex_unlock(&sc_ac_lock);
    return p != NULL ? sc_ac_hand_out(p, size) : NULL;
}

/* Keep a block (the oldest ones freed to make room, after the lock is
 * released), or free it if its size is outside the cached range. */
static void sc_ac_give(void *p)
{
    void *evicted[SC_AC_MAX_COUNT];
    size_t n_evicted = 0, i;
    size_t size = sc_ac_size(p);
    if (size < SC_AC_MIN_BLOCK || size > SC_AC_MAX_BLOCK) {
        sc_ac_free_block(p);
        return;
    }
    SC_AC_POISON(p, size);
    pthread_mutex_lock(&sc_ac_lock);
    while (sc_ac_count > 0
           && (sc_ac_count == SC_AC_MAX_COUNT || sc_ac_bytes + size > SC_AC_MAX_BYTES)) {
        void *old = sc_ac_blocks[0];
        sc_ac_bytes -= sc_ac_size(old);
        sc_ac_count--;
        memmove(sc_ac_blocks, sc_ac_blocks + 1, sc_ac_count * sizeof(void *));
        evicted[n_evicted++] = old;
    }
    sc_ac_blocks[sc_ac_count++] = p;
    sc_ac_bytes += size;
    pthread_mutex_unlock(&sc_ac_lock);
    for (i = 0; i < n_evicted; i++)
        sc_ac_free_block(evicted[i]);
}

/* ---- the PyDataMemAllocator functions (ctx unused) */

static void *sc_ac_malloc(void *ctx, size_t size)
{
    void *p = sc_ac_take(size);
    (void)ctx;
    return p != NULL ? p : sc_ac_new(size, 0);
}

static void *sc_ac_calloc(void *ctx, size_t nelem, size_t elsize)
{
    size_t size;
    void *p;
    (void)ctx;
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    size = nelem * elsize;
    p = sc_ac_take(size);
    if (p == NULL)
        return sc_ac_new(size, 1);
    memset(p, 0, size);
    return p;
}

static void *sc_ac_realloc(void *ctx, void *ptr, size_t new_size)
{
    void *q;
    size_t cap, used, keep;
    if (ptr == NULL)
        return sc_ac_malloc(ctx, new_size);
    cap = sc_ac_size(ptr);
    used = sc_ac_head(ptr)[1];
    /* In place while the block fits and is not more than twice the request
     * (the bound a cached block obeys), so a shrink frees the rest. */
    if (new_size <= cap && cap / 2 <= new_size)
        return sc_ac_hand_out(ptr, new_size);
    q = sc_ac_malloc(ctx, new_size);
    if (q == NULL)
        return NULL;  /* ptr stays valid, as with realloc */
    keep = used < new_size ? used : new_size;
    memcpy(q, ptr, keep);
    sc_ac_give(ptr);
    return q;
}

static void sc_ac_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size;  /* the header holds the true size */
    if (ptr != NULL)
        sc_ac_give(ptr);
}

/* The handler: NumPy calls it by this name in its error messages and in
 * numpy._core.multiarray.get_handler_name(). */
static PyDataMem_Handler sc_ac_handler = {
    "softmax_core_cache", 1, {NULL, sc_ac_malloc, sc_ac_calloc, sc_ac_realloc, sc_ac_free}};

/* ---- fork: the child gets the cache unlocked */

static void sc_ac_prefork(void) { pthread_mutex_lock(&sc_ac_lock); }
static void sc_ac_postfork(void) { pthread_mutex_unlock(&sc_ac_lock); }

static void sc_ac_init_once(void)
{
    sc_ac_once_status = pthread_atfork(sc_ac_prefork, sc_ac_postfork, sc_ac_postfork);
}

/* Once per process, whatever the number of calls: 0 or pthread_atfork's error. */
static int sc_ac_init(void)
{
    pthread_once(&sc_ac_once, sc_ac_init_once);
    return sc_ac_once_status;
}

static void sc_ac_set_hugepages(int on) { __atomic_store_n(&sc_ac_hugepages, on, __ATOMIC_RELAXED); }

/* ---- for the tests and for release() */

static void sc_ac_stats(size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&sc_ac_lock);
    *count = sc_ac_count;
    *bytes = sc_ac_bytes;
    pthread_mutex_unlock(&sc_ac_lock);
}

/* Free every cached block. */
static void sc_ac_release(void)
{
    void *taken[SC_AC_MAX_COUNT];
    size_t n, i;
    pthread_mutex_lock(&sc_ac_lock);
    n = sc_ac_count;
    memcpy(taken, sc_ac_blocks, n * sizeof(void *));
    sc_ac_count = 0;
    sc_ac_bytes = 0;
    pthread_mutex_unlock(&sc_ac_lock);
    for (i = 0; i < n; i++)
        sc_ac_free_block(taken[i]);
}

#endif
