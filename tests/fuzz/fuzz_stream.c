/* fuzz_stream.c - libFuzzer target for one fj_stream_t (csrc/fj_stream.c,
 * fj_heap.c, fj_names.c, fj_slab.c) driven by a program read from the input.
 *
 * Build and run through tests/fuzz/run.sh, which does (roughly):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -Icsrc tests/fuzz/fuzz_stream.c \
 *         csrc/[a-z]*.c -o fuzz_stream
 *   ./fuzz_stream -max_len=65536 CORPUS_DIR
 *
 * To replay one input (a crash file, a regression): ./fuzz_stream FILE
 *
 * The 64 KiB cap per input (-max_len=65536) keeps one execution around a
 * millisecond; a few inputs filling the name table take ~30 ms.
 *
 * Input format (a byte reader; running out of bytes reads zeros):
 *   byte 0   stream flags (low 4 bits: HISTORY, ORDERED, JOB, RESOURCE)
 *   byte 1   `since`, an index into SINCE[]
 *   byte 2   batch capacity (< 128: 1..16, else 4096 as core.py uses)
 *   byte 3   number of name filters (0..3, fj_stream_filter()), each one
 *            byte: allow/deny and an index into FILTERS[]
 *   byte 4   odd: fj_stream_check_range() with a range from CHECKS[]
 *   then operations, one opcode byte each (see run_program()): feed a
 *   journal response generated from the following bytes (random ids,
 *   timestamps with ties and reversals, names incl. escaped "submit",
 *   contexts, jobspec/R, odd layouts), feed raw bytes, feed a generated
 *   response with one mutation, feed a sentinel, feed through
 *   fj_stream_feed_cstr(), feed thousands of distinct names (to overflow
 *   the name table), mark, end, pop with a random max, drain, and 0xFF:
 *   destroy the stream mid-way.  When the program runs out the stream is
 *   ended and drained, so every kept event must have come out.
 *   Seed programs are made from the captured fixtures by run.sh (opcode
 *   FEED_RAW, 2-byte little-endian length, payload).
 *
 * Why a model: the stream's contract (fj_stream.h) is precise enough to be
 * simulated exactly.  The model below tracks every event fed (with its own
 * arrival counter), the history to be stably sorted by timestamp, the
 * ready queue with markers, the deferred markers, the name table, the name
 * filters (on decoded names, as Python compares str objects) and all the
 * counters, and each pop must match it byte for byte: count, marker,
 * timestamps (bits), ids, name indices, flags (FJ_EV_TIE included), the
 * batch text, text_wide_int and the jobspec/R attachments (nattach,
 * attach_off, attach_size, attach).  Beyond that exact match, the invariants the
 * hostile-input issue asks for are also checked
 * directly: nothing pops in ordered history; history pops non-decreasing
 * in time with ties in arrival order; delivered <= fed - filtered; the
 * batch text is one JSON array with the expected number of elements;
 * every kept event is popped exactly once by the end; the stats add up.
 * The model reads each response with fj_payload_parse() (the scanner has
 * its own differential target, fuzz_payload.c) but decides everything the
 * stream does on its own; for generated responses it also checks the
 * parsed timestamps against strtod() of the literals it wrote.
 * LeakSanitizer checks that destroying a stream in any state frees all.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_names.h"
#include "fj_payload.h"
#include "fj_record.h"
#include "fj_stream.h"
#include "oracle_string.h"

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf (stderr, "fuzz_stream: check failed at line %d: %s\n", \
                     __LINE__, #cond);                                     \
            abort ();                                                      \
        }                                                                  \
    } while (0)

/* ------------------------------------------------------------------------
 * Input reader and a growable string.
 */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8 (struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static unsigned u16 (struct in *in)
{
    unsigned lo = u8 (in);
    return lo | (unsigned)u8 (in) << 8;
}

struct str {
    char *s;
    size_t len;
    size_t cap;
};

static void put (struct str *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        s->s = realloc (s->s, cap);
        CHECK (s->s);
        s->cap = cap;
    }
    memcpy (s->s + s->len, p, n);
    s->len += n;
    s->s[s->len] = '\0';
}

static void puts_ (struct str *s, const char *p)
{
    put (s, p, strlen (p));
}

static void putf (struct str *s, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    CHECK (n >= 0);
    char *buf = malloc ((size_t)n + 1);
    CHECK (buf);
    va_start (ap, fmt);
    vsnprintf (buf, (size_t)n + 1, fmt, ap);
    va_end (ap);
    put (s, buf, (size_t)n);
    free (buf);
}

/* ------------------------------------------------------------------------
 * The model.
 */

struct mev {                 /* one kept event */
    double ts;
    uint64_t seq;            /* our own arrival counter */
    int64_t id;
    int32_t name;            /* expected batch name index (-1 irregular) */
    uint32_t flags;          /* expected FJ_EV_* */
    char *item;              /* expected batch text of this event */
    size_t item_len;
    char *attach;            /* the jobspec or R it carries, or NULL */
    size_t attach_len;
    int popped;
    int history;             /* fed during ordered history */
    int wide;                /* FJ_ENTRY_WIDE_INT: sets text_wide_int */
    int isolate;             /* FJ_ENTRY_ISOLATE: popped in a batch alone */
};

struct qitem {
    int32_t marker;          /* nonzero: a marker */
    struct mev *ev;
};

#define NAME_SLOTS 16384     /* > 2 * FJ_MAX_NAMES, a power of two */

