/* fj_json.h - the strict RFC 8259 scanner shared by the payload parser.
 *
 * One pass of recursive descent over the bytes.  Generic values are only
 * validated, with byte spans of what the caller asks for; fj_payload.c
 * builds the journal response's index on top of these functions.  Every
 * read is checked against the end pointer, so a truncated or hostile text
 * stops with an error code and the offset where it went wrong.
 *
 * Most bytes are in containers nobody looks inside (jobspec, R, contexts).
 * fj_json_skip_container() validates those in one loop; for anything it
 * does not handle, errors included, the recursive scanner does the
 * container again and reports exactly.
 *
 * Internal to the C core: scanning functions return 0, or a negated
 * fj_errnum with the scanner's fj_error_t filled (fj_error.h).
 */
#ifndef FJ_JSON_H
#define FJ_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "fj_error.h"
#include "fj_limits.h"
#include "fj_port.h"

typedef struct {
    uint32_t off;
    uint32_t len;
} fj_span_t;

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    int recursive;          /* inside a container skip_container() gave up
                               on: scan it all recursively */
    int depth;
    int max_depth;          /* deepest depth reached (per entry) */
    int wide_int;           /* an integer literal of FJ_WIDE_INT_DIGITS or
                               more digits was seen */
    int long_int;           /* one of more than FJ_PY_SAFE_DIGITS digits */
    int shape_code;         /* first shape error of the current "events" */
    size_t shape_offset;
    fj_error_t *err;
} fj_scanner_t;

/* Fail with code at byte at: returns -code. */
static inline int fj_json_fail (fj_scanner_t *s, int code,
                                const unsigned char *at)
{
    return fj_fail (s->err, code, (size_t)(at - s->start));
}

/* Past JSON white space from p on.  Broker payloads are compact: usually
 * there is nothing to skip. */
static inline const unsigned char *fj_ws_end (const unsigned char *p,
                                              const unsigned char *end)
{
    while (p < end && *p <= ' '
           && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static inline void fj_json_skip_ws (fj_scanner_t *s)
{
    s->p = fj_ws_end (s->p, s->end);
}

/* White space, then something: 0, or -FJ_ETRUNCATED at the end. */
static inline int fj_json_at_value (fj_scanner_t *s)
{
    fj_json_skip_ws (s);
    return s->p < s->end ? 0 : fj_json_fail (s, FJ_ETRUNCATED, s->p);
}

/* True if the byte starts a number. */
static inline int fj_json_is_number_start (unsigned char c)
{
    return c == '-' || (c >= '0' && c <= '9');
}

/* A string whose opening quote is at s->p: *span gets the raw contents,
 * *escaped (if not NULL) whether a backslash occurred. */
int fj_json_string (fj_scanner_t *s, fj_span_t *span, int *escaped);

/* A number at s->p; *is_int (if not NULL) tells whether it had neither
 * fraction nor exponent. */
int fj_json_number (fj_scanner_t *s, int *is_int);

/* Any value after optional white space; *span covers it. */
int fj_json_value (fj_scanner_t *s, fj_span_t *span);

/* An object member's key and the colon after it. */
int fj_json_key (fj_scanner_t *s, fj_span_t *key, int *escaped);

/* Enter one level of nesting at the bracket at s->p. */
static inline int fj_json_descend (fj_scanner_t *s)
{
    if (++s->depth > FJ_MAX_DEPTH)
        return fj_json_fail (s, FJ_EDEPTH, s->p);
    if (s->depth > s->max_depth)
        s->max_depth = s->depth;
    s->p++;
    return 0;
}

/* After a value inside a container: ',' (returns 1) or the closer
 * (returns 0, leaving the level). */
static inline int fj_json_next_or_close (fj_scanner_t *s,
                                         unsigned char closer)
{
    int rc = fj_json_at_value (s);
    if (rc < 0)
        return rc;
    if (*s->p == ',') {
        s->p++;
        return 1;
    }
    if (*s->p == closer) {
        s->p++;
        s->depth--;
        return 0;
    }
    return fj_json_fail (s, FJ_ESYNTAX, s->p);
}

/* True if the container just opened is empty (its closer consumed). */
static inline int fj_json_empty_container (fj_scanner_t *s,
                                           unsigned char closer)
{
    fj_json_skip_ws (s);
    if (s->p < s->end && *s->p == closer) {
        s->p++;
        s->depth--;
        return 1;
    }
    return 0;
}

/* The fast path, which keeps no spans and reports no errors: these return
 * NULL or -1 for "not handled here", and the caller scans recursively.
 *
 * fj_json_skip_container(): validate the object or array at s->p in one
 * loop; 0 with s->p past it and s->max_depth updated, or -1 with the
 * scanner untouched.  fj_json_fast_scalar(): past the string, number or
 * literal at p, or NULL.  fj_json_fast_number(): past the number at p, or
 * NULL (also for integer parts of FJ_WIDE_INT_DIGITS digits or more, which
 * fj_json_number() flags for Python). */
int fj_json_skip_container (fj_scanner_t *s);
const unsigned char *fj_json_fast_scalar (const unsigned char *p,
                                          const unsigned char *end);
const unsigned char *fj_json_fast_number (const unsigned char *p,
                                          const unsigned char *end);

#endif /* FJ_JSON_H */
