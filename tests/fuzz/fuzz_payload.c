/* fuzz_payload.c - libFuzzer target for fj_payload_parse() (csrc/fj_payload.c
 * over the scanner units fj_json.c, fj_string.c and fj_number.c).
 *
 * Build and run through tests/fuzz/run.sh, which does (roughly):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -Icsrc \
 *         tests/fuzz/fuzz_payload.c csrc/[a-z]*.c -o fuzz_payload
 *   ./fuzz_payload -max_len=1048576 CORPUS_DIR
 *
 * To replay one input (a crash file, a regression): ./fuzz_payload FILE
 *
 * Every input is parsed as a journal response payload with one fj_payload_t
 * reused across inputs, as fj_stream_t reuses its scratch index in
 * production, so stale members/entries from a previous, larger parse would
 * show.  Besides the sanitizers, each result is checked two ways:
 *
 *  1. Invariants of the index: every span inside the buffer, entry spans
 *     inside the "events" member, name/context spans inside their entry,
 *     brackets and quotes where the spans say; on error, a known code and
 *     err.offset <= len.
 *
 *  2. A differential oracle written independently of the scanner (a plain
 *     byte-at-a-time recursive validator, then a walk of the validated text)
 *     decides what the result must be:
 *       - not JSON (RFC 8259, strict UTF-8)   -> a syntax error (< 30),
 *         even where a shape problem comes first in the text;
 *       - nesting over FJ_MAX_DEPTH first     -> FJ_EDEPTH;
 *       - JSON of the wrong shape             -> a shape error (>= 30);
 *       - a journal response                  -> FJ_OK, and then members,
 *         id, entries, timestamps (bit for bit against strtod), names,
 *         contexts and the entry flags (FJ_ENTRY_WIDE_INT: a number in the
 *         entry has an integer part of FJ_WIDE_INT_DIGITS or more digits;
 *         FJ_ENTRY_ISOLATE: the entry nests over FJ_PY_SAFE_DEPTH or has
 *         an integer part over FJ_PY_SAFE_DIGITS) must match the oracle.
 *     Shape, as the scanner defines it (Python's json semantics): the
 *     payload is an object whose last "events" member is an array, each
 *     element of it an object whose last "timestamp" is a number and last
 *     "name" a string.  The core's escape decoder (fj_string_equals())
 *     must agree with the oracle's (oracle_string.h, from RFC 8259) on
 *     every name, for ASCII and non-ASCII probes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_payload.h"
#include "fj_string.h"
#include "oracle_string.h"

/* Abort with a message: libFuzzer saves the input as a crash. */
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "fuzz_payload: check failed at line %d: %s\n", \
                     __LINE__, #cond);                                      \
            abort ();                                                       \
        }                                                                   \
    } while (0)

/* ------------------------------------------------------------------------
 * The oracle, pass 1: validate.  Deliberately naive (one byte at a time,
 * explicit range tables) so that it shares no cleverness with the scanner.
 */

enum { V_OK, V_INVALID, V_TOO_DEEP };

struct v {
    const uint8_t *b;
    size_t n;
    size_t i;
    int depth;
    int status;     /* first problem found, in document order */
};

static int v_more (struct v *v)
{
    return v->status == V_OK && v->i < v->n;
}

static void v_bad (struct v *v)
{
    if (v->status == V_OK)
        v->status = V_INVALID;
}

static void v_ws (struct v *v)
{
    while (v->i < v->n
           && (v->b[v->i] == 0x20 || v->b[v->i] == 0x09 || v->b[v->i] == 0x0A
               || v->b[v->i] == 0x0D))
        v->i++;
}

static int v_peek (struct v *v)
{
    return v->i < v->n ? v->b[v->i] : -1;
}

