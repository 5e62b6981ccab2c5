/* fj_payload.c - the journal response's shape, indexed in one scan.
 *
 * The payload object, its "events" array and the members of each event
 * entry are recorded as byte spans (see fj_payload.h); every other value
 * is only validated by the scanner (fj_json.h).  Entries in the layout
 * the services write take a fast path (fast_entry()).
 */
#include <stdlib.h>
#include <string.h>

#include "fj_grow.h"
#include "fj_number.h"
#include "fj_payload.h"
#include "fj_string.h"

/* Note a shape error and go on: it is reported only if the whole payload
 * is valid JSON (a syntax error found later wins), and a later "events"
 * member replaces the one it concerns, as with Python's json. */
static void shape (fj_scanner_t *s, int code, const unsigned char *at)
{
    if (!s->shape_code) {
        s->shape_code = code;
        s->shape_offset = (size_t)(at - s->start);
    }
}

/* A value where the shape wanted another kind: note the shape error and
 * validate it. */
static int wrong_kind (fj_scanner_t *s, int code)
{
    fj_span_t ignored;
    shape (s, code, s->p);
    return fj_json_value (s, &ignored);
}

/* The container the shape wants (opener '{' or '['), after white space:
 * 1 when entered with members to scan; 0 when there is nothing more to do
 * (it is empty, or another kind of value, noted as shape error `code` and
 * validated); or a negated fj_errnum. */
static int enter (fj_scanner_t *s, unsigned char opener, int code)
{
    int rc;

    if ((rc = fj_json_at_value (s)) < 0)
        return rc;
    if (*s->p != opener)
        return (rc = wrong_kind (s, code)) < 0 ? rc : 0;
    if ((rc = fj_json_descend (s)) < 0)
        return rc;
    return !fj_json_empty_container (s, opener == '{' ? '}' : ']');
}

/* True if the raw key is the ASCII literal: compared in place unless it
 * holds an escape. */
static inline int key_is (const char *buf, fj_span_t key, int escaped,
                          const char *literal, size_t literal_len)
{
    if (!escaped)
        return key.len == literal_len
               && memcmp (buf + key.off, literal, literal_len) == 0;
    return fj_string_equals (buf + key.off, key.len, literal, literal_len);
}

#define KEY_IS(buf, key, escaped, lit) \
    key_is ((buf), (key), (escaped), (lit), sizeof (lit) - 1)

/* Which entry member a key names. */
enum { KEY_OTHER, KEY_TIMESTAMP, KEY_NAME, KEY_CONTEXT };

static int entry_key (const char *buf, fj_span_t key, int escaped)
{
    if (KEY_IS (buf, key, escaped, "timestamp"))
        return KEY_TIMESTAMP;
    if (KEY_IS (buf, key, escaped, "name"))
        return KEY_NAME;
    if (KEY_IS (buf, key, escaped, "context"))
        return KEY_CONTEXT;
    return KEY_OTHER;
}

/* Past the context value at p (set s->max_depth for a container), or
 * NULL if the fast path leaves it. */
static const unsigned char *fast_context (fj_scanner_t *s,
                                          const unsigned char *p, int depth)
{
    const unsigned char *first = s->p;

    if (*p != '{' && *p != '[')
        return fj_json_fast_scalar (p, s->end);
    s->p = p;
    s->depth = depth + 1;   /* inside the entry */
    int rc = fj_json_skip_container (s);
    p = s->p;
    s->depth = depth;
    s->p = first;
    return rc < 0 ? NULL : p;
}

/* The fast path for an entry in the layout the services write:
 * {"timestamp":<fraction>,"name":"<plain>"} with ,"context":<value> before
 * the closing brace, no white space.  Returns 0 with *e (zeroed by the
 * caller) filled and s->p past the entry, or -1 with the scanner
 * untouched: scan_entry() then does it all (another layout, an escaped
 * name, an integer timestamp, a context the fast path leaves, an error). */
static int fast_entry (fj_scanner_t *s, fj_entry_t *e)
{
    static const char ts_key[] = "{\"timestamp\":";
    static const char name_key[] = ",\"name\":\"";
    static const char context_key[] = ",\"context\":";
    const unsigned char *first = s->p, *end = s->end, *p = first;
    const unsigned char *name;
    int depth = s->depth, deepest = s->max_depth;

    if ((size_t)(end - p) < sizeof (ts_key) - 1
        || memcmp (p, ts_key, sizeof (ts_key) - 1) != 0)
        return -1;
    p += sizeof (ts_key) - 1;
    if (!(p = fj_number_timestamp (p, end, &e->timestamp))
        || (size_t)(end - p) < sizeof (name_key) - 1
        || memcmp (p, name_key, sizeof (name_key) - 1) != 0)
        return -1;   /* an integer timestamp is irregular: Python's int */
    name = p += sizeof (name_key) - 1;
    p = fj_plain_end (p, end);
    if (p >= end || *p != '"')
        return -1;
    e->name.off = (uint32_t)(name - s->start);
    e->name.len = (uint32_t)(p - name);
    p++;
    if ((size_t)(end - p) >= sizeof (context_key) - 1
        && memcmp (p, context_key, sizeof (context_key) - 1) == 0) {
        p += sizeof (context_key) - 1;
        if (p >= end)
            return -1;
        e->context.off = (uint32_t)(p - s->start);
        if (!(p = fast_context (s, p, depth))) {
            s->max_depth = deepest;
            return -1;
        }
        e->context.len = (uint32_t)(p - s->start) - e->context.off;
        e->flags = FJ_ENTRY_HAS_CONTEXT;
    }
    if (p >= end || *p != '}') {
        s->max_depth = deepest;
        return -1;
    }
    p++;
    if (s->max_depth < depth + 1)
        s->max_depth = depth + 1;
    e->entry.off = (uint32_t)(first - s->start);
    e->entry.len = (uint32_t)(p - first);
    s->p = p;
    return 0;
}

