/* fj_slab.c - records carved out of large blocks (see fj_slab.h). */
#include <stdlib.h>

#include "fj_slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define FJ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FJ_ASAN 1
#endif
#endif

#ifdef FJ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION ((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION ((p), (n))
#define FENCE 16    /* poisoned bytes after each record */
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define FENCE 0
#endif

struct fj_slab {
    size_t used;        /* bytes carved so far */
    size_t live;        /* records carved and not yet released */
    int open;           /* still being carved from */
};

/* Records start 16-byte aligned, after the header. */
#define ROUND16(n) (((n) + 15) & ~(size_t)15)
#define HEADER ROUND16 (sizeof (fj_slab_t))

static char *block_data (fj_slab_t *b)
{
    return (char *)b + HEADER;
}

void fj_slabs_init (fj_slabs_t *a)
{
    a->open = NULL;
}

void fj_slabs_close (fj_slabs_t *a)
{
    fj_slab_t *b = a->open;

    if (!b)
        return;
    a->open = NULL;
    b->open = 0;
    if (b->live == 0)
        free (b);
}

static fj_slab_t *block_new (void)
{
    fj_slab_t *b = malloc (HEADER + FJ_SLAB_SIZE);

    if (!b)
        return NULL;
    b->used = 0;
    b->live = 0;
    b->open = 1;
    POISON (block_data (b), FJ_SLAB_SIZE);
    return b;
}

void *fj_slab_alloc (fj_slabs_t *a, size_t size, fj_slab_t **slab)
{
    size_t need = ROUND16 (size) + FENCE;
    fj_slab_t *b = a->open;
    char *p;

    if (size > FJ_SLAB_MAX) {
        *slab = NULL;
        return malloc (size);
    }
    if (!b || b->used + need > FJ_SLAB_SIZE) {
        fj_slab_t *fresh = block_new ();
        if (!fresh)
            return NULL;
        fj_slabs_close (a);
        a->open = b = fresh;
    }
    p = block_data (b) + b->used;
    b->used += need;
    b->live++;
    UNPOISON (p, size);
    *slab = b;
    return p;
}

void fj_slab_release (fj_slab_t *slab, void *p, size_t size)
{
    if (!slab) {
        free (p);
        return;
    }
    POISON (p, size);
    if (--slab->live == 0 && !slab->open)
        free (slab);
}