static int is_hex (int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence, RFC 3629 table 4 ("well-formed byte sequences"). */
static void v_utf8 (struct v *v)
{
    static const struct {
        uint8_t lo0, hi0, lo1, hi1;
        int len;
    } rows[] = {
        { 0xC2, 0xDF, 0x80, 0xBF, 2 },
        { 0xE0, 0xE0, 0xA0, 0xBF, 3 },
        { 0xE1, 0xEC, 0x80, 0xBF, 3 },
        { 0xED, 0xED, 0x80, 0x9F, 3 },
        { 0xEE, 0xEF, 0x80, 0xBF, 3 },
        { 0xF0, 0xF0, 0x90, 0xBF, 4 },
        { 0xF1, 0xF3, 0x80, 0xBF, 4 },
        { 0xF4, 0xF4, 0x80, 0x8F, 4 },
    };
    uint8_t c = v->b[v->i];
    for (size_t r = 0; r < sizeof (rows) / sizeof (rows[0]); r++) {
        if (c < rows[r].lo0 || c > rows[r].hi0)
            continue;
        if (v->i + (size_t)rows[r].len > v->n) {
            v_bad (v);
            return;
        }
        uint8_t c1 = v->b[v->i + 1];
        if (c1 < rows[r].lo1 || c1 > rows[r].hi1) {
            v_bad (v);
            return;
        }
        for (int k = 2; k < rows[r].len; k++) {
            uint8_t ck = v->b[v->i + (size_t)k];
            if (ck < 0x80 || ck > 0xBF) {
                v_bad (v);
                return;
            }
        }
        v->i += (size_t)rows[r].len;
        return;
    }
    v_bad (v);
}

static void v_string (struct v *v)
{
    v->i++; /* opening quote */
    for (;;) {
        if (v->i >= v->n) {
            v_bad (v);
            return;
        }
        uint8_t c = v->b[v->i];
        if (c == '"') {
            v->i++;
            return;
        }
        if (c < 0x20) {
            v_bad (v);
            return;
        }
        if (c >= 0x80) {
            v_utf8 (v);
            if (v->status != V_OK)
                return;
            continue;
        }
        if (c != '\\') {
            v->i++;
            continue;
        }
        if (v->i + 1 >= v->n) {
            v_bad (v);
            return;
        }
        uint8_t e = v->b[v->i + 1];
        if (e == 'u') {
            if (v->i + 6 > v->n) {
                v_bad (v);
                return;
            }
            for (int k = 2; k < 6; k++)
                if (!is_hex (v->b[v->i + (size_t)k])) {
                    v_bad (v);
                    return;
                }
            v->i += 6;
        }
        else if (strchr ("\"\\/bfnrt", e) && e != 0)
            v->i += 2;
        else {
            v_bad (v);
            return;
        }
    }
}

static int is_digit (int c)
{
    return c >= '0' && c <= '9';
}

static void v_number (struct v *v)
{
    if (v_peek (v) == '-')
        v->i++;
    if (v_peek (v) == '0')
        v->i++;
    else if (is_digit (v_peek (v)) && v_peek (v) != '0') {
        while (is_digit (v_peek (v)))
            v->i++;
    }
    else {
        v_bad (v);
        return;
    }
    if (v_peek (v) == '.') {
        v->i++;
        if (!is_digit (v_peek (v))) {
            v_bad (v);
            return;
        }
        while (is_digit (v_peek (v)))
            v->i++;
    }
    if (v_peek (v) == 'e' || v_peek (v) == 'E') {
        v->i++;
        if (v_peek (v) == '+' || v_peek (v) == '-')
            v->i++;
        if (!is_digit (v_peek (v))) {
            v_bad (v);
            return;
        }
        while (is_digit (v_peek (v)))
            v->i++;
    }
    /* A digit right after "0" ("01") is caught by the caller: what follows
     * a value must be ',', a closer, white space or the end. */
}

static void v_value (struct v *v);

static void v_word (struct v *v, const char *w)
{
    size_t n = strlen (w);
    if (v->n - v->i < n || memcmp (v->b + v->i, w, n) != 0) {
        v_bad (v);
        return;
    }
    v->i += n;
}

/* Container: '[' or '{' at v->i. */
static void v_container (struct v *v, int object)
{
    uint8_t closer = object ? '}' : ']';

    if (++v->depth > FJ_MAX_DEPTH) {
        if (v->status == V_OK)
            v->status = V_TOO_DEEP;
        return;
    }
    v->i++;
    v_ws (v);
    if (v_peek (v) == closer) {
        v->i++;
        v->depth--;
        return;
    }
    for (;;) {
        if (object) {
            v_ws (v);
            if (v_peek (v) != '"') {
                v_bad (v);
                return;
            }
            v_string (v);
            if (v->status != V_OK)
                return;
            v_ws (v);
            if (v_peek (v) != ':') {
                v_bad (v);
                return;
            }
            v->i++;
        }
        v_value (v);
        if (v->status != V_OK)
            return;
        v_ws (v);
        int c = v_peek (v);
        if (c == ',') {
            v->i++;
            continue;
        }
        if (c == closer) {
            v->i++;
            v->depth--;
            return;
        }
        v_bad (v);
        return;
    }
}

static void v_value (struct v *v)
{
    v_ws (v);
    if (!v_more (v)) {
        v_bad (v);
        return;
    }
    int c = v_peek (v);
    if (c == '{' || c == '[')
        v_container (v, c == '{');
    else if (c == '"')
        v_string (v);
    else if (c == 't')
        v_word (v, "true");
    else if (c == 'f')
        v_word (v, "false");
    else if (c == 'n')
        v_word (v, "null");
    else if (c == '-' || is_digit (c))
        v_number (v);
    else
        v_bad (v);
}

static int oracle_validate (const uint8_t *b, size_t n)
{
    struct v v = { .b = b, .n = n };
    v_value (&v);
    if (v.status == V_OK) {
        v_ws (&v);
        if (v.i != n)
            v.status = V_INVALID;
    }
    return v.status;
}

/* ------------------------------------------------------------------------
 * The oracle, pass 2: walk text already known to be valid JSON.
 */

/* Index one past the value starting at i (after white space). */
static size_t skip_value (const uint8_t *b, size_t n, size_t i)
{
    int depth = 0;
    do {
        while (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')
            i++;
        uint8_t c = b[i];
        if (c == '"') {
            for (i++; b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
            i++;
        }
        else if (c == '[' || c == '{') {
            depth++;
            i++;
        }
        else if (c == ']' || c == '}') {
            depth--;
            i++;
        }
        else if (c == ',' || c == ':')
            i++;
        else {
            while (i < n && b[i] != ',' && b[i] != ']' && b[i] != '}'
                   && b[i] != ' ' && b[i] != '\t' && b[i] != '\n'
                   && b[i] != '\r')
                i++;
        }
    } while (depth > 0);
    return i;
}

static size_t skip_ws (const uint8_t *b, size_t n, size_t i)
{
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n'
                     || b[i] == '\r'))
        i++;
    return i;
}

struct o_member {
    size_t key_off, key_len;   /* contents between the quotes */
    size_t val_off, val_len;
    int key_escaped;
};

struct o_entry {
    size_t off, len;
    size_t ts_off, ts_len;     /* last "timestamp" literal */
    size_t name_off, name_len; /* last "name" contents */
    size_t ctx_off, ctx_len;   /* last "context" value, len 0 if none */
    int has_ts, has_name, has_ctx, regular, ts_int, name_escaped;
};

struct oracle {
    int shape_ok;
    struct o_member *members;
    size_t nmembers;
    struct o_entry *entries;   /* of the last "events" member */
    size_t nentries;
};

/* Read a string at b[i] == '"'; returns the index past it. */
static size_t read_string (const uint8_t *b, size_t i, size_t *off,
                           size_t *len, int *escaped)
{
    size_t start = ++i;
    int esc = 0;
    for (; b[i] != '"'; i++)
        if (b[i] == '\\') {
            esc = 1;
            i++;
        }
    *off = start;
    *len = i - start;
    if (escaped)
        *escaped = esc;
    return i + 1;
}

static int is_number_start (uint8_t c)
{
    return c == '-' || is_digit (c);
}

/* Check one "events" array value at b[i] ('['); fills o->entries when
 * `keep`.  Returns 0 if the shape is wrong. */
static int walk_events (const uint8_t *b, size_t n, size_t i,
                        struct oracle *o, int keep)
{
    if (b[i] != '[')
        return 0;
    if (keep)
        o->nentries = 0;
    i = skip_ws (b, n, i + 1);
    if (b[i] == ']')
        return 1;
    for (;;) {
        i = skip_ws (b, n, i);
        struct o_entry e = { .off = i };
        if (b[i] != '{')
            return 0;
        i = skip_ws (b, n, i + 1);
        int position = 0;
        e.regular = 1;
        if (b[i] != '}') {
            for (;;) {
                size_t koff, klen, voff;
                int kesc;
                i = skip_ws (b, n, i);
                i = read_string (b, i, &koff, &klen, &kesc);
                i = skip_ws (b, n, i);
                i = skip_ws (b, n, i + 1);  /* ':' */
                voff = i;
                i = skip_value (b, n, i);
                static const char *regular_keys[] = { "timestamp", "name",
                                                      "context" };
                /* Regular: exactly timestamp, name[, context], written
                 * plainly (compared as raw bytes, not decoded). */
                if (position >= 3
                    || klen != strlen (regular_keys[position])
                    || memcmp (b + koff, regular_keys[position], klen) != 0)
                    e.regular = 0;
                position++;
                /* a repeated member: the last occurrence counts */
                if (decoded_equals (b + koff, klen, "timestamp")) {
                    e.has_ts = is_number_start (b[voff]);
                    e.ts_off = voff;
                    e.ts_len = i - voff;
                    e.ts_int = 1;
                    for (size_t k = voff; k < i; k++)
                        if (b[k] == '.' || b[k] == 'e' || b[k] == 'E')
                            e.ts_int = 0;
                }
                else if (decoded_equals (b + koff, klen, "name")) {
                    e.has_name = b[voff] == '"';
                    if (e.has_name)
                        read_string (b, voff, &e.name_off, &e.name_len,
                                     &e.name_escaped);
                }
                else if (decoded_equals (b + koff, klen, "context")) {
                    e.has_ctx = 1;
                    e.ctx_off = voff;
                    e.ctx_len = i - voff;
                }
                i = skip_ws (b, n, i);
                if (b[i] == ',') {
                    i++;
                    continue;
                }
                break;   /* '}' */
            }
        }
        i++;   /* '}' */
        e.len = i - e.off;
        if (!e.has_ts || !e.has_name)
            return 0;
        if (e.ts_int)
            e.regular = 0;
        if (keep) {
            o->entries = realloc (o->entries,
                                  (o->nentries + 1) * sizeof (*o->entries));
            CHECK (o->entries);
            o->entries[o->nentries++] = e;
        }
        i = skip_ws (b, n, i);
        if (b[i] == ',') {
            i++;
            continue;
        }
        return 1;   /* ']' */
    }
}

static void oracle_shape (const uint8_t *b, size_t n, struct oracle *o)
{
    size_t i = skip_ws (b, n, 0);
    int have_events = 0;

    o->shape_ok = 0;
    if (b[i] != '{')
        return;
    i = skip_ws (b, n, i + 1);
    if (b[i] != '}') {
        for (;;) {
            struct o_member m;
            i = skip_ws (b, n, i);
            i = read_string (b, i, &m.key_off, &m.key_len, &m.key_escaped);
            i = skip_ws (b, n, i);
            i = skip_ws (b, n, i + 1);  /* ':' */
            m.val_off = i;
            i = skip_value (b, n, i);
            m.val_len = i - m.val_off;
            o->members = realloc (o->members,
                                  (o->nmembers + 1) * sizeof (*o->members));
            CHECK (o->members);
            o->members[o->nmembers++] = m;
            if (decoded_equals (b + m.key_off, m.key_len, "events")) {
                /* As with Python's json, the last occurrence counts. */
                have_events = walk_events (b, n, m.val_off, o, 1);
            }
            i = skip_ws (b, n, i);
            if (b[i] == ',') {
                i++;
                continue;
            }
            break;
        }
    }
    o->shape_ok = have_events;
}

/* True if the valid JSON text b[off..off+len) holds a number whose
 * integer part has FJ_WIDE_INT_DIGITS or more digits (one that may not
 * fit 64 bits). */
static int has_wide_int (const uint8_t *b, size_t off, size_t len)
{
    for (size_t i = off, end = off + len; i < end;) {
        if (b[i] == '"') {              /* skip a string */
            for (i++; b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
            i++;
        }
        else if (b[i] == '-' || is_digit (b[i])) {
            size_t digits = 0;
            if (b[i] == '-')
                i++;
            for (; i < end && is_digit (b[i]); i++)
                digits++;
            if (digits >= FJ_WIDE_INT_DIGITS)
                return 1;
            while (i < end && (is_digit (b[i]) || b[i] == '.' || b[i] == 'e'
                               || b[i] == 'E' || b[i] == '+' || b[i] == '-'))
                i++;                    /* fraction and exponent */
        }
        else
            i++;
    }
    return 0;
}

/* True if Python's json may fail on the entry b[off..off+len): nested more
 * than FJ_PY_SAFE_DEPTH levels counting the entry itself, or holding a
 * number whose integer part, sign included, is longer than
 * FJ_PY_SAFE_DIGITS characters. */
static int entry_isolate (const uint8_t *b, size_t off, size_t len)
{
    int depth = 0, deepest = 0;
    for (size_t i = off, end = off + len; i < end;) {
        uint8_t c = b[i];
        if (c == '"') {
            for (i++; b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
            i++;
        }
        else if (c == '[' || c == '{') {
            if (++depth > deepest)
                deepest = depth;
            i++;
        }
        else if (c == ']' || c == '}') {
            depth--;
            i++;
        }
        else if (c == '-' || is_digit (c)) {
            size_t start = i;
            if (c == '-')
                i++;
            while (i < end && is_digit (b[i]))
                i++;
            if (i - start > FJ_PY_SAFE_DIGITS)
                return 1;
            while (i < end && (is_digit (b[i]) || b[i] == '.' || b[i] == 'e'
                               || b[i] == 'E' || b[i] == '+' || b[i] == '-'))
                i++;
        }
        else
            i++;
    }
    return deepest > FJ_PY_SAFE_DEPTH;
}

static void oracle_release (struct oracle *o)
{
    free (o->members);
    free (o->entries);
}

/* Index of the last member whose decoded key is `key`, or -1. */
static int oracle_member (const uint8_t *b, const struct oracle *o,
                          const char *key)
{
    for (size_t i = o->nmembers; i-- > 0;)
        if (decoded_equals (b + o->members[i].key_off, o->members[i].key_len,
                            key))
            return (int)i;
    return -1;
}

/* The id as the oracle sees it: FJ_ID_* and value. */
static int oracle_id (const uint8_t *b, const struct oracle *o, int64_t *id)
{
    int m = oracle_member (b, o, "id");
    if (m < 0)
        return FJ_ID_ABSENT;
    const uint8_t *t = b + o->members[m].val_off;
    size_t len = o->members[m].val_len;
    if (!is_number_start (t[0]))
        return FJ_ID_OTHER;
    for (size_t k = 0; k < len; k++)
        if (t[k] == '.' || t[k] == 'e' || t[k] == 'E')
            return FJ_ID_OTHER;
    /* Integer literal: in int64 range?  Compare digit strings, no
     * arithmetic that could itself overflow. */
    int neg = t[0] == '-';
    const char *digits = (const char *)t + neg;
    size_t nd = len - (size_t)neg;
    const char *limit = neg ? "9223372036854775808" : "9223372036854775807";
    if (nd > 19 || (nd == 19 && memcmp (digits, limit, 19) > 0))
        return FJ_ID_OTHER;
    char buf[24];
    memcpy (buf, t, len);
    buf[len] = 0;
    long long v = strtoll (buf, NULL, 10);
    *id = (int64_t)v;
    return FJ_ID_INT;
}

static double oracle_number (const uint8_t *t, size_t len)
{
    char *s = malloc (len + 1);
    CHECK (s);
    memcpy (s, t, len);
    s[len] = 0;
    double d = strtod (s, NULL);   /* no setlocale(): the "C" locale */
    free (s);
    return d;
}

/* ------------------------------------------------------------------------
 * Checks on the scanner's result.
 */

static int known_code (int code)
{
    switch (code) {
        case FJ_ENOMEM: case FJ_ETOOBIG: case FJ_ETRUNCATED:
        case FJ_ESYNTAX: case FJ_ESTRING_CTRL: case FJ_EESCAPE:
        case FJ_EUTF8: case FJ_ENUMBER: case FJ_EDEPTH: case FJ_ETRAILING:
        case FJ_ENOT_OBJECT: case FJ_ENO_EVENTS: case FJ_EEVENTS_TYPE:
        case FJ_EENTRY_TYPE: case FJ_ETIMESTAMP: case FJ_ENAME:
            return 1;
    }
    return 0;   /* FJ_EID belongs to fj_stream, never to the parser */
}

static int inside (fj_span_t in, fj_span_t out)
{
    return in.off >= out.off
           && (uint64_t)in.off + in.len <= (uint64_t)out.off + out.len;
}

static int in_buffer (fj_span_t s, size_t len)
{
    return (uint64_t)s.off + s.len <= len;
}

static void check_index (const fj_payload_t *p, const uint8_t *b, size_t n)
{
    CHECK (p->buf == (const char *)b && p->len == n);
    CHECK (p->events_member >= 0 && (size_t)p->events_member < p->nmembers);
    CHECK (p->nmembers <= p->members_cap && p->nentries <= p->entries_cap);
    CHECK (p->jobspec_member < (int)p->nmembers);
    CHECK (p->R_member < (int)p->nmembers);
    for (size_t i = 0; i < p->nmembers; i++) {
        const fj_member_t *m = &p->members[i];
        CHECK (in_buffer (m->key, n) && in_buffer (m->value, n));
        CHECK (m->key.off >= 1 && b[m->key.off - 1] == '"');
        CHECK (b[m->key.off + m->key.len] == '"');
        CHECK (m->value.len > 0);
        CHECK (m->key.off + m->key.len < m->value.off);
        if (i > 0)   /* in document order, not overlapping */
            CHECK (p->members[i - 1].value.off + p->members[i - 1].value.len
                   < m->key.off);
        int escaped = memchr (b + m->key.off, '\\', m->key.len) != NULL;
        CHECK (!!(m->flags & FJ_MEMBER_KEY_ESCAPED) == escaped);
    }
    fj_span_t events = p->members[p->events_member].value;
    CHECK (b[events.off] == '[' && b[events.off + events.len - 1] == ']');
    for (size_t i = 0; i < p->nentries; i++) {
        const fj_entry_t *e = &p->entries[i];
        CHECK (in_buffer (e->entry, n));
        CHECK (inside (e->entry, events));
        CHECK (e->entry.len >= 2 && b[e->entry.off] == '{'
               && b[e->entry.off + e->entry.len - 1] == '}');
        if (i > 0)
            CHECK (p->entries[i - 1].entry.off + p->entries[i - 1].entry.len
                   < e->entry.off);
        CHECK (inside (e->name, e->entry));
        CHECK (b[e->name.off - 1] == '"' && b[e->name.off + e->name.len] == '"');
        if (e->flags & FJ_ENTRY_HAS_CONTEXT) {
            CHECK (e->context.len > 0 && inside (e->context, e->entry));
        }
        else
            CHECK (e->context.len == 0);
        CHECK ((e->flags & ~(FJ_ENTRY_HAS_CONTEXT | FJ_ENTRY_IRREGULAR
                             | FJ_ENTRY_NAME_ESCAPED | FJ_ENTRY_WIDE_INT
                             | FJ_ENTRY_ISOLATE)) == 0);
    }
}

/* The scanner's success must match the oracle's reading field by field. */
static void check_against_oracle (const fj_payload_t *p, const uint8_t *b,
                                  const struct oracle *o)
{
    CHECK (p->nmembers == o->nmembers);
    for (size_t i = 0; i < o->nmembers; i++) {
        const fj_member_t *m = &p->members[i];
        CHECK (m->key.off == o->members[i].key_off);
        CHECK (m->key.len == o->members[i].key_len);
        CHECK (m->value.off == o->members[i].val_off);
        CHECK (m->value.len == o->members[i].val_len);
    }
    CHECK (p->events_member == oracle_member (b, o, "events"));
    CHECK (p->jobspec_member == oracle_member (b, o, "jobspec"));
    CHECK (p->R_member == oracle_member (b, o, "R"));
    int64_t id = 0;
    int kind = oracle_id (b, o, &id);
    CHECK (p->id_kind == kind);
    if (kind == FJ_ID_INT)
        CHECK (p->id == id);

    CHECK (p->nentries == o->nentries);
    for (size_t i = 0; i < o->nentries; i++) {
        const fj_entry_t *e = &p->entries[i];
        const struct o_entry *oe = &o->entries[i];
        CHECK (e->entry.off == oe->off && e->entry.len == oe->len);
        CHECK (e->name.off == oe->name_off && e->name.len == oe->name_len);
        CHECK (!!(e->flags & FJ_ENTRY_NAME_ESCAPED) == oe->name_escaped);
        CHECK (!!(e->flags & FJ_ENTRY_HAS_CONTEXT) == oe->has_ctx);
        if (oe->has_ctx)
            CHECK (e->context.off == oe->ctx_off
                   && e->context.len == oe->ctx_len);
        CHECK (((e->flags & FJ_ENTRY_IRREGULAR) == 0) == oe->regular);
        CHECK (!!(e->flags & FJ_ENTRY_WIDE_INT)
               == has_wide_int (b, oe->off, oe->len));
        CHECK (!!(e->flags & FJ_ENTRY_ISOLATE)
               == entry_isolate (b, oe->off, oe->len));
        /* Python's float() of the literal, bit for bit (this is what the
         * x87 fast path in number_value() must reproduce). */
        double want = oracle_number (b + oe->ts_off, oe->ts_len);
        CHECK (memcmp (&want, &e->timestamp, sizeof (double)) == 0);
        /* The core's decoder (fj_string_equals()) agrees with the
         * oracle's on a validated name: it equals the oracle's decoding,
         * and it equals a probe, ASCII or beyond (U+00E9, a pair, a lone
         * surrogate as surrogatepass encodes it), just when the oracle's
         * decoding does. */
        size_t dlen;
        unsigned char *decoded = oracle_decode (b + oe->name_off,
                                                oe->name_len, &dlen);
        CHECK (fj_string_equals ((const char *)b + e->name.off, e->name.len,
                                 (const char *)decoded, dlen));
        free (decoded);
        static const char *probe[] = {
            "submit", "alloc", "", "a", "caf\xc3\xa9", "\xf0\x9f\x98\x80",
            "\xed\xa0\x80", "\xed\xb0\x80" "a",
        };
        for (size_t k = 0; k < sizeof (probe) / sizeof (probe[0]); k++)
            CHECK (fj_string_equals ((const char *)b + e->name.off,
                                     e->name.len, probe[k], strlen (probe[k]))
                   == decoded_equals (b + oe->name_off, oe->name_len,
                                      probe[k]));
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    /* One index for the whole run, as in production (fj_stream_t's
     * scratch): arrays grow and are reused, never freed between inputs. */
    static fj_payload_t index;
    static int initialised;
    fj_error_t err = { .code = -12345, .offset = (size_t)-1 };

    if (!initialised) {
        fj_payload_init (&index);
        initialised = 1;
    }
    int rc = fj_payload_parse (&index, (const char *)data, size, &err);
    CHECK (rc == -err.code);
    rc = err.code;

    int valid = oracle_validate (data, size);
    if (rc != FJ_OK) {
        CHECK (known_code (rc));
        CHECK (err.offset <= size);
        /* Bad JSON is reported as such, whatever its shape. */
        if (valid == V_TOO_DEEP)
            CHECK (rc == FJ_EDEPTH);
        else if (valid == V_INVALID)
            CHECK (rc < FJ_FIRST_SHAPE_ERROR);
        else if (valid == V_OK) {
            /* Valid JSON, so only a shape error is possible, and the
             * oracle must agree that the shape is wrong. */
            CHECK (rc >= FJ_FIRST_SHAPE_ERROR);
            struct oracle o = { 0 };
            oracle_shape (data, size, &o);
            CHECK (!o.shape_ok);
            oracle_release (&o);
        }
        return 0;
    }
    CHECK (err.offset == 0);
    CHECK (valid == V_OK);
    check_index (&index, data, size);
    struct oracle o = { 0 };
    oracle_shape (data, size, &o);
    CHECK (o.shape_ok);
    check_against_oracle (&index, data, &o);
    oracle_release (&o);
    return 0;
}
