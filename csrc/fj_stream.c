/* fj_stream.c - journal stream state: responses in, ordered events out.
 * See fj_stream.h for the protocol and the delivery order.
 */
#include <stdlib.h>
#include <string.h>

#include "fj_grow.h"
#include "fj_heap.h"
#include "fj_names.h"
#include "fj_port.h"
#include "fj_record.h"
#include "fj_slab.h"
#include "fj_stream.h"

struct queue {
    fj_record_t *head;
    fj_record_t *tail;
};

struct pick;

struct fj_stream {
    unsigned flags;
    double since;
    int in_history;       /* before the sentinel, if FJ_STREAM_HISTORY */
    int ended;
    uint64_t next_seq;
    fj_payload_t scratch; /* reused index of the response being fed */
    fj_heap_t history;    /* ordered history runs */
    struct queue ready;   /* deliverable after the heap, in order */
    struct queue deferred;/* markers queued during ordered history */
    fj_names_t names;
    fj_names_t allow;     /* name filters; empty allow = all allowed */
    fj_names_t deny;
    int have_last;        /* last_ts holds the last popped timestamp */
    double last_ts;
    int have_check;       /* flag events in [check_lo, check_hi] too */
    double check_lo, check_hi;
    struct pick *picks;   /* scratch for record_build() */
    size_t picks_cap;
    fj_slabs_t slabs;     /* where event records are carved */
    fj_stats_t stats;
};

static void queue_push (struct queue *q, fj_record_t *rec)
{
    rec->next = NULL;
    if (q->tail)
        q->tail->next = rec;
    else
        q->head = rec;
    q->tail = rec;
}

static fj_record_t *queue_pop (struct queue *q)
{
    fj_record_t *rec = q->head;
    if (rec && !(q->head = rec->next))
        q->tail = NULL;
    return rec;
}

