/* fj_json.c - strict RFC 8259 scanning (see fj_json.h). */
#include <string.h>

#include "fj_json.h"
#include "fj_limits.h"
#include "fj_string.h"

/* Levels fj_json_skip_container() follows itself: one bit each in a
 * word. */
#define FAST_MAX_LEVELS 64

/* Expect one structural character after optional white space. */
static int expect (fj_scanner_t *s, unsigned char c)
{
    int rc = fj_json_at_value (s);
    if (rc < 0)
        return rc;
    if (*s->p != c)
        return fj_json_fail (s, FJ_ESYNTAX, s->p);
    s->p++;
    return 0;
}

int fj_json_string (fj_scanner_t *s, fj_span_t *span, int *escaped)
{
    const unsigned char *open = s->p++, *bad;
    int esc = 0;

    for (;;) {
        s->p = fj_plain_end (s->p, s->end);
        if (s->p >= s->end)
            return fj_json_fail (s, FJ_ETRUNCATED, s->p);
        unsigned char c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fj_json_fail (s, FJ_ESTRING_CTRL, s->p);
        if (c >= 0x80) {
            int n = fj_utf8_length (s->p, s->end, &bad);
            if (n <= 0)
                return fj_json_fail (s, n < 0 ? FJ_ETRUNCATED : FJ_EUTF8,
                                     bad);
            s->p += n;
            continue;
        }
        /* backslash */
        esc = 1;
        int n = fj_escape_length (s->p, s->end);
        if (n < 0)
            return fj_json_fail (s, FJ_ETRUNCATED, s->end);
        if (n == 0)
            return fj_json_fail (s, FJ_EESCAPE, s->p);
        s->p += n;
    }
    span->off = (uint32_t)(open + 1 - s->start);
    span->len = (uint32_t)(s->p - open - 1);
    s->p++; /* closing quote */
    if (escaped)
        *escaped = esc;
    return 0;
}

/* Past one or more digits from p on, or NULL if there is none. */
static const unsigned char *fast_digits (const unsigned char *p,
                                         const unsigned char *end)
{
    const unsigned char *first = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p == first ? NULL : p;
}

static int scan_digits (fj_scanner_t *s)
{
    const unsigned char *after = fast_digits (s->p, s->end);
    if (!after)
        return fj_json_fail (s, s->p >= s->end ? FJ_ETRUNCATED : FJ_ENUMBER,
                             s->p);
    s->p = after;
    return 0;
}

int fj_json_number (fj_scanner_t *s, int *is_int)
{
    const unsigned char *first = s->p;
    int integer = 1, rc;

    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return fj_json_fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            return fj_json_fail (s, FJ_ENUMBER, first);   /* leading zero */
    }
    else if ((rc = scan_digits (s)) < 0)
        return rc;
    if (s->p - first >= FJ_WIDE_INT_DIGITS + (*first == '-')) {
        s->wide_int = 1;
        if (s->p - first > FJ_PY_SAFE_DIGITS)
            s->long_int = 1;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        integer = 0;
        if ((rc = scan_digits (s)) < 0)
            return rc;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        integer = 0;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if ((rc = scan_digits (s)) < 0)
            return rc;
    }
    if (is_int)
        *is_int = integer;
    return 0;
}

static int scan_literal (fj_scanner_t *s, const char *word)
{
    size_t n = strlen (word);
    for (size_t i = 0; i < n; i++) {
        if (s->p + i >= s->end)
            return fj_json_fail (s, FJ_ETRUNCATED, s->p + i);
        if (s->p[i] != (unsigned char)word[i])
            return fj_json_fail (s, FJ_ESYNTAX, s->p);
    }
    s->p += n;
    return 0;
}

/* ------------------------------------------------------------------
 * The fast path: fj_json_skip_container() and its helpers.  They read like
 * the recursive scanner but keep no spans and report no errors. */

/* Past a string's closing quote (p just after the opening one), or NULL
 * for anything unusual: an invalid escape, a control character, a byte
 * of 0x80 or above (UTF-8 is left to the recursive scanner), the end. */
static const unsigned char *fast_string (const unsigned char *p,
                                         const unsigned char *end)
{
    for (;;) {
        p = fj_plain_end (p, end);
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        int n = *p == '\\' ? fj_escape_length (p, end) : 0;
        if (n <= 0)
            return NULL;
        p += n;
    }
}

const unsigned char *fj_json_fast_number (const unsigned char *p,
                                          const unsigned char *end)
{
    const unsigned char *digits;

    if (p < end && *p == '-')
        p++;
    digits = p;
    if (p < end && *p == '0')
        p++;
    else if (!(p = fast_digits (p, end)) || p - digits >= FJ_WIDE_INT_DIGITS)
        return NULL;
    if (p < end && *p >= '0' && *p <= '9')
        return NULL;   /* leading zero */
    if (p < end && *p == '.' && !(p = fast_digits (p + 1, end)))
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = fast_digits (p, end)))
            return NULL;
    }
    return p;
}