struct model {
    unsigned flags;
    double since;
    int in_history;
    int ended;
    uint64_t seq;
    /* ordered history, sorted at close */
    struct mev **heap;
    size_t heap_n, heap_cap, heap_pos;
    /* the ready queue */
    struct qitem *ready;
    size_t ready_n, ready_cap, ready_head;
    /* markers deferred during ordered history */
    int32_t *deferred;
    size_t deferred_n, deferred_cap;
    /* every kept event, to check and free at the end */
    struct mev **all;
    size_t all_n, all_cap;
    /* the name table */
    char **name_raw;
    uint32_t *name_len;
    size_t nnames;
    int32_t slots[NAME_SLOTS];
    /* name filters, UTF-8 as fj_stream_filter() takes them */
    const char *filter[4];
    size_t filter_len[4];
    int filter_deny[4];
    int nfilters, nallow;
    /* FJ_EV_TIE: the timestamp popped last, and the check range */
    int have_tie;
    double tie_ts;
    int have_check;
    double check_lo, check_hi;
    /* counters as fj_stats_t defines them */
    uint64_t responses, bytes, events, filtered, filtered_name, delivered,
        backlog, peak, history, sentinel_events;
    /* last history event popped: (ts, seq) */
    int have_last;
    double last_ts;
    uint64_t last_seq;
};

#define GROW(arr, n, cap)                                                \
    do {                                                                 \
        if ((n) == (cap)) {                                              \
            (cap) = (cap) ? 2 * (cap) : 16;                              \
            (arr) = realloc ((arr), (cap) * sizeof (*(arr)));            \
            CHECK (arr);                                                 \
        }                                                                \
    } while (0)

static int ordered_history (const struct model *m)
{
    return m->in_history && (m->flags & FJ_STREAM_ORDERED);
}

static void model_init (struct model *m, unsigned flags, double since)
{
    memset (m, 0, sizeof (*m));
    m->flags = flags;
    m->since = since;
    m->in_history = (flags & FJ_STREAM_HISTORY) != 0;
    memset (m->slots, 0xff, sizeof (m->slots));
}

static void model_free (struct model *m)
{
    for (size_t i = 0; i < m->all_n; i++) {
        free (m->all[i]->item);
        free (m->all[i]->attach);
        free (m->all[i]);
    }
    for (size_t i = 0; i < m->nnames; i++)
        free (m->name_raw[i]);
    free (m->all);
    free (m->heap);
    free (m->ready);
    free (m->deferred);
    free (m->name_raw);
    free (m->name_len);
}