/* Move all of src to the end of dst. */
static void queue_splice (struct queue *dst, struct queue *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* Give back a record (events or marker) once done with it. */
static void record_free (fj_record_t *rec)
{
    if (rec->kind == FJ_RECORD_EVENTS)
        fj_slab_release (rec->slab, rec, rec->size);
    else
        free (rec);
}

static void queue_free (struct queue *q)
{
    fj_record_t *rec;
    while ((rec = queue_pop (q)))
        record_free (rec);
}

fj_stream_t *fj_stream_create (unsigned flags, double since)
{
    fj_stream_t *s = calloc (1, sizeof (*s));
    if (!s)
        return NULL;
    s->flags = flags;
    s->since = since;
    s->in_history = (flags & FJ_STREAM_HISTORY) != 0;
    fj_payload_init (&s->scratch);
    fj_heap_init (&s->history);
    fj_names_init (&s->names);
    fj_names_init (&s->allow);
    fj_names_init (&s->deny);
    fj_slabs_init (&s->slabs);
    return s;
}

void fj_stream_destroy (fj_stream_t *s)
{
    if (!s)
        return;
    /* A record in the heap may own several runs.  Move each to the ready
     * queue once (zeroing `remaining` marks it moved), then free the queue.
     * Heap records are never in a queue, so no record is freed twice. */
    for (size_t i = 0; i < s->history.count; i++) {
        fj_record_t *rec = s->history.runs[i].record;
        if (rec->remaining) {
            rec->remaining = 0;
            queue_push (&s->ready, rec);
        }
    }
    queue_free (&s->ready);
    queue_free (&s->deferred);
    fj_slabs_close (&s->slabs);
    fj_heap_release (&s->history);
    fj_payload_release (&s->scratch);
    fj_names_release (&s->names);
    fj_names_release (&s->allow);
    fj_names_release (&s->deny);
    free (s->picks);
    free (s);
}

static fj_record_t *marker_new (int32_t tag)
{
    fj_record_t *rec = calloc (1, sizeof (*rec));
    if (rec) {
        rec->kind = FJ_RECORD_MARKER;
        rec->marker = tag;
    }
    return rec;
}

/* History is complete (sentinel or end of stream): what was deferred, then
 * the closing marker, become deliverable after the history heap. */
static int close_history (fj_stream_t *s, int32_t tag)
{
    fj_record_t *rec = marker_new (tag);
    if (!rec)
        return -FJ_ENOMEM;
    s->in_history = 0;
    queue_splice (&s->ready, &s->deferred);
    queue_push (&s->ready, rec);
    return 0;
}

static int is_sentinel (const fj_stream_t *s, const fj_payload_t *p)
{
    if (s->flags & FJ_STREAM_JOB)
        return p->id_kind == FJ_ID_INT && p->id == -1;
    return p->nentries == 0;
}

/* What an event's raw name earns it (FJ_EV_* bits): the attachment it
 * carries, and for a regular job event named "clean" FJ_EV_FINAL (Python
 * keeps one JobID per job while the job may still have events). */
static uint32_t name_flags (fj_stream_t *s, const fj_payload_t *p,
                            int32_t name, const fj_entry_t *e, int irregular)
{
    uint32_t meaning;

    if (s->flags & FJ_STREAM_RESOURCE)
        return p->R_member >= 0 ? FJ_EV_R : 0;
    if (!(s->flags & FJ_STREAM_JOB))
        return 0;
    meaning = name >= 0 ? s->names.names[name].flags
                        : fj_name_flags (p->buf + e->name.off, e->name.len);
    if ((meaning & FJ_NAME_SUBMIT) && p->jobspec_member >= 0)
        return FJ_EV_JOBSPEC;
    if ((meaning & FJ_NAME_ALLOC) && p->R_member >= 0)
        return FJ_EV_R;
    if ((meaning & FJ_NAME_CLEAN) && !irregular)
        return FJ_EV_FINAL;
    return 0;
}

/* Per-event delivery decisions for the response being fed, made in
 * record_build()'s first pass and used in its second. */
struct pick {
    int32_t name;
    uint32_t flags;     /* FJ_EV_* or FJ_PICK_DROPPED */
};

#define FJ_PICK_DROPPED 0xFFFFFFFFu

/* True if the name filters drop this raw name. */
static int dropped (const fj_stream_t *s, const char *raw, uint32_t len)
{
    if (s->allow.count && !fj_names_contains (&s->allow, raw, len))
        return 1;
    return s->deny.count && fj_names_contains (&s->deny, raw, len);
}

/* Whether entry e passes the filters (since, then name). */
static int keep (fj_stream_t *s, const fj_payload_t *p, const fj_entry_t *e,
                 int32_t *name)
{
    const char *raw = p->buf + e->name.off;

    if (!(e->timestamp > s->since)) {
        s->stats.filtered_since++;
        return 0;
    }
    *name = fj_names_intern (&s->names, raw, e->name.len);
    if (*name >= 0) {
        fj_name_t *n = &s->names.names[*name];
        if (!(n->flags & FJ_NAME_CHECKED))
            n->flags |= FJ_NAME_CHECKED
                        | (dropped (s, raw, e->name.len) ? FJ_NAME_DROP : 0);
        if (!(n->flags & FJ_NAME_DROP))
            return 1;
    }
    else if (!dropped (s, raw, e->name.len))
        return 1;
    s->stats.filtered_name++;
    return 0;
}

/* Decide flags of kept entry e; returns the bytes it keeps. */
static size_t pick (fj_stream_t *s, const fj_payload_t *p,
                    const fj_entry_t *e, int32_t name, struct pick *out)
{
    out->name = name;
    out->flags = 0;
    if ((e->flags & FJ_ENTRY_IRREGULAR) || out->name < 0)
        out->flags |= FJ_EV_IRREGULAR;
    if (e->flags & FJ_ENTRY_WIDE_INT)
        out->flags |= FJ_EV_WIDE_INT;
    if (e->flags & FJ_ENTRY_ISOLATE)
        out->flags |= FJ_EV_ISOLATE;
    out->flags |= name_flags (s, p, out->name, e,
                              (out->flags & FJ_EV_IRREGULAR) != 0);
    return (out->flags & FJ_EV_IRREGULAR) ? e->entry.len : e->context.len;
}

/* Copy member text into the record's data; returns the span. */
static fj_span_t keep_member (const fj_payload_t *p, int member,
                              fj_record_t *rec, char **out)
{
    fj_span_t from = p->members[member].value;
    fj_span_t to = { (uint32_t)(*out - rec->data), from.len };
    memcpy (*out, p->buf + from.off, from.len);
    *out += from.len;
    return to;
}

/* Copy what delivery needs of the parsed response into one record.
 * Returns the record, NULL with *empty set if no event passed `since`, or
 * NULL if out of memory. */
static fj_record_t *record_build (fj_stream_t *s, const fj_payload_t *p,
                                  int *empty)
{
    uint32_t nkept = 0, attach = 0;
    size_t data = 0;
    fj_record_t *rec;
    char *out;

    *empty = 0;
    if (fj_reserve ((void **)&s->picks, &s->picks_cap, p->nentries,
                    sizeof (struct pick), 64) < 0)
        return NULL;
    for (size_t i = 0; i < p->nentries; i++) {
        const fj_entry_t *e = &p->entries[i];
        int32_t name;
        if (!keep (s, p, e, &name)) {
            s->picks[i].flags = FJ_PICK_DROPPED;
            continue;
        }
        data += pick (s, p, e, name, &s->picks[i]);
        attach |= s->picks[i].flags;
        nkept++;
    }
    if (nkept == 0) {
        *empty = 1;
        return NULL;
    }
    if (attach & FJ_EV_JOBSPEC)
        data += p->members[p->jobspec_member].value.len;
    if (attach & FJ_EV_R)
        data += p->members[p->R_member].value.len;
    size_t size = sizeof (*rec) + nkept * sizeof (fj_rec_event_t) + data;
    fj_slab_t *slab;
    if (!(rec = fj_slab_alloc (&s->slabs, size, &slab)))
        return NULL;
    memset (rec, 0, sizeof (*rec));
    rec->slab = slab;
    rec->size = size;
    rec->kind = FJ_RECORD_EVENTS;
    rec->id = p->id_kind == FJ_ID_INT ? p->id : 0;
    rec->nevents = rec->remaining = nkept;
    rec->events = (fj_rec_event_t *)(rec + 1);
    rec->data = (char *)(rec->events + nkept);
    out = rec->data;
    for (size_t i = 0, k = 0; i < p->nentries; i++) {
        const fj_entry_t *e = &p->entries[i];
        if (s->picks[i].flags == FJ_PICK_DROPPED)
            continue;
        fj_rec_event_t *ev = &rec->events[k++];
        fj_span_t text;
        ev->timestamp = e->timestamp;
        ev->seq = s->next_seq++;
        ev->name = s->picks[i].name;
        ev->flags = s->picks[i].flags;
        text = (ev->flags & FJ_EV_IRREGULAR) ? e->entry : e->context;
        memcpy (out, p->buf + text.off, text.len);
        ev->text.off = (uint32_t)(out - rec->data);
        ev->text.len = text.len;
        out += text.len;
    }
    if (attach & FJ_EV_JOBSPEC)
        rec->jobspec = keep_member (p, p->jobspec_member, rec, &out);
    if (attach & FJ_EV_R)
        rec->R = keep_member (p, p->R_member, rec, &out);
    return rec;
}

static void count_backlog (fj_stream_t *s, uint64_t n)
{
    s->stats.backlog += n;
    if (s->stats.backlog > s->stats.peak_backlog)
        s->stats.peak_backlog = s->stats.backlog;
}

int fj_stream_feed (fj_stream_t *s, const char *buf, size_t len,
                    fj_error_t *err)
{
    fj_payload_t *p = &s->scratch;
    fj_record_t *rec;
    int empty, rc;

    s->stats.responses++;
    s->stats.bytes += len;
    if (s->ended)
        return FJ_FED;
    if ((rc = fj_payload_parse (p, buf, len, err)) < 0)
        return rc;
    if ((s->flags & FJ_STREAM_JOB) && p->id_kind != FJ_ID_INT)
        return fj_fail (err, FJ_EID, 0);
    s->stats.events += p->nentries;
    if (is_sentinel (s, p)) {
        if (!s->in_history)
            return FJ_FED;   /* no history phase, or a repeat: nothing */
        if (close_history (s, FJ_MARK_SENTINEL) < 0)
            goto nomem;
        return FJ_FED_SENTINEL;
    }
    if (!(rec = record_build (s, p, &empty))) {
        if (empty)
            return FJ_FED;
        goto nomem;
    }
    if (s->in_history && (s->flags & FJ_STREAM_ORDERED)) {
        if (fj_heap_add_record (&s->history, rec) < 0) {
            record_free (rec);
            goto nomem;
        }
    }
    else
        queue_push (&s->ready, rec);
    if (s->in_history)
        s->stats.history += rec->nevents;
    count_backlog (s, rec->nevents);
    return FJ_FED;
nomem:
    return fj_fail (err, FJ_ENOMEM, 0);
}

int fj_stream_filter (fj_stream_t *s, const char *name, size_t len,
                      int deny)
{
    int32_t rc;

    if (len > UINT32_MAX)
        return -FJ_ETOOBIG;
    rc = fj_names_intern (deny ? &s->deny : &s->allow, name, (uint32_t)len);
    return rc < 0 ? rc : 0;
}

void fj_stream_check_range (fj_stream_t *s, double lo, double hi)
{
    s->have_check = 1;
    s->check_lo = lo;
    s->check_hi = hi;
}

int fj_stream_feed_many (fj_stream_t *s, const char *buf, const size_t *lens,
                         size_t n, fj_error_t *err, size_t *fed)
{
    *fed = 0;
    while (*fed < n) {
        size_t len = lens[*fed];
        int rc = fj_stream_feed (s, buf, len, err);
        buf += len;
        (*fed)++;
        if (rc != FJ_FED)
            return rc;
    }
    return FJ_FED;
}

int fj_stream_feed_cstr (fj_stream_t *s, const char *str, fj_error_t *err)
{
    return fj_stream_feed (s, str, strlen (str), err);
}

int fj_stream_mark (fj_stream_t *s, int32_t tag)
{
    fj_record_t *rec = marker_new (tag);
    if (!rec)
        return -FJ_ENOMEM;
    if (s->in_history && (s->flags & FJ_STREAM_ORDERED))
        queue_push (&s->deferred, rec);
    else
        queue_push (&s->ready, rec);
    return 0;
}

int fj_stream_end (fj_stream_t *s)
{
    if (s->ended)
        return 0;
    int rc = close_history (s, FJ_MARK_END);
    if (rc < 0)
        return rc;
    s->ended = 1;
    return 0;
}

int fj_stream_in_history (const fj_stream_t *s)
{
    return s->in_history && (s->flags & FJ_STREAM_ORDERED);
}

const fj_stats_t *fj_stream_stats (const fj_stream_t *s)
{
    return &s->stats;
}

int32_t fj_stream_name_count (const fj_stream_t *s)
{
    return (int32_t)s->names.count;
}

const char *fj_stream_name (const fj_stream_t *s, int32_t i, size_t *len)
{
    if (i < 0 || (uint32_t)i >= s->names.count) {
        *len = 0;
        return NULL;
    }
    *len = s->names.names[i].len;
    return s->names.names[i].raw;
}

fj_batch_t *fj_batch_create (size_t cap)
{
    fj_batch_t *b = calloc (1, sizeof (*b));
    if (!b || cap == 0)
        goto fail;
    b->cap = cap;
    b->timestamp = malloc (cap * sizeof (double));
    b->id = malloc (cap * sizeof (int64_t));
    b->name = malloc (cap * sizeof (int32_t));
    b->flags = malloc (cap * sizeof (uint32_t));
    b->attach_off = malloc (cap * sizeof (uint32_t));
    b->attach_size = malloc (cap * sizeof (uint32_t));
    b->text_cap = 4096;
    b->text = malloc (b->text_cap);
    b->attach_cap = 4096;
    b->attach = malloc (b->attach_cap);
    if (!b->timestamp || !b->id || !b->name || !b->flags || !b->text
        || !b->attach_off || !b->attach_size || !b->attach)
        goto fail;
    return b;
fail:
    fj_batch_destroy (b);
    return NULL;
}

void fj_batch_destroy (fj_batch_t *b)
{
    if (!b)
        return;
    free (b->timestamp);
    free (b->id);
    free (b->name);
    free (b->flags);
    free (b->text);
    free (b->attach_off);
    free (b->attach_size);
    free (b->attach);
    free (b);
}

/* Make room for n more bytes in a growing byte buffer. */
static int reserve_bytes (char **buf, size_t *cap, size_t len, size_t n)
{
    return fj_reserve ((void **)buf, cap, len + n, 1, 4096);
}

static int text_reserve (fj_batch_t *b, size_t n)
{
    return reserve_bytes (&b->text, &b->text_cap, b->text_len, n);
}

static void text_put (fj_batch_t *b, const char *p, size_t n)
{
    memcpy (b->text + b->text_len, p, n);
    b->text_len += n;
}

/* Write event ev of rec as batch item b->count. */
static int emit (fj_stream_t *s, fj_batch_t *b, const fj_record_t *rec,
                 const fj_rec_event_t *ev)
{
    /* item or "{}", a comma, and the closing "]" */
    size_t need = ev->text.len + 2 + 1 + 1;
    size_t i = b->count;
    int carrier = (ev->flags & (FJ_EV_JOBSPEC | FJ_EV_R)) != 0;
    fj_span_t attached = { 0, 0 };

    if (ev->flags & FJ_EV_JOBSPEC)
        attached = rec->jobspec;
    else if (ev->flags & FJ_EV_R)
        attached = rec->R;
    if (b->attach_len + attached.len > UINT32_MAX)
        return -FJ_ETOOBIG;   /* offsets are 32-bit: for the next batch */
    if (text_reserve (b, need) < 0
        || reserve_bytes (&b->attach, &b->attach_cap, b->attach_len,
                          attached.len) < 0)
        return -FJ_ENOMEM;
    if (i > 0)
        text_put (b, ",", 1);
    if (ev->text.len)
        text_put (b, rec->data + ev->text.off, ev->text.len);
    else
        text_put (b, "{}", 2);
    if (carrier) {
        b->attach_off[b->nattach] = (uint32_t)b->attach_len;
        b->attach_size[b->nattach] = attached.len;
        b->nattach++;
        memcpy (b->attach + b->attach_len, rec->data + attached.off,
                attached.len);
        b->attach_len += attached.len;
    }
    b->timestamp[i] = ev->timestamp;
    b->id[i] = rec->id;
    b->name[i] = (ev->flags & FJ_EV_IRREGULAR) ? -1 : ev->name;
    b->flags[i] = ev->flags & ~(FJ_EV_WIDE_INT | FJ_EV_ISOLATE); /* pop's */
    if (ev->flags & FJ_EV_WIDE_INT)
        b->text_wide_int = 1;
    if ((s->have_last && ev->timestamp == s->last_ts)
        || (s->have_check && ev->timestamp >= s->check_lo
            && ev->timestamp <= s->check_hi))
        b->flags[i] |= FJ_EV_TIE;
    s->have_last = 1;
    s->last_ts = ev->timestamp;
    b->count++;
    s->stats.delivered++;
    s->stats.backlog--;
    return 0;
}

/* Deliver the next history event from the heap. */
static int pop_history (fj_stream_t *s, fj_batch_t *b)
{
    fj_run_t *top = fj_heap_top (&s->history);
    fj_record_t *rec = top->record;
    int rc;

    /* The next event comes from this run or, usually, from one of the
     * top's children: start loading theirs (records are far apart in a
     * large history, so each would be a cache miss) while this one is
     * written out. */
    for (size_t i = 1; i <= 2 && i < s->history.count; i++) {
        const fj_run_t *next = &s->history.runs[i];
        FJ_PREFETCH (&next->record->events[next->pos]);
    }

    if ((rc = emit (s, b, rec, &rec->events[top->pos])) < 0)
        return rc;
    fj_heap_advance_top (&s->history);
    if (--rec->remaining == 0)
        record_free (rec);
    return 0;
}

/* Deliver the next event of the record at the head of the ready queue. */
static int pop_ready (fj_stream_t *s, fj_batch_t *b, fj_record_t *rec)
{
    int rc = emit (s, b, rec, &rec->events[rec->cursor]);
    if (rc < 0)
        return rc;
    rec->cursor++;
    if (--rec->remaining == 0)
        record_free (queue_pop (&s->ready));
    return 0;
}

/* Flags of the next deliverable event (0 if the next item is a marker or
 * nothing is deliverable). */
static uint32_t next_flags (fj_stream_t *s)
{
    fj_run_t *top = fj_heap_top (&s->history);
    fj_record_t *rec = s->ready.head;

    if (top)
        return top->record->events[top->pos].flags;
    if (rec && rec->kind == FJ_RECORD_EVENTS)
        return rec->events[rec->cursor].flags;
    return 0;
}

int fj_stream_pop (fj_stream_t *s, fj_batch_t *b, size_t max)
{
    b->count = 0;
    b->marker = 0;
    b->one = 0;
    b->text_len = 0;
    b->text_wide_int = 0;
    b->attach_len = 0;
    b->nattach = 0;
    if (max > b->cap)
        max = b->cap;
    if (text_reserve (b, 2) < 0)
        return -FJ_ENOMEM;
    text_put (b, "[", 1);
    while (b->count < max && !fj_stream_in_history (s)) {
        fj_record_t *rec;
        int rc;
        int alone = (next_flags (s) & FJ_EV_ISOLATE) != 0;
        if (alone && b->count > 0)
            break;
        if (fj_heap_top (&s->history))
            rc = pop_history (s, b);
        else if (!(rec = s->ready.head))
            break;
        else if (rec->kind == FJ_RECORD_MARKER) {
            if (b->count == 0) {
                b->marker = rec->marker;
                record_free (queue_pop (&s->ready));
            }
            break;
        }
        else
            rc = pop_ready (s, b, rec);
        if (rc < 0) {
            if (b->count == 0)
                return rc;
            break;   /* deliver what fits; the rest stays queued */
        }
        if (alone)
            break;
    }
    /* room for "]" was reserved above or by the last emit() */
    text_put (b, "]", 1);
    b->names = (int32_t)s->names.count;
    b->more = !fj_stream_in_history (s)
              && (fj_heap_top (&s->history) || s->ready.head);
    b->one = b->count == 1 && !b->more && !b->text_wide_int
             && !(b->flags[0] & (FJ_EV_IRREGULAR | FJ_EV_TIE));
    return (int)b->count;
}