const unsigned char *fj_json_fast_scalar (const unsigned char *p,
                                          const unsigned char *end)
{
    size_t left = (size_t)(end - p);

    switch (*p) {
        case '"':
            return fast_string (p + 1, end);
        case 't':
            return left >= 4 && memcmp (p, "true", 4) == 0 ? p + 4 : NULL;
        case 'f':
            return left >= 5 && memcmp (p, "false", 5) == 0 ? p + 5 : NULL;
        case 'n':
            return left >= 4 && memcmp (p, "null", 4) == 0 ? p + 4 : NULL;
        default:
            return fj_json_fast_number (p, end);
    }
}

/* Gives up (-1) on anything it leaves to the recursive scanner: any error,
 * a non-ASCII byte, a wide integer, nesting beyond FAST_MAX_LEVELS. */
int fj_json_skip_container (fj_scanner_t *s)
{
    const unsigned char *p = s->p, *end = s->end;
    uint64_t objects = 0;   /* per open level, lowest bit innermost:
                               1 for an object, 0 for an array */
    int level = 0, deepest = 0;

    for (;;) {
        /* p is at a value */
        if (*p == '{' || *p == '[') {
            int object = *p == '{';
            if (level == FAST_MAX_LEVELS
                || s->depth + level + 1 > FJ_MAX_DEPTH)
                return -1;
            objects = (objects << 1) | (uint64_t)object;
            if (++level > deepest)
                deepest = level;
            p = fj_ws_end (p + 1, end);
            if (p >= end)
                return -1;
            if (*p == (object ? '}' : ']')) {
                p++;
                objects >>= 1;
                level--;
            }
            else if (!object)
                continue;   /* at the first element */
            else
                goto key;
        }
        else if (!(p = fj_json_fast_scalar (p, end)))
            return -1;
        /* after a value: a comma or closers */
        for (;;) {
            if (level == 0) {
                s->p = p;
                if (s->depth + deepest > s->max_depth)
                    s->max_depth = s->depth + deepest;
                return 0;
            }
            p = fj_ws_end (p, end);
            if (p >= end)
                return -1;
            if (*p != ((objects & 1) ? '}' : ']'))
                break;
            p++;
            objects >>= 1;
            level--;
        }
        if (*p != ',')
            return -1;
        p = fj_ws_end (p + 1, end);
        if (p >= end)
            return -1;
        if (!(objects & 1))
            continue;   /* at the next element */
    key:
        /* p is at an object member's key */
        if (*p != '"' || !(p = fast_string (p + 1, end)))
            return -1;
        p = fj_ws_end (p, end);
        if (p >= end || *p != ':')
            return -1;
        p = fj_ws_end (p + 1, end);
        if (p >= end)
            return -1;
    }
}

/* ------------------------------------------------------------------
 * The recursive scanner. */

int fj_json_key (fj_scanner_t *s, fj_span_t *key, int *escaped)
{
    int rc = fj_json_at_value (s);
    if (rc < 0)
        return rc;
    if (*s->p != '"')
        return fj_json_fail (s, FJ_ESYNTAX, s->p);
    if ((rc = fj_json_string (s, key, escaped)) < 0)
        return rc;
    return expect (s, ':');
}

/* The members or elements of the container just entered. */
static int scan_container (fj_scanner_t *s, int object)
{
    unsigned char closer = object ? '}' : ']';
    int rc;

    if ((rc = fj_json_descend (s)) < 0)
        return rc;
    if (fj_json_empty_container (s, closer))
        return 0;
    do {
        fj_span_t key, value;
        if ((object && (rc = fj_json_key (s, &key, NULL)) < 0)
            || (rc = fj_json_value (s, &value)) < 0)
            return rc;
    } while ((rc = fj_json_next_or_close (s, closer)) == 1);
    return rc;
}

int fj_json_value (fj_scanner_t *s, fj_span_t *span)
{
    int rc = fj_json_at_value (s);

    if (rc < 0)
        return rc;
    const unsigned char *first = s->p;
    switch (*s->p) {
        case '{':
        case '[':
            if (!s->recursive && fj_json_skip_container (s) == 0)
                break;
            /* Given up on: never try again inside it, so that no byte is
             * scanned more than twice. */
            {
                int outer = s->recursive;
                s->recursive = 1;
                rc = scan_container (s, *first == '{');
                s->recursive = outer;
            }
            break;
        case '"':
            rc = fj_json_string (s, span, NULL);
            break;
        case 't':
            rc = scan_literal (s, "true");
            break;
        case 'f':
            rc = scan_literal (s, "false");
            break;
        case 'n':
            rc = scan_literal (s, "null");
            break;
        default:
            if (fj_json_is_number_start (*s->p))
                rc = fj_json_number (s, NULL);
            else
                rc = fj_json_fail (s, FJ_ESYNTAX, s->p);
    }
    if (rc < 0)
        return rc;
    span->off = (uint32_t)(first - s->start);
    span->len = (uint32_t)(s->p - first);
    return 0;
}