static uint32_t fnv (const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Index of a raw name, added while fewer than FJ_MAX_NAMES; else -1. */
static int32_t model_intern (struct model *m, const char *raw, size_t len)
{
    uint32_t j = fnv (raw, len) & (NAME_SLOTS - 1);
    for (;; j = (j + 1) & (NAME_SLOTS - 1)) {
        int32_t i = m->slots[j];
        if (i < 0)
            break;
        if (m->name_len[i] == len && memcmp (m->name_raw[i], raw, len) == 0)
            return i;
    }
    if (m->nnames >= FJ_MAX_NAMES)
        return -1;
    m->name_raw = realloc (m->name_raw, (m->nnames + 1) * sizeof (char *));
    m->name_len = realloc (m->name_len, (m->nnames + 1) * sizeof (uint32_t));
    CHECK (m->name_raw && m->name_len);
    m->name_raw[m->nnames] = malloc (len + 1);
    CHECK (m->name_raw[m->nnames]);
    memcpy (m->name_raw[m->nnames], raw, len);
    m->name_len[m->nnames] = (uint32_t)len;
    m->slots[j] = (int32_t)m->nnames;
    return (int32_t)m->nnames++;
}

/* What Python's json.loads() makes of JSON string contents, encoded back
 * with encode("utf-8", "surrogatepass") as core.py does for filters. */
static void decode_name (const char *raw, size_t len, struct str *out)
{
    size_t n;
    unsigned char *d = oracle_decode (raw, len, &n);
    put (out, "", 0);
    put (out, (const char *)d, n);
    free (d);
}

/* The name filters' verdict on a raw name. */
static int model_dropped (const struct model *m, const char *raw, size_t len)
{
    struct str d = { 0 };
    int allowed = 0, denied = 0;
    decode_name (raw, len, &d);
    for (int i = 0; i < m->nfilters; i++) {
        if (m->filter_len[i] != d.len
            || memcmp (m->filter[i], d.s, d.len) != 0)
            continue;
        if (m->filter_deny[i])
            denied = 1;
        else
            allowed = 1;
    }
    free (d.s);
    return (m->nallow && !allowed) || denied;
}

static void push_ready (struct model *m, int32_t marker, struct mev *ev)
{
    GROW (m->ready, m->ready_n, m->ready_cap);
    m->ready[m->ready_n++] = (struct qitem){ marker, ev };
}

static int cmp_history (const void *a, const void *b)
{
    const struct mev *x = *(struct mev *const *)a, *y = *(struct mev *const *)b;
    if (x->ts < y->ts)
        return -1;
    if (x->ts > y->ts)
        return 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sentinel or end of stream: history becomes deliverable (stably sorted by
 * timestamp: ties keep arrival order), then deferred markers, then tag. */
static void model_close_history (struct model *m, int32_t tag)
{
    m->in_history = 0;
    if (m->heap_n > m->heap_pos)
        qsort (m->heap + m->heap_pos, m->heap_n - m->heap_pos,
               sizeof (*m->heap), cmp_history);
    for (size_t i = 0; i < m->deferred_n; i++)
        push_ready (m, m->deferred[i], NULL);
    m->deferred_n = 0;
    push_ready (m, tag, NULL);
}

static void check_stats (fj_stream_t *s, const struct model *m)
{
    const fj_stats_t *st = fj_stream_stats (s);
    CHECK (st->responses == m->responses);
    CHECK (st->bytes == m->bytes);
    CHECK (st->events == m->events);
    CHECK (st->filtered_since == m->filtered);
    CHECK (st->filtered_name == m->filtered_name);
    CHECK (st->delivered == m->delivered);
    CHECK (st->backlog == m->backlog);
    CHECK (st->peak_backlog == m->peak);
    CHECK (st->history == m->history);
    /* The invariants, stated on their own. */
    CHECK (st->peak_backlog >= st->backlog);
    CHECK (st->delivered + st->backlog + st->filtered_since
               + st->filtered_name + m->sentinel_events == st->events);
    CHECK (st->delivered
           <= st->events - st->filtered_since - st->filtered_name);
    CHECK (fj_stream_in_history (s) == ordered_history (m));
    CHECK ((size_t)fj_stream_name_count (s) == m->nnames);
}

/* ------------------------------------------------------------------------
 * The harness: one stream, its batch, the model, a scratch index.
 */

struct ctx {
    fj_stream_t *s;
    fj_batch_t *b;
    struct model m;
    fj_payload_t pl;
    unsigned name_counter;   /* for distinct generated names */
    double cur;              /* last generated timestamp (per input, so
                                that every input replays alike) */
    /* strtod() of the timestamps a generated payload was written with */
    double *want_ts;
    size_t want_n, want_cap;
};

/* Model a successful parse of buf being fed: returns the expected result
 * of fj_stream_feed(). */
static int model_feed (struct ctx *c, const char *buf)
{
    struct model *m = &c->m;
    const fj_payload_t *p = &c->pl;

    m->events += p->nentries;
    int sentinel = (m->flags & FJ_STREAM_JOB)
                       ? (p->id_kind == FJ_ID_INT && p->id == -1)
                       : p->nentries == 0;
    if (sentinel) {
        m->sentinel_events += p->nentries;   /* a sentinel's events are
                                                not delivered */
        if (!m->in_history)
            return FJ_FED;
        model_close_history (m, FJ_MARK_SENTINEL);
        return FJ_FED_SENTINEL;
    }
    uint64_t kept = 0;
    for (size_t i = 0; i < p->nentries; i++) {
        const fj_entry_t *e = &p->entries[i];
        if (!(e->timestamp > m->since)) {
            m->filtered++;
            continue;
        }
        const char *raw = buf + e->name.off;
        int32_t idx = model_intern (m, raw, e->name.len);
        if (model_dropped (m, raw, e->name.len)) {
            m->filtered_name++;
            continue;
        }
        struct mev *ev = calloc (1, sizeof (*ev));
        CHECK (ev);
        int irregular = (e->flags & FJ_ENTRY_IRREGULAR) || idx < 0;
        uint32_t from_name = 0;   /* as fj_stream.c's name_flags() */
        if (m->flags & FJ_STREAM_RESOURCE) {
            if (p->R_member >= 0)
                from_name = FJ_EV_R;
        }
        else if (m->flags & FJ_STREAM_JOB) {
            if (decoded_equals (raw, e->name.len, "submit")) {
                if (p->jobspec_member >= 0)
                    from_name = FJ_EV_JOBSPEC;
            }
            else if (decoded_equals (raw, e->name.len, "alloc")) {
                if (p->R_member >= 0)
                    from_name = FJ_EV_R;
            }
            else if (decoded_equals (raw, e->name.len, "clean") && !irregular)
                from_name = FJ_EV_FINAL;
        }
        struct str item = { 0 };
        if (irregular)
            put (&item, buf + e->entry.off, e->entry.len);
        else if (e->flags & FJ_ENTRY_HAS_CONTEXT)
            put (&item, buf + e->context.off, e->context.len);
        else
            puts_ (&item, "{}");
        /* The jobspec or R rides in the batch's attach buffer. */
        int member = (from_name & FJ_EV_JOBSPEC) ? p->jobspec_member
                     : (from_name & FJ_EV_R)     ? p->R_member
                                                 : -1;
        if (member >= 0) {
            fj_span_t v = p->members[member].value;
            ev->attach = malloc (v.len);
            CHECK (ev->attach);
            memcpy (ev->attach, buf + v.off, v.len);
            ev->attach_len = v.len;
        }
        ev->ts = e->timestamp;
        ev->wide = (e->flags & FJ_ENTRY_WIDE_INT) != 0;
        ev->isolate = (e->flags & FJ_ENTRY_ISOLATE) != 0;
        ev->seq = m->seq++;
        ev->id = p->id_kind == FJ_ID_INT ? p->id : 0;
        ev->name = irregular ? -1 : idx;
        ev->flags = (irregular ? FJ_EV_IRREGULAR : 0) | from_name;
        ev->item = item.s;
        ev->item_len = item.len;
        GROW (m->all, m->all_n, m->all_cap);
        m->all[m->all_n++] = ev;
        if (ordered_history (m)) {
            ev->history = 1;
            GROW (m->heap, m->heap_n, m->heap_cap);
            m->heap[m->heap_n++] = ev;
        }
        else
            push_ready (m, 0, ev);
        if (m->in_history)
            m->history++;
        kept++;
    }
    m->backlog += kept;
    if (m->backlog > m->peak)
        m->peak = m->backlog;
    return FJ_FED;
}

/* Feed buf[0..len) (or the C string buf when cstr) to the stream and the
 * model, and compare. */
static void feed (struct ctx *c, const char *buf, size_t len, int cstr,
                  int generated)
{
    struct model *m = &c->m;
    fj_error_t err = { .code = -777, .offset = 777 }, perr;
    int rc;

    if (cstr) {
        len = strlen (buf);
        rc = fj_stream_feed_cstr (c->s, buf, &err);
    }
    else if (m->responses % 2) {
        /* every other response through the batched entry point */
        size_t fed = 0;
        rc = fj_stream_feed_many (c->s, buf, &len, 1, &err, &fed);
        CHECK (fed == 1);
    }
    else
        rc = fj_stream_feed (c->s, buf, len, &err);
    m->responses++;
    m->bytes += len;
    if (m->ended) {
        CHECK (rc == FJ_FED);   /* ignored after end(), not even parsed */
    }
    else if (fj_payload_parse (&c->pl, buf, len, &perr) < 0) {
        CHECK (!generated);
        CHECK (rc == -perr.code && err.code == perr.code
               && err.offset == perr.offset);
    }
    else if ((m->flags & FJ_STREAM_JOB) && c->pl.id_kind != FJ_ID_INT) {
        CHECK (rc == -FJ_EID && err.code == FJ_EID && err.offset == 0);
    }
    else {
        if (generated) {
            CHECK (c->pl.nentries == c->want_n);
            for (size_t i = 0; i < c->want_n; i++)
                CHECK (memcmp (&c->pl.entries[i].timestamp, &c->want_ts[i],
                               sizeof (double)) == 0);
        }
        int want = model_feed (c, buf);
        CHECK (rc == want);
    }
    check_stats (c->s, m);
}

/* Count the top-level elements of a JSON array text (validated). */
static size_t count_elements (const char *t, size_t n)
{
    size_t count = 0;
    int depth = 0, in_string = 0;
    if (n == 2)
        return 0;   /* "[]" */
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
            continue;
        }
        if (ch == '"')
            in_string = 1;
        else if (ch == '[' || ch == '{')
            depth++;
        else if (ch == ']' || ch == '}')
            depth--;
        else if (ch == ',' && depth == 1)
            count++;
    }
    return count + 1;
}

