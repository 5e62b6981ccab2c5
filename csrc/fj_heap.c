/* fj_heap.c - binary min-heap of history runs (see fj_heap.h). */
#include <stdlib.h>

#include "fj_grow.h"
#include "fj_heap.h"

static int run_before (const fj_run_t *a, const fj_run_t *b)
{
    if (a->timestamp != b->timestamp)
        return a->timestamp < b->timestamp;
    return a->seq < b->seq;
}

static void sift_up (fj_heap_t *h, size_t i)
{
    fj_run_t moving = h->runs[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!run_before (&moving, &h->runs[parent]))
            break;
        h->runs[i] = h->runs[parent];
        i = parent;
    }
    h->runs[i] = moving;
}

static void sift_down (fj_heap_t *h, size_t i)
{
    fj_run_t moving = h->runs[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->count)
            break;
        if (child + 1 < h->count
            && run_before (&h->runs[child + 1], &h->runs[child]))
            child++;
        if (!run_before (&h->runs[child], &moving))
            break;
        h->runs[i] = h->runs[child];
        i = child;
    }
    h->runs[i] = moving;
}

void fj_heap_init (fj_heap_t *h)
{
    h->runs = NULL;
    h->count = h->cap = 0;
}

void fj_heap_release (fj_heap_t *h)
{
    free (h->runs);
    fj_heap_init (h);
}

static size_t count_runs (const fj_record_t *rec)
{
    size_t runs = rec->nevents ? 1 : 0;
    for (uint32_t i = 1; i < rec->nevents; i++)
        if (rec->events[i].timestamp < rec->events[i - 1].timestamp)
            runs++;
    return runs;
}

static void push_run (fj_heap_t *h, fj_record_t *rec, uint32_t pos,
                      uint32_t end)
{
    fj_run_t *run = &h->runs[h->count];
    run->timestamp = rec->events[pos].timestamp;
    run->seq = rec->events[pos].seq;
    run->record = rec;
    run->pos = pos;
    run->end = end;
    sift_up (h, h->count++);
}

int fj_heap_add_record (fj_heap_t *h, fj_record_t *rec)
{
    uint32_t start = 0;
    int rc = fj_reserve ((void **)&h->runs, &h->cap,
                         h->count + count_runs (rec), sizeof (fj_run_t), 64);

    if (rc < 0)
        return rc;
    for (uint32_t i = 1; i <= rec->nevents; i++) {
        if (i == rec->nevents
            || rec->events[i].timestamp < rec->events[i - 1].timestamp) {
            push_run (h, rec, start, i);
            start = i;
        }
    }
    return 0;
}

void fj_heap_advance_top (fj_heap_t *h)
{
    fj_run_t *top = &h->runs[0];

    if (++top->pos < top->end) {
        const fj_rec_event_t *next = &top->record->events[top->pos];
        top->timestamp = next->timestamp;
        top->seq = next->seq;
    }
    else {
        h->runs[0] = h->runs[--h->count];
        if (h->count == 0)
            return;
    }
    sift_down (h, 0);
}