/* What scan_entry() has found of an entry's members so far. */
struct entry_scan {
    const unsigned char *ts_text, *ts_bad, *name_bad;
    size_t ts_len;
    int ts_is_int, have_name;
};

/* The value of member `which` of entry e, at s->p. */
static int entry_member (fj_scanner_t *s, fj_entry_t *e, int which,
                         struct entry_scan *f)
{
    const unsigned char *vstart = s->p;
    fj_span_t value;
    int rc, escaped;

    /* A repeated member: the last occurrence counts. */
    switch (which) {
        case KEY_TIMESTAMP:
            if (!fj_json_is_number_start (*s->p)) {
                f->ts_bad = vstart;
                f->ts_text = NULL;
                return fj_json_value (s, &value);
            }
            if ((rc = fj_json_number (s, &f->ts_is_int)) < 0)
                return rc;
            f->ts_text = vstart;
            f->ts_len = (size_t)(s->p - vstart);
            f->ts_bad = NULL;
            return 0;
        case KEY_NAME:
            if (*s->p != '"') {
                f->name_bad = vstart;
                f->have_name = 0;
                return fj_json_value (s, &value);
            }
            if ((rc = fj_json_string (s, &e->name, &escaped)) < 0)
                return rc;
            f->name_bad = NULL;
            if (escaped)
                e->flags |= FJ_ENTRY_NAME_ESCAPED;
            else
                e->flags &= ~FJ_ENTRY_NAME_ESCAPED;
            f->have_name = 1;
            return 0;
        case KEY_CONTEXT:
            e->flags |= FJ_ENTRY_HAS_CONTEXT;
            return fj_json_value (s, &e->context);
        default:
            return fj_json_value (s, &value);
    }
}

/* Scan one element of "events": an object with a numeric timestamp and a
 * string name, optionally a context. */
static int scan_entry (fj_scanner_t *s, fj_entry_t *e)
{
    const char *buf = (const char *)s->start;
    const unsigned char *first;
    struct entry_scan f = { 0 };
    int position = 0, rc;

    if ((rc = fj_json_at_value (s)) < 0)
        return rc;
    first = s->p;
    memset (e, 0, sizeof (*e));
    if (fast_entry (s, e) == 0)
        return 0;
    memset (e, 0, sizeof (*e));   /* the fast path may have filled some */
    if (*s->p != '{')
        return wrong_kind (s, FJ_EENTRY_TYPE);
    int wide_outside = s->wide_int;
    int depth_outside = s->max_depth;
    int entry_depth = s->depth;
    s->wide_int = s->long_int = 0;
    s->max_depth = s->depth;
    if ((rc = fj_json_descend (s)) < 0)
        return rc;
    if (fj_json_empty_container (s, '}')) {
        shape (s, FJ_ETIMESTAMP, first);
        return 0;
    }
    do {
        fj_span_t key;
        int escaped, which;
        if ((rc = fj_json_key (s, &key, &escaped)) < 0)
            return rc;
        which = entry_key (buf, key, escaped);
        /* The regular layout is timestamp, name[, context], unescaped. */
        if (escaped || which != ++position)
            e->flags |= FJ_ENTRY_IRREGULAR;
        if ((rc = fj_json_at_value (s)) < 0
            || (rc = entry_member (s, e, which, &f)) < 0)
            return rc;
    } while ((rc = fj_json_next_or_close (s, '}')) == 1);
    if (rc < 0)
        return rc;
    if (!f.ts_text) {
        shape (s, FJ_ETIMESTAMP, f.ts_bad ? f.ts_bad : first);
        return 0;
    }
    if (!f.have_name) {
        shape (s, FJ_ENAME, f.name_bad ? f.name_bad : first);
        return 0;
    }
    if (f.ts_is_int)
        e->flags |= FJ_ENTRY_IRREGULAR;   /* Python gives an int here */
    if (s->wide_int)
        e->flags |= FJ_ENTRY_WIDE_INT;
    if (s->long_int || s->max_depth - entry_depth > FJ_PY_SAFE_DEPTH)
        e->flags |= FJ_ENTRY_ISOLATE;
    s->wide_int |= wide_outside;
    if (depth_outside > s->max_depth)
        s->max_depth = depth_outside;
    if ((rc = fj_number_value (f.ts_text, f.ts_len, &e->timestamp)) < 0)
        return fj_json_fail (s, -rc, f.ts_text);
    e->entry.off = (uint32_t)(first - s->start);
    e->entry.len = (uint32_t)(s->p - first);
    return 0;
}