static void pop (struct ctx *c, size_t max)
{
    struct model *m = &c->m;
    fj_batch_t *b = c->b;
    int rc = fj_stream_pop (c->s, b, max);
    size_t lim = max < b->cap ? max : b->cap;
    struct str want = { 0 };
    size_t n = 0, attach_len = 0, nattach = 0;
    int32_t marker = 0, wide = 0;

    CHECK (rc >= 0);   /* no allocation fails here */
    CHECK ((size_t)rc == b->count);
    puts_ (&want, "[");
    if (ordered_history (m)) {
        /* Nothing is delivered while an ordered stream gathers history. */
        CHECK (rc == 0 && b->marker == 0);
    }
    while (!ordered_history (m) && n < lim) {
        struct mev *ev;
        int from_heap = m->heap_pos < m->heap_n;
        if (from_heap)
            ev = m->heap[m->heap_pos];
        else if (m->ready_head == m->ready_n)
            break;
        else if (m->ready[m->ready_head].marker) {
            if (n == 0)
                marker = m->ready[m->ready_head++].marker;
            break;
        }
        else
            ev = m->ready[m->ready_head].ev;
        /* An event Python may fail to decode comes in a batch alone. */
        if (ev->isolate && n > 0)
            break;
        if (from_heap)
            m->heap_pos++;
        else
            m->ready_head++;
        CHECK (n < (size_t)rc);
        CHECK (memcmp (&b->timestamp[n], &ev->ts, sizeof (double)) == 0);
        CHECK (b->id[n] == ev->id);
        CHECK (b->name[n] == ev->name);
        uint32_t want_flags = ev->flags;
        if ((m->have_tie && ev->ts == m->tie_ts)
            || (m->have_check && ev->ts >= m->check_lo
                && ev->ts <= m->check_hi))
            want_flags |= FJ_EV_TIE;
        m->have_tie = 1;
        m->tie_ts = ev->ts;
        CHECK (b->flags[n] == want_flags);
        if (ev->name >= 0) {
            size_t len;
            const char *raw = fj_stream_name (c->s, ev->name, &len);
            CHECK (raw && len == m->name_len[ev->name]
                   && memcmp (raw, m->name_raw[ev->name], len) == 0);
        }
        if (ev->history) {
            /* Stable by timestamp: non-decreasing, ties in arrival order.
             * Checked on the stream's own output. */
            if (m->have_last)
                CHECK (b->timestamp[n] > m->last_ts
                       || (b->timestamp[n] == m->last_ts
                           && ev->seq > m->last_seq));
            m->have_last = 1;
            m->last_ts = b->timestamp[n];
            m->last_seq = ev->seq;
        }
        CHECK (!ev->popped);   /* exactly once */
        ev->popped = 1;
        if (n)
            puts_ (&want, ",");
        put (&want, ev->item, ev->item_len);
        if (ev->flags & (FJ_EV_JOBSPEC | FJ_EV_R)) {
            /* carriers only, in batch order */
            CHECK (nattach < b->nattach);
            CHECK (b->attach_size[nattach] == ev->attach_len);
            CHECK (b->attach_off[nattach] == attach_len);
            if (ev->attach_len)
                CHECK (memcmp (b->attach + attach_len, ev->attach,
                               ev->attach_len) == 0);
            nattach++;
        }
        else
            CHECK (ev->attach_len == 0);
        attach_len += ev->attach_len;
        wide |= ev->wide;
        if (ev->isolate) {
            n++;
            m->delivered++;
            m->backlog--;
            break;
        }
        n++;
        m->delivered++;
        m->backlog--;
    }
    puts_ (&want, "]");
    CHECK ((size_t)rc == n);
    CHECK (b->marker == marker);
    CHECK (b->text_len == want.len && memcmp (b->text, want.s, want.len) == 0);
    CHECK (b->attach_len == attach_len);
    CHECK (b->nattach == nattach);
    CHECK (b->text_wide_int == wide);   /* flags never carry WIDE_INT or
                                           ISOLATE */
    /* The text is one JSON array (the scanner refuses it only as "not an
     * object", which it says after validating the whole value) holding
     * one value per event. */
    fj_error_t err;
    CHECK (fj_payload_parse (&c->pl, b->text, b->text_len, &err)
           == -FJ_ENOT_OBJECT && err.offset == 0);
    CHECK (count_elements (b->text, b->text_len) == n);
    free (want.s);
    check_stats (c->s, m);
}

