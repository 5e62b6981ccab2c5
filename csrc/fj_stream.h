/* fj_stream.h - one journal stream: responses in, ordered events out.
 *
 * The journal protocol (flux-core's job-manager journal.c, resource
 * reslog.c): a streaming RPC whose responses first replay history, then a
 * sentinel response, then one response per live event, until the service
 * ends the stream with an error (ENODATA after a cancel).
 *
 *   feed():  a raw response payload is parsed (fj_payload), its events
 *            newer than `since` are copied into a record (fj_record.h) and
 *            the record is queued: in the history heap (fj_heap) while an
 *            ordered stream is replaying history, else in arrival order.
 *   mark():  a caller tag (an error to raise later, say) is queued at the
 *            current point of the stream.
 *   end():   no more responses; buffered history becomes deliverable.
 *   pop():   up to `max` events are written into a batch (fj_batch_t) for
 *            Python, in delivery order, stopping before any marker; a
 *            marker is popped alone.
 *
 * Delivery order: nothing while an ordered stream is in history; then the
 * history heap until empty; then the queue (markers deferred during
 * history, the sentinel marker, live records).  A stream holds no global
 * state: distinct streams may be used from distinct threads, one stream
 * from one thread at a time.
 */
#ifndef FJ_STREAM_H
#define FJ_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "fj_error.h"
#include "fj_payload.h"

/* fj_stream_create() flags */
#define FJ_STREAM_HISTORY  0x1u /* the service replays history, then a sentinel */
#define FJ_STREAM_ORDERED  0x2u /* order history by timestamp before delivery */
#define FJ_STREAM_JOB      0x4u /* job-manager journal: integer "id" required,
                                   sentinel is id -1, jobspec rides on submit
                                   and R on alloc */
#define FJ_STREAM_RESOURCE 0x8u /* resource journal: sentinel is an empty
                                   events array, R rides on every event of the
                                   response carrying it */

/* Marker tags popped by fj_stream_pop(); callers use tags >= FJ_MARK_USER */
#define FJ_MARK_SENTINEL 1
#define FJ_MARK_END      2
#define FJ_MARK_USER     16

/* fj_stream_feed() results */
#define FJ_FED 0
#define FJ_FED_SENTINEL 1   /* this response was the sentinel */

typedef struct {
    uint64_t responses;         /* responses fed, valid or not */
    uint64_t bytes;             /* payload bytes fed */
    uint64_t events;            /* events in valid responses */
    uint64_t filtered_since;    /* events dropped by `since` */
    uint64_t filtered_name;     /* events dropped by name filters */
    uint64_t delivered;         /* events popped */
    uint64_t backlog;           /* events kept, not yet popped */
    uint64_t peak_backlog;
    uint64_t history;           /* events kept from history */
} fj_stats_t;

typedef struct {
    size_t cap;             /* arrays' length */
    size_t count;           /* events in this batch */
    int32_t marker;         /* a marker popped alone (count 0), else 0 */
    int32_t names;          /* size of the stream's name table */
    int more;               /* more is deliverable right now */
    int one;                /* count is 1, that event is neither
                               FJ_EV_IRREGULAR nor FJ_EV_TIE, its text
                               has no wide integer, and nothing more is
                               deliverable: a live step's usual batch,
                               which Python builds from a few fields */
    double *timestamp;
    int64_t *id;
    int32_t *name;          /* name table index, -1 if irregular */
    uint32_t *flags;        /* FJ_EV_* */
    char *text;             /* JSON array: per event its context, or the
                               whole entry if irregular */
    size_t text_len;
    size_t text_cap;
    int text_wide_int;      /* text has an integer literal of
                               FJ_WIDE_INT_DIGITS or more digits */
    /* The jobspec or R of each event that carries one (FJ_EV_JOBSPEC /
     * FJ_EV_R), in batch order: `nattach` (offset, size) pairs of JSON
     * text in `attach`, decoded by Python only if asked for.  Listing
     * only carriers keeps Python's work per batch to the few that are. */
    size_t nattach;
    uint32_t *attach_off;
    uint32_t *attach_size;
    char *attach;
    size_t attach_len;
    size_t attach_cap;
} fj_batch_t;

typedef struct fj_stream fj_stream_t;

fj_stream_t *fj_stream_create (unsigned flags, double since);
void fj_stream_destroy (fj_stream_t *s);

/* Add a name filter, before the first feed: with deny 0, only allowed
 * names are delivered (once any is allowed); with deny 1, the name never
 * is.  Names are UTF-8, unescaped.  0, or -FJ_EFULL when this filter
 * already holds FJ_MAX_NAMES names, -FJ_ENOMEM, -FJ_ETOOBIG (4 GiB). */
int fj_stream_filter (fj_stream_t *s, const char *name, size_t len,
                      int deny);

/* Flag every popped event with a timestamp in [lo, hi] FJ_EV_TIE too, for
 * a consumer resuming from a cursor to check them against the events it
 * says were delivered. */
void fj_stream_check_range (fj_stream_t *s, double lo, double hi);

/* Feed one response payload.  Returns FJ_FED or FJ_FED_SENTINEL, or a
 * negated fj_errnum with *err set (the response is dropped, the stream is
 * unchanged otherwise). */
int fj_stream_feed (fj_stream_t *s, const char *buf, size_t len,
                    fj_error_t *err);

/* Feed payloads laid end to end in buf, lens[i] bytes each, as that many
 * calls of fj_stream_feed() would: one call from Python for a burst of
 * responses.  Stops after the sentinel or at a payload refused, setting
 * *fed to the number of payloads consumed (the refused one included) and
 * returning that payload's result: FJ_FED (all n consumed), FJ_FED_SENTINEL,
 * or a negated fj_errnum with *err set. */
int fj_stream_feed_many (fj_stream_t *s, const char *buf, const size_t *lens,
                         size_t n, fj_error_t *err, size_t *fed);

/* Same for a NUL-terminated payload, e.g. flux_rpc_get()'s pointer. */
int fj_stream_feed_cstr (fj_stream_t *s, const char *str, fj_error_t *err);

/* Queue marker `tag` (>= FJ_MARK_USER) at this point.  0, or
 * -FJ_ENOMEM. */
int fj_stream_mark (fj_stream_t *s, int32_t tag);

/* The service ended the stream: history becomes deliverable, followed by
 * FJ_MARK_END.  Later feeds are ignored.  0, or -FJ_ENOMEM. */
int fj_stream_end (fj_stream_t *s);

/* True while an ordered stream is still gathering history. */
int fj_stream_in_history (const fj_stream_t *s);

/* Pop up to min(max, b->cap) events into b.  Returns the count (0 with
 * b->marker set if a marker was popped, 0 with b->marker 0 if nothing is
 * deliverable), or -FJ_ENOMEM (-FJ_ETOOBIG for one attachment over
 * 4 GiB): nothing popped. */
int fj_stream_pop (fj_stream_t *s, fj_batch_t *b, size_t max);

const fj_stats_t *fj_stream_stats (const fj_stream_t *s);

/* Interned names: count, and the raw JSON string contents of name i. */
int32_t fj_stream_name_count (const fj_stream_t *s);
const char *fj_stream_name (const fj_stream_t *s, int32_t i, size_t *len);

fj_batch_t *fj_batch_create (size_t cap);
void fj_batch_destroy (fj_batch_t *b);

#endif /* FJ_STREAM_H */
