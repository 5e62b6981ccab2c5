/* fj_heap.h - k-way merge of history runs with a binary min-heap.
 *
 * History arrives as one response per job, each already in time order
 * (RFC 21 eventlogs are appended in time order), but the responses come in
 * the service's hash order.  Each time-ordered run of a record is a cursor
 * in the heap, keyed by (timestamp, arrival sequence) of its next event, so
 * popping yields a stable sort of the whole history by timestamp in
 * O(log runs) per event, with no event copied.
 */
#ifndef FJ_HEAP_H
#define FJ_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "fj_record.h"

typedef struct {
    double timestamp;      /* key of the run's next event ... */
    uint64_t seq;          /* ... ties broken by arrival */
    fj_record_t *record;
    uint32_t pos;          /* next event of the run */
    uint32_t end;          /* one past the run's last event */
} fj_run_t;

typedef struct {
    fj_run_t *runs;
    size_t count;
    size_t cap;
} fj_heap_t;

void fj_heap_init (fj_heap_t *h);
void fj_heap_release (fj_heap_t *h);   /* frees the array, not records */

/* Add every maximal non-decreasing run of rec's events.  Returns 0, or
 * -FJ_ENOMEM (then nothing was added). */
int fj_heap_add_record (fj_heap_t *h, fj_record_t *rec);

/* The run whose next event is earliest, or NULL if empty. */
static inline fj_run_t *fj_heap_top (fj_heap_t *h)
{
    return h->count ? &h->runs[0] : NULL;
}

/* Advance the top run past its next event, removing it when exhausted. */
void fj_heap_advance_top (fj_heap_t *h);

#endif /* FJ_HEAP_H */