static void drain (struct ctx *c)
{
    for (int guard = 0;; guard++) {
        CHECK (guard < 1000000);
        pop (c, c->b->cap);
        if (c->b->count == 0 && c->b->marker == 0)
            break;
    }
}

/* ------------------------------------------------------------------------
 * Generated responses.
 */

static const double SINCE[] = { -INFINITY, 0.0, 100.0, 100.5,
                                1795812829.7204976, NAN, 1e308, -0.0 };

static const char *NAMES[] = {
    "submit", "alloc", "validate", "depend", "priority", "start",
    "finish", "release", "free", "clean", "exception", "urgency",
    "sub\\u006dit",      /* "submit", escaped: still carries jobspec */
    "\\u0061lloc",       /* "alloc", escaped */
    "",                  /* empty */
    "caf\xc3\xa9",       /* raw UTF-8 */
    "caf\\u00e9",        /* the same name, escaped */
    "st\\u0061rt",       /* "start", escaped */
    "a\\\"b",            /* escaped quote */
    "\\ud800",           /* lone surrogate escape: json accepts it */
    "\\ud83d\\ude00",    /* surrogate pair */
    "submit ",
    "resource-define", "drain", "undrain", "online", "offline", "restart",
    "x\\/y", "\\t", "Submit", "alloc\\u0000",
    "long-name-long-name-long-name-long-name-long-name-long-name-long",
    "n",
};
#define NNAMES (sizeof (NAMES) / sizeof (NAMES[0]))