static int scan_events (fj_scanner_t *s, fj_payload_t *pl)
{
    int rc;

    /* A repeated "events" member replaces the first, errors and all. */
    pl->nentries = 0;
    s->shape_code = 0;
    if ((rc = enter (s, '[', FJ_EEVENTS_TYPE)) <= 0)
        return rc;
    do {
        if ((rc = fj_reserve ((void **)&pl->entries, &pl->entries_cap,
                              pl->nentries + 1, sizeof (fj_entry_t), 16)) < 0)
            return fj_json_fail (s, -rc, s->p);
        if ((rc = scan_entry (s, &pl->entries[pl->nentries])) < 0)
            return rc;
        pl->nentries++;
    } while ((rc = fj_json_next_or_close (s, ']')) == 1);
    return rc;
}

/* The value of the "id" member at s->p: an int64 integer literal, or
 * something else. */
static int scan_id (fj_scanner_t *s, fj_payload_t *pl, fj_span_t *value)
{
    const unsigned char *vstart = s->p;
    int is_int = 0, rc;

    if (!fj_json_is_number_start (*s->p))
        rc = fj_json_value (s, value);
    else if ((rc = fj_json_number (s, &is_int)) == 0) {
        value->off = (uint32_t)(vstart - s->start);
        value->len = (uint32_t)(s->p - vstart);
    }
    pl->id_kind = FJ_ID_OTHER;
    if (is_int && fj_number_int64 (vstart, value->len, &pl->id))
        pl->id_kind = FJ_ID_INT;
    return rc;
}

static int scan_payload (fj_scanner_t *s, fj_payload_t *pl)
{
    const char *buf = (const char *)s->start;
    int rc;

    if ((rc = enter (s, '{', FJ_ENOT_OBJECT)) <= 0)
        return rc;
    do {
        fj_member_t m = { .flags = 0 };
        int escaped;
        if ((rc = fj_json_key (s, &m.key, &escaped)) < 0
            || (rc = fj_json_at_value (s)) < 0)
            return rc;
        if (escaped)
            m.flags |= FJ_MEMBER_KEY_ESCAPED;
        const unsigned char *vstart = s->p;
        int is_events = KEY_IS (buf, m.key, escaped, "events");
        if (is_events) {
            if ((rc = scan_events (s, pl)) < 0)
                return rc;
            m.value.off = (uint32_t)(vstart - s->start);
            m.value.len = (uint32_t)(s->p - vstart);
        }
        else if (KEY_IS (buf, m.key, escaped, "id"))
            rc = scan_id (s, pl, &m.value);
        else
            rc = fj_json_value (s, &m.value);
        if (rc < 0)
            return rc;
        if ((rc = fj_reserve ((void **)&pl->members, &pl->members_cap,
                              pl->nmembers + 1, sizeof (fj_member_t), 16)) < 0)
            return fj_json_fail (s, -rc, s->p);
        /* the last occurrence of a member counts */
        if (is_events)
            pl->events_member = (int)pl->nmembers;
        else if (KEY_IS (buf, m.key, escaped, "jobspec"))
            pl->jobspec_member = (int)pl->nmembers;
        else if (KEY_IS (buf, m.key, escaped, "R"))
            pl->R_member = (int)pl->nmembers;
        pl->members[pl->nmembers++] = m;
    } while ((rc = fj_json_next_or_close (s, '}')) == 1);
    return rc;
}

void fj_payload_init (fj_payload_t *p)
{
    memset (p, 0, sizeof (*p));
    p->events_member = p->jobspec_member = p->R_member = -1;
}

void fj_payload_release (fj_payload_t *p)
{
    free (p->members);
    free (p->entries);
    fj_payload_init (p);
}

int fj_payload_parse (fj_payload_t *p, const char *buf, size_t len,
                      fj_error_t *err)
{
    fj_scanner_t s = {
        .start = (const unsigned char *)buf,
        .p = (const unsigned char *)buf,
        .end = (const unsigned char *)buf + len,
        .err = err,
    };
    int rc;

    err->code = FJ_OK;
    err->offset = 0;
    p->buf = buf;
    p->len = len;
    p->nmembers = p->nentries = 0;
    p->id_kind = FJ_ID_ABSENT;
    p->id = 0;
    p->events_member = p->jobspec_member = p->R_member = -1;
    if (len > FJ_MAX_PAYLOAD)
        return fj_fail (err, FJ_ETOOBIG, 0);
    if ((rc = scan_payload (&s, p)) < 0)
        return rc;
    fj_json_skip_ws (&s);
    if (s.p != s.end)
        return fj_json_fail (&s, FJ_ETRAILING, s.p);
    if (s.shape_code)   /* valid JSON, not a journal response */
        return fj_fail (err, s.shape_code, s.shape_offset);
    if (p->events_member < 0)
        return fj_fail (err, FJ_ENO_EVENTS, 0);
    return FJ_OK;
}
