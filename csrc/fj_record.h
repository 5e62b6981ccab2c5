/* fj_record.h - what flux-journal keeps of one journal response.
 *
 * When a response arrives, only what delivery will need is copied out of
 * the payload into one allocation: each kept event's timestamp, interned
 * name and context text, plus "jobspec"/"R" text when a kept event will
 * carry it.  Events dropped by the `since` filter cost nothing.  The record
 * is released when its last event has been delivered.
 */
#ifndef FJ_RECORD_H
#define FJ_RECORD_H

#include <stdint.h>

#include "fj_payload.h"
#include "fj_slab.h"

/* fj_rec_event_t.flags and fj_batch_t.flags */
#define FJ_EV_IRREGULAR 0x1u  /* text is the whole entry, to decode fully */
#define FJ_EV_JOBSPEC   0x2u  /* the event carries the record's jobspec */
#define FJ_EV_R         0x4u  /* the event carries the record's R */
#define FJ_EV_TIE       0x8u  /* batch only: same timestamp as the event
                                 popped just before it, or inside the
                                 stream's check range */
#define FJ_EV_WIDE_INT  0x10u /* text has an integer literal of
                                 FJ_WIDE_INT_DIGITS or more digits */
#define FJ_EV_ISOLATE   0x20u /* popped in a batch of its own (see
                                 FJ_ENTRY_ISOLATE) */
#define FJ_EV_FINAL     0x40u /* a job's "clean" event, its last (RFC 21):
                                 Python need not remember the job after it */

typedef struct {
    double timestamp;
    uint64_t seq;       /* arrival order over the whole stream */
    fj_span_t text;     /* context (or whole entry if irregular) in data */
    int32_t name;       /* index in the stream's name table, -1 if none */
    uint32_t flags;
} fj_rec_event_t;

/* A record is either a response's events or a marker (sentinel, end of
 * stream, or a caller-defined tag such as a deferred error). */
enum fj_record_kind { FJ_RECORD_EVENTS, FJ_RECORD_MARKER };

typedef struct fj_record fj_record_t;
struct fj_record {
    fj_record_t *next;      /* queue link */
    int kind;               /* enum fj_record_kind */
    int32_t marker;         /* tag, for FJ_RECORD_MARKER */
    int64_t id;             /* the response's "id" (job id), or 0 */
    uint32_t nevents;
    uint32_t remaining;     /* events not yet delivered */
    uint32_t cursor;        /* next event to deliver in arrival order */
    fj_span_t jobspec;      /* in data; len 0 when not kept */
    fj_span_t R;
    fj_rec_event_t *events; /* nevents, inside the same allocation */
    char *data;             /* copied text, inside the same allocation */
    fj_slab_t *slab;        /* the block it was carved from (fj_slab.h),
                               NULL for a marker or a record of its own */
    size_t size;            /* bytes allocated */
};

#endif /* FJ_RECORD_H */