static const char *CONTEXTS[] = {
    NULL,   /* no context member */
    "{}",
    "{\"userid\":0,\"urgency\":16,\"flags\":0,\"version\":1}",
    "{\"priority\":16}",
    "\"text\"",
    "[1,2,3]",
    "null",
    "true",
    "1e400",                          /* json gives inf, orjson refuses */
    "123456789012345678901234567890", /* beyond int64 */
    "{\"s\":\"\\ud800\"}",            /* lone surrogate */
    "{\"note\":\"caf\xc3\xa9 \\u00e9 \\n\"}",
    "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":[{\"d\":null}]}}}",
    "-0",
    "0.1",
    "\"\"",
    "{\"big\":-12345678901234567890,\"s\":\"12345678901234567890\"}",
    "1234567890123456789.5",
    "@deep",                          /* built in gen_entry() */
    "@long",
    "{\"ranks\":\"0-3\",\"online\":\"\",\"nodelist\":\"vm,vm,vm,vm\"}",
};
#define NCONTEXTS (sizeof (CONTEXTS) / sizeof (CONTEXTS[0]))

static const char *IDS[] = {
    "1", "2", "3", "42", "175992995844", "0", "-1", "-2",
    "9223372036854775807", "-9223372036854775808",
    "9223372036854775808",   /* beyond int64: not an integer id */
    "1.0", "1e3", "\"12\"", "null", "-0",
};
#define NIDS (sizeof (IDS) / sizeof (IDS[0]))

static const char *JOBSPECS[] = {
    "{\"version\":1,\"resources\":[{\"type\":\"slot\",\"count\":1}]}",
    "{}", "\"js\"", "[1]", "{\"env\":{\"X\":\"\\u00e9\"}}",
};
static const char *RS[] = {
    "{\"version\":1,\"execution\":{\"R_lite\":[{\"rank\":\"0\"}]}}",
    "{}", "null", "{\"R\":1}",
};

/* A timestamp literal; *cur carries the previous value so that ties and
 * reversals (several runs per response) are common. */
static void gen_timestamp (struct in *in, struct str *out, double *cur,
                           double *value)
{
    uint8_t mode = u8 (in);
    char lit[400];   /* "%.0f" of 1e308 has 309 digits */

    switch (mode % 16) {
        case 0: case 1: case 2: case 3:   /* forwards a little */
            *cur += (mode >> 4) * 0.25;
            snprintf (lit, sizeof (lit), "%.17g", *cur);
            break;
        case 4: case 5:                   /* the same again: a tie */
            snprintf (lit, sizeof (lit), "%.17g", *cur);
            break;
        case 6:                           /* backwards: a new run */
            *cur -= 1 + (mode >> 4);
            snprintf (lit, sizeof (lit), "%.17g", *cur);
            break;
        case 7: {                         /* jump to another base */
            static const double base[] = { 100.0, 100.5, 99.75,
                                           1795812829.7204976, 0.0, -5.0,
                                           1795812860.1731889, 1e308 };
            *cur = base[(mode >> 4) % 8];
            snprintf (lit, sizeof (lit), "%.17g", *cur);
            break;
        }
        case 8:                           /* integer literal: irregular */
            snprintf (lit, sizeof (lit), "%.0f", *cur);
            break;
        case 9: {                         /* odd spellings */
            static const char *odd[] = {
                "1e400", "-1e400", "1e-400", "-0", "0", "1.5E2", "100e-0",
                "1.00000000000000000000000000001", "100.49999999999999999",
                "4.9406564584124654e-324", "2.2250738585072011e-308",
                "1795812829.72049760000000000", "0.0000000000000000001",
                "99999999999999999999", "1E+2", "-100.25",
            };
            snprintf (lit, sizeof (lit), "%s", odd[(mode >> 4) % 16]);
            break;
        }
        default: {                        /* 16-17 digits from the input,
                                             as real timestamps have */
            unsigned long long frac = 0;
            for (int k = 0; k < 3; k++)
                frac = frac * 256 + u8 (in);
            snprintf (lit, sizeof (lit), "17958128%02u.%07llu", mode % 100,
                      frac % 10000000ull);
            break;
        }
    }
    puts_ (out, lit);
    *value = strtod (lit, NULL);
}

static void ws (struct str *out, int pretty)
{
    if (pretty)
        puts_ (out, " \n\t ");
}

static void gen_entry (struct ctx *c, struct in *in, struct str *out,
                       double *cur, int pretty)
{
    struct str ts = { 0 };
    double value;
    uint8_t layout = u8 (in);
    const char *name = NAMES[u8 (in) % NNAMES];
    const char *ctx = CONTEXTS[u8 (in) % NCONTEXTS];
    struct str big = { 0 };
    if (ctx && ctx[0] == '@') {
        /* Around FJ_PY_SAFE_DEPTH / FJ_PY_SAFE_DIGITS: the entry counts
         * as one level, so 399 arrays make 400 (kept in a batch), 400
         * make 401 (isolated); 4000 characters of integer part pass, 4001
         * do not. */
        unsigned k = u8 (in) % 4;
        if (ctx[1] == 'd') {
            for (unsigned i = 0; i < FJ_PY_SAFE_DEPTH - 2 + k; i++)
                puts_ (&big, "[");
            for (unsigned i = 0; i < FJ_PY_SAFE_DEPTH - 2 + k; i++)
                puts_ (&big, "]");
        }
        else {
            puts_ (&big, k & 1 ? "-" : "");
            for (unsigned i = 0; i < FJ_PY_SAFE_DIGITS - 2 + k; i++)
                puts_ (&big, i ? "7" : "1");
        }
        ctx = big.s;
    }

    gen_timestamp (in, &ts, cur, &value);
    GROW (c->want_ts, c->want_n, c->want_cap);
    c->want_ts[c->want_n++] = value;

    puts_ (out, "{");
    ws (out, pretty);
    switch (layout % 10) {
        default:   /* regular: timestamp, name[, context] */
            putf (out, "\"timestamp\":%s,", ts.s);
            ws (out, pretty);
            putf (out, "\"name\":\"%s\"", name);
            if (ctx) {
                puts_ (out, ",");
                ws (out, pretty);
                putf (out, "\"context\":%s", ctx);
            }
            break;
        case 6:    /* reversed */
            if (ctx)
                putf (out, "\"context\":%s,", ctx);
            putf (out, "\"name\":\"%s\",\"timestamp\":%s", name, ts.s);
            break;
        case 7:    /* an extra member */
            putf (out, "\"timestamp\":%s,\"name\":\"%s\",\"extra\":[1]",
                  ts.s, name);
            if (ctx)
                putf (out, ",\"context\":%s", ctx);
            break;
        case 8:    /* escaped keys */
            putf (out, "\"time\\u0073tamp\":%s,\"n\\u0061me\":\"%s\"", ts.s,
                  name);
            if (ctx)
                putf (out, ",\"c\\u006fntext\":%s", ctx);
            break;
        case 9:    /* repeated members: the last wins */
            putf (out, "\"timestamp\":0,\"name\":\"dup\",\"timestamp\":%s,"
                       "\"name\":\"%s\"", ts.s, name);
            if (ctx)
                putf (out, ",\"context\":1,\"context\":%s", ctx);
            break;
    }
    ws (out, pretty);
    puts_ (out, "}");
    free (ts.s);
    free (big.s);
}

/* A journal response from the input bytes. */
static void gen_response (struct ctx *c, struct in *in, struct str *out)
{
    uint8_t shape = u8 (in);
    int pretty = (shape & 0x01) != 0;
    int with_id = (shape & 0x02) || (c->m.flags & FJ_STREAM_JOB);
    int jobspec = (shape & 0x04) != 0;
    int R = (shape & 0x08) != 0;
    int id_last = (shape & 0x10) != 0;
    int dup_events = (shape & 0x20) != 0;
    int dup_member = (shape & 0x40) != 0;
    const char *id = IDS[u8 (in) % NIDS];
    unsigned nev = u8 (in) % 9;
    double *cur = &c->cur;

    if (u8 (in) & 1)
        *cur = 100.0;   /* start near `since` choices */
    c->want_n = 0;
    puts_ (out, "{");
    ws (out, pretty);
    if (with_id && !id_last)
        putf (out, "\"id\":%s,", id);
    if (dup_events)   /* an earlier "events" that the last one replaces */
        puts_ (out, "\"events\":[{\"timestamp\":1,\"name\":\"gone\"}],");
    if (jobspec) {
        if (dup_member)
            puts_ (out, "\"jobspec\":0,");
        putf (out, "\"jobspec\":%s,", JOBSPECS[u8 (in) % 5]);
    }
    puts_ (out, "\"events\":[");
    for (unsigned i = 0; i < nev; i++) {
        if (i)
            puts_ (out, ",");
        ws (out, pretty);
        gen_entry (c, in, out, cur, pretty);
    }
    puts_ (out, "]");
    if (R) {
        puts_ (out, ",");
        ws (out, pretty);
        putf (out, "\"R\":%s", RS[u8 (in) % 4]);
    }
    if (with_id && id_last)
        putf (out, ",\"id\":%s", id);
    ws (out, pretty);
    puts_ (out, "}");
}

/* Many events with names never seen before, to fill the name table past
 * FJ_MAX_NAMES.  A budget per input keeps executions fast: 4400 is just
 * enough to overflow the table. */
static void gen_many_names (struct ctx *c, struct in *in, struct str *out)
{
    unsigned n = 1 + u16 (in) % 1100;
    if (n > 4400 - c->name_counter)
        n = 4400 - c->name_counter;
    c->want_n = 0;
    puts_ (out, "{\"id\":7,\"events\":[");
    for (unsigned i = 0; i < n; i++) {
        putf (out, "%s{\"timestamp\":200.5,\"name\":\"m%u\"}", i ? "," : "",
              c->name_counter++);
        GROW (c->want_ts, c->want_n, c->want_cap);
        c->want_ts[c->want_n++] = 200.5;
    }
    puts_ (out, "]}");
}

/* Filter names, UTF-8 as core.py passes them (FILTERS[0] is 6 bytes with
 * the NUL: "alloc\u0000" decoded). */
static const char *FILTERS[] = {
    "alloc\0", "submit", "alloc", "start", "caf\xc3\xa9", "a\"b",
    "\xed\xa0\x80",          /* "\ud800" with surrogatepass */
    "\xf0\x9f\x98\x80",      /* U+1F600, "\ud83d\ude00" */
    "", "m1", "finish", "validate", "x/y", "\t",
};
#define NFILTERS (sizeof (FILTERS) / sizeof (FILTERS[0]))

/* fj_stream_check_range() bounds: points, spans, all, none (lo > hi, NaN) */
static const double CHECKS[][2] = {
    { 100.0, 100.0 }, { 100.0, 100.5 },
    { 1795812829.7204976, 1795812860.1731889 }, { -INFINITY, INFINITY },
    { 1.0, 0.0 }, { NAN, NAN }, { -0.0, 0.0 }, { 99.75, INFINITY },
};

static const char *SENTINELS[] = {
    "{\"id\":-1,\"events\":[]}",
    "{\"events\":[]}",
    "{\"id\":-1,\"events\":[{\"timestamp\":300.0,\"name\":\"in-sentinel\"}]}",
    "{\"id\":-1.0,\"events\":[]}",
    "{\"id\":\"-1\",\"events\":[]}",
    " {\"events\" : [ ] } ",
    "{\"events\":[],\"id\":-1}",
    "{\"id\":-1,\"events\":[],\"jobspec\":{}}",
};

/* ------------------------------------------------------------------------
 * The program.
 */

enum {
    OP_GEN = 0, OP_GEN2, OP_RAW, OP_MUT, OP_SENTINEL, OP_MARK, OP_END,
    OP_POP, OP_POP2, OP_DRAIN, OP_CSTR, OP_MANY_NAMES, OP_GEN3, OP_POP3,
    OP_RAW2, OP_MARK2,
};

static void run_program (struct ctx *c, struct in *in)
{
    for (int ops = 0; in->n > 0 && ops < 4096; ops++) {
        uint8_t op = u8 (in);
        struct str out = { 0 };

        if (op == 0xFF)
            return;   /* destroy mid-way: the caller frees everything */
        switch (op % 16) {
            case OP_GEN: case OP_GEN2: case OP_GEN3:
                gen_response (c, in, &out);
                feed (c, out.s, out.len, 0, 1);
                break;
            case OP_RAW: case OP_RAW2: {
                size_t len = u16 (in);
                if (len > in->n)
                    len = in->n;
                /* An exact-size copy, so that ASan sees any overread. */
                char *copy = malloc (len ? len : 1);
                CHECK (copy);
                memcpy (copy, in->p, len);
                in->p += len;
                in->n -= len;
                feed (c, copy, len, 0, 0);
                free (copy);
                break;
            }
            case OP_MUT: {
                gen_response (c, in, &out);
                uint8_t how = u8 (in);
                size_t pos = u16 (in) % (out.len + 1);
                if (how % 4 == 0)
                    out.len = pos;                        /* truncate */
                else if (how % 4 == 1 && pos < out.len)
                    out.s[pos] = (char)u8 (in);           /* replace */
                else if (how % 4 == 2 && pos < out.len) { /* delete */
                    memmove (out.s + pos, out.s + pos + 1, out.len - pos - 1);
                    out.len--;
                }
                else {                                    /* insert */
                    char ch = (char)u8 (in);
                    put (&out, &ch, 1);   /* grow by one, then shift */
                    memmove (out.s + pos + 1, out.s + pos, out.len - pos - 1);
                    out.s[pos] = ch;
                }
                char *copy = malloc (out.len ? out.len : 1);
                CHECK (copy);
                memcpy (copy, out.s, out.len);
                feed (c, copy, out.len, 0, 0);
                free (copy);
                break;
            }
            case OP_SENTINEL: {
                const char *t = SENTINELS[u8 (in) % 8];
                feed (c, t, strlen (t), 0, 0);
                break;
            }
            case OP_MARK: case OP_MARK2: {
                int32_t tag = FJ_MARK_USER + u8 (in);
                CHECK (fj_stream_mark (c->s, tag) == 0);
                if (ordered_history (&c->m)) {
                    GROW (c->m.deferred, c->m.deferred_n, c->m.deferred_cap);
                    c->m.deferred[c->m.deferred_n++] = tag;
                }
                else
                    push_ready (&c->m, tag, NULL);
                check_stats (c->s, &c->m);
                break;
            }
            case OP_END:
                CHECK (fj_stream_end (c->s) == 0);
                if (!c->m.ended) {
                    model_close_history (&c->m, FJ_MARK_END);
                    c->m.ended = 1;
                }
                check_stats (c->s, &c->m);
                break;
            case OP_POP: case OP_POP2: case OP_POP3:
                pop (c, u16 (in) % 300);
                break;
            case OP_DRAIN:
                drain (c);
                break;
            case OP_CSTR: {
                /* Through fj_stream_feed_cstr(): generated or raw bytes,
                 * cut at the first NUL as the broker's string would be. */
                if (u8 (in) & 1)
                    gen_response (c, in, &out);
                else {
                    size_t len = u8 (in);
                    if (len > in->n)
                        len = in->n;
                    put (&out, (const char *)in->p, len);
                    in->p += len;
                    in->n -= len;
                }
                if (!out.s)
                    put (&out, "", 0);
                feed (c, out.s, 0, 1, 0);
                break;
            }
            case OP_MANY_NAMES:
                if (c->name_counter >= 4400)
                    break;
                gen_many_names (c, in, &out);
                feed (c, out.s, out.len, 0, 1);
                break;
        }
        free (out.s);
    }
    /* Out of program: the service ends the stream and the consumer reads
     * everything, so every kept event must come out exactly once. */
    CHECK (fj_stream_end (c->s) == 0);
    if (!c->m.ended) {
        model_close_history (&c->m, FJ_MARK_END);
        c->m.ended = 1;
    }
    drain (c);
    CHECK (c->m.heap_pos == c->m.heap_n && c->m.ready_head == c->m.ready_n);
    CHECK (c->m.backlog == 0);
    for (size_t i = 0; i < c->m.all_n; i++)
        CHECK (c->m.all[i]->popped == 1);
    CHECK (c->m.delivered == c->m.all_n);
    CHECK (c->m.delivered == c->m.events - c->m.filtered
                             - c->m.filtered_name - c->m.sentinel_events);
    size_t len = 1;
    CHECK (fj_stream_name (c->s, -1, &len) == NULL && len == 0);
    CHECK (fj_stream_name (c->s, (int32_t)c->m.nnames, &len) == NULL);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct in in = { data, size };
    static struct ctx c;   /* static: the model's name slots are large */
    unsigned flags = u8 (&in) & 0xF;
    double since = SINCE[u8 (&in) % 8];
    uint8_t capb = u8 (&in);
    size_t cap = capb < 128 ? 1 + capb % 16 : 4096;

    memset (&c, 0, sizeof (c));
    c.cur = 100.0;
    fj_payload_init (&c.pl);
    model_init (&c.m, flags, since);
    c.s = fj_stream_create (flags, since);
    c.b = fj_batch_create (cap);
    CHECK (c.s && c.b && c.b->cap == cap);
    /* Filters and the check range come before the first feed. */
    c.m.nfilters = u8 (&in) % 4;
    for (int i = 0; i < c.m.nfilters; i++) {
        uint8_t f = u8 (&in);
        size_t k = (size_t)(f >> 1) % NFILTERS;
        const char *name = FILTERS[k];
        size_t len = k == 0 ? 6 : strlen (name);
        c.m.filter[i] = name;
        c.m.filter_len[i] = len;
        c.m.filter_deny[i] = f & 1;
        c.m.nallow += !(f & 1);
        CHECK (fj_stream_filter (c.s, name, len, f & 1) == 0);
    }
    uint8_t check = u8 (&in);
    if (check & 1) {
        c.m.have_check = 1;
        c.m.check_lo = CHECKS[(check >> 1) % 8][0];
        c.m.check_hi = CHECKS[(check >> 1) % 8][1];
        fj_stream_check_range (c.s, c.m.check_lo, c.m.check_hi);
    }
    CHECK (fj_stream_in_history (c.s) == ordered_history (&c.m));
    run_program (&c, &in);
    fj_stream_destroy (c.s);
    fj_batch_destroy (c.b);
    fj_payload_release (&c.pl);
    model_free (&c.m);
    free (c.want_ts);
    return 0;
}
