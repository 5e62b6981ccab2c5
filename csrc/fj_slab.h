/* fj_slab.h - records carved out of large blocks.
 *
 * A stream keeps one record per response (fj_record.h): a million of them
 * for a large history, allocated in arrival order and freed in delivery
 * (time) order.  With malloc that is a million allocations, and every free
 * consults neighbouring chunks that have long left the cache.  Here records
 * are carved one after another out of blocks of FJ_SLAB_SIZE bytes; a
 * record is released by counting it off its block, and a block is freed
 * with the last of its records once no more is carved from it.  Anything
 * larger than FJ_SLAB_MAX gets its own malloc().
 *
 * Under AddressSanitizer every carved record is fenced by poisoned bytes
 * and poisoned again when released, so overruns and uses after release are
 * reported as they would be with malloc.
 */
#ifndef FJ_SLAB_H
#define FJ_SLAB_H

#include <stddef.h>

#define FJ_SLAB_SIZE ((size_t)1 << 20)
#define FJ_SLAB_MAX (FJ_SLAB_SIZE / 16)

typedef struct fj_slab fj_slab_t;

typedef struct {
    fj_slab_t *open;    /* the block being carved, or NULL */
} fj_slabs_t;

void fj_slabs_init (fj_slabs_t *a);

/* No more carving: the open block is freed with its last record (now, if
 * none is left).  Call once every record may have been released. */
void fj_slabs_close (fj_slabs_t *a);

/* size bytes, 16-byte aligned, or NULL if out of memory.  *slab is set to
 * what fj_slab_release() needs back (NULL for a record malloc'd alone). */
void *fj_slab_alloc (fj_slabs_t *a, size_t size, fj_slab_t **slab);

/* Release p (size bytes) obtained with block slab. */
void fj_slab_release (fj_slab_t *slab, void *p, size_t size);

#endif /* FJ_SLAB_H */
