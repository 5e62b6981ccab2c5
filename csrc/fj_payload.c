/* fj_payload.c - strict RFC 8259 scanner that indexes a journal response.
 *
 * One pass of recursive descent over the bytes.  Generic values are only
 * validated; the payload object, its "events" array and the members of each
 * event entry are recorded as byte spans (see fj_payload.h).  Every read is
 * checked against the end pointer, so a truncated or hostile payload stops
 * with an error code and the offset where it went wrong.
 *
 * Most bytes are in containers nobody looks inside (jobspec, R, contexts).
 * skip_container() validates those in one loop; for anything it does not
 * handle, errors included, the recursive scanner does the container again
 * and reports exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fj_grow.h"
#include "fj_limits.h"
#include "fj_payload.h"
#include "fj_port.h"

struct scanner {
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
};

static int fail (struct scanner *s, int code, const unsigned char *at)
{
    fj_fail (s->err, code, (size_t)(at - s->start));
    return -1;
}

/* Note a shape error and go on: it is reported only if the whole payload
 * is valid JSON (a syntax error found later wins), and a later "events"
 * member replaces the one it concerns, as with Python's json. */
static void shape (struct scanner *s, int code, const unsigned char *at)
{
    if (!s->shape_code) {
        s->shape_code = code;
        s->shape_offset = (size_t)(at - s->start);
    }
}

/* Past JSON white space from p on.  Broker payloads are compact: usually
 * there is nothing to skip. */
static const unsigned char *ws_end (const unsigned char *p,
                                    const unsigned char *end)
{
    while (p < end && *p <= ' '
           && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static void skip_ws (struct scanner *s)
{
    s->p = ws_end (s->p, s->end);
}

/* Expect one structural character after optional white space. */
static int expect (struct scanner *s, unsigned char c)
{
    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p != c)
        return fail (s, FJ_ESYNTAX, s->p);
    s->p++;
    return 0;
}

static int hexval (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Validate one UTF-8 sequence starting at s->p (first byte >= 0x80),
 * per RFC 3629: no overlong forms, no UTF-16 surrogates, <= U+10FFFF. */
static int scan_utf8 (struct scanner *s)
{
    const unsigned char *q = s->p;
    unsigned char c = *q;
    unsigned char lo = 0x80, hi = 0xBF;
    int n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    else
        return fail (s, FJ_EUTF8, q);
    for (int i = 1; i <= n; i++) {
        if (q + i >= s->end)
            return fail (s, FJ_ETRUNCATED, q + i);
        unsigned char b = q[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return fail (s, FJ_EUTF8, q);
    }
    s->p = q + n + 1;
    return 0;
}

/* True for bytes a string may hold as they are: printable ASCII but the
 * quote and the backslash. */
static int is_plain (unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Nonzero if any byte of the 8-byte word x needs attention in a string:
 * below 0x20, 0x80 and above, '"' or '\\'.  The classic SWAR tests: for
 * n <= 128, (x - n*ones) & ~x & high is nonzero iff some byte is below n. */
static uint64_t special_bytes (uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t quote = x ^ (ones * '"');
    uint64_t backslash = x ^ (ones * '\\');

    return (((x - ones * 0x20) & ~x)
            | ((quote - ones) & ~quote)
            | ((backslash - ones) & ~backslash)
            | x)
           & high;
}

/* The first byte from p on that is not a plain string byte (or end),
 * eight bytes at a time where possible.  On a little-endian machine the
 * lowest flagged byte of a word is the first special one (borrows only
 * run toward higher bytes), so even a short string ends in one step. */
static FJ_HOT_INLINE const unsigned char *plain_end (
    const unsigned char *p, const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t x, special;
        memcpy (&x, p, 8);
        if ((special = special_bytes (x))) {
#if defined(FJ_LITTLE_ENDIAN) && defined(FJ_CTZ64)
            return p + FJ_CTZ64 (special) / 8;
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < end && is_plain (*p))
        p++;
    return p;
}

static void skip_plain (struct scanner *s)
{
    s->p = plain_end (s->p, s->end);
}

/* Length of the valid escape at p (a backslash): 2, or 6 for \uXXXX; 0 if
 * it is not a valid escape, -1 if the payload ends inside it. */
static int escape_length (const unsigned char *p, const unsigned char *end)
{
    if (end - p < 2)
        return -1;
    switch (p[1]) {
        case '"': case '\\': case '/': case 'b':
        case 'f': case 'n': case 'r': case 't':
            return 2;
        case 'u':
            for (int i = 2; i < 6; i++) {
                if (p + i >= end)
                    return -1;
                if (hexval (p[i]) < 0)
                    return 0;
            }
            return 6;
        default:
            return 0;
    }
}

/* Scan a string whose opening quote is at s->p.  On success *span holds
 * the raw contents and *escaped whether a backslash occurred. */
static int scan_string (struct scanner *s, fj_span_t *span, int *escaped)
{
    const unsigned char *open = s->p++;
    int esc = 0;

    for (;;) {
        skip_plain (s);
        if (s->p >= s->end)
            return fail (s, FJ_ETRUNCATED, s->p);
        unsigned char c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail (s, FJ_ESTRING_CTRL, s->p);
        if (c >= 0x80) {
            if (scan_utf8 (s) < 0)
                return -1;
            continue;
        }
        /* backslash */
        esc = 1;
        int n = escape_length (s->p, s->end);
        if (n < 0)
            return fail (s, FJ_ETRUNCATED, s->end);
        if (n == 0)
            return fail (s, FJ_EESCAPE, s->p);
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

static int scan_digits (struct scanner *s)
{
    const unsigned char *after = fast_digits (s->p, s->end);
    if (!after)
        return fail (s, s->p >= s->end ? FJ_ETRUNCATED : FJ_ENUMBER, s->p);
    s->p = after;
    return 0;
}

/* Scan a number; *is_int tells whether it had neither fraction nor
 * exponent. */
static int scan_number (struct scanner *s, int *is_int)
{
    const unsigned char *first = s->p;
    int integer = 1;

    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            return fail (s, FJ_ENUMBER, first);   /* leading zero */
    }
    else if (scan_digits (s) < 0)
        return -1;
    if (s->p - first >= FJ_WIDE_INT_DIGITS + (*first == '-')) {
        s->wide_int = 1;
        if (s->p - first > FJ_PY_SAFE_DIGITS)
            s->long_int = 1;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        integer = 0;
        if (scan_digits (s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        integer = 0;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits (s) < 0)
            return -1;
    }
    if (is_int)
        *is_int = integer;
    return 0;
}

static int scan_literal (struct scanner *s, const char *word)
{
    size_t n = strlen (word);
    for (size_t i = 0; i < n; i++) {
        if (s->p + i >= s->end)
            return fail (s, FJ_ETRUNCATED, s->p + i);
        if (s->p[i] != (unsigned char)word[i])
            return fail (s, FJ_ESYNTAX, s->p);
    }
    s->p += n;
    return 0;
}

static int scan_value (struct scanner *s, fj_span_t *span);

/* ------------------------------------------------------------------
 * The fast path: skip_container() and its helpers.  They read like the
 * recursive scanner but keep no spans and report no errors: NULL or -1
 * means "not handled here", and the caller rescans recursively. */

/* Past a string's closing quote (p just after the opening one), or NULL
 * for anything unusual: an invalid escape, a control character, a byte
 * of 0x80 or above (UTF-8 is left to scan_utf8()), the end. */
static const unsigned char *fast_string (const unsigned char *p,
                                         const unsigned char *end)
{
    for (;;) {
        p = plain_end (p, end);
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        int n = *p == '\\' ? escape_length (p, end) : 0;
        if (n <= 0)
            return NULL;
        p += n;
    }
}

/* Past a number starting at p, or NULL if invalid or if its integer part
 * has FJ_WIDE_INT_DIGITS digits or more (scan_number() flags those for
 * Python). */
static const unsigned char *fast_number (const unsigned char *p,
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

/* Past a scalar value (string, number, literal) at p, or NULL. */
static const unsigned char *fast_scalar (const unsigned char *p,
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
            return fast_number (p, end);
    }
}

/* Levels skip_container() follows itself: one bit each in a word. */
#define FAST_MAX_LEVELS 64

/* Validate the object or array at s->p as one loop.  Returns 0 with s->p
 * past it and s->max_depth updated, or -1 with the scanner untouched when
 * it finds anything it leaves to the recursive scanner: any error, a
 * non-ASCII byte, a wide integer, nesting beyond FAST_MAX_LEVELS. */
static int skip_container (struct scanner *s)
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
            p = ws_end (p + 1, end);
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
        else if (!(p = fast_scalar (p, end)))
            return -1;
        /* after a value: a comma or closers */
        for (;;) {
            if (level == 0) {
                s->p = p;
                if (s->depth + deepest > s->max_depth)
                    s->max_depth = s->depth + deepest;
                return 0;
            }
            p = ws_end (p, end);
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
        p = ws_end (p + 1, end);
        if (p >= end)
            return -1;
        if (!(objects & 1))
            continue;   /* at the next element */
    key:
        /* p is at an object member's key */
        if (*p != '"' || !(p = fast_string (p + 1, end)))
            return -1;
        p = ws_end (p, end);
        if (p >= end || *p != ':')
            return -1;
        p = ws_end (p + 1, end);
        if (p >= end)
            return -1;
    }
}

/* Enter one level of nesting at the bracket at s->p. */
static int descend (struct scanner *s)
{
    if (++s->depth > FJ_MAX_DEPTH)
        return fail (s, FJ_EDEPTH, s->p);
    if (s->depth > s->max_depth)
        s->max_depth = s->depth;
    s->p++;
    return 0;
}

/* After a value inside a container: ',' (returns 1) or the closer
 * (returns 0). */
static int next_or_close (struct scanner *s, unsigned char closer)
{
    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p == ',') {
        s->p++;
        return 1;
    }
    if (*s->p == closer) {
        s->p++;
        s->depth--;
        return 0;
    }
    return fail (s, FJ_ESYNTAX, s->p);
}

/* True if the container just opened is empty (and consume its closer). */
static int empty_container (struct scanner *s, unsigned char closer)
{
    skip_ws (s);
    if (s->p < s->end && *s->p == closer) {
        s->p++;
        s->depth--;
        return 1;
    }
    return 0;
}

static int scan_key (struct scanner *s, fj_span_t *key, int *escaped)
{
    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p != '"')
        return fail (s, FJ_ESYNTAX, s->p);
    if (scan_string (s, key, escaped) < 0)
        return -1;
    return expect (s, ':');
}

static int scan_object (struct scanner *s)
{
    int more;

    if (descend (s) < 0)
        return -1;
    if (empty_container (s, '}'))
        return 0;
    do {
        fj_span_t key, value;
        if (scan_key (s, &key, NULL) < 0 || scan_value (s, &value) < 0)
            return -1;
    } while ((more = next_or_close (s, '}')) == 1);
    return more;
}

static int scan_array (struct scanner *s)
{
    int more;

    if (descend (s) < 0)
        return -1;
    if (empty_container (s, ']'))
        return 0;
    do {
        fj_span_t value;
        if (scan_value (s, &value) < 0)
            return -1;
    } while ((more = next_or_close (s, ']')) == 1);
    return more;
}

/* Scan any JSON value after optional white space; *span covers it. */
static int scan_value (struct scanner *s, fj_span_t *span)
{
    int rc;

    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    const unsigned char *first = s->p;
    switch (*s->p) {
        case '{':
        case '[':
            if (!s->recursive && skip_container (s) == 0) {
                rc = 0;
                break;
            }
            /* Given up on: never try again inside it, so that no byte is
             * scanned more than twice. */
            {
                int outer = s->recursive;
                s->recursive = 1;
                rc = *first == '{' ? scan_object (s) : scan_array (s);
                s->recursive = outer;
            }
            break;
        case '"':
            rc = scan_string (s, span, NULL);
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
            if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
                rc = scan_number (s, NULL);
            else
                rc = fail (s, FJ_ESYNTAX, s->p);
    }
    if (rc < 0)
        return -1;
    span->off = (uint32_t)(first - s->start);
    span->len = (uint32_t)(s->p - first);
    return 0;
}

/* Python's float() of a validated JSON number: glibc's strtod rounds
 * correctly, and a "C" numeric locale makes it ignore the process locale.
 * The locale object is created once and only read afterwards. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init (void)
{
    c_locale = newlocale (LC_NUMERIC_MASK, "C", (locale_t)0);
}

static int slow_number_value (const unsigned char *text, size_t len,
                              double *out)
{
    char local[64];
    char *copy = local;

    pthread_once (&c_locale_once, c_locale_init);
    if (len >= sizeof (local) && !(copy = malloc (len + 1)))
        return -1;
    memcpy (copy, text, len);
    copy[len] = '\0';
    *out = c_locale ? strtod_l (copy, NULL, c_locale) : strtod (copy, NULL);
    if (copy != local)
        free (copy);
    return 0;
}

#if LDBL_MANT_DIG == 64
/* x87 extended precision: a 64-bit significand with an explicit leading
 * bit, then a 15-bit exponent biased by X87_BIAS. */
#define X87_BIAS 16383
/* Binary exponents below this are near double's subnormal range
 * (-1022), where rounding the x87 result to 53 bits is not the plain
 * dropping of 11 bits checked below: left to strtod. */
#define X87_MIN_EXPONENT (-1000)
/* A double keeps 53 of the 64 significand bits: the low 11 are dropped,
 * and exactly half of them set is a midpoint between two doubles. */
#define X87_DROPPED_MASK 0x7FFu
#define X87_MIDPOINT 0x400u

#if defined(FJ_LITTLE_ENDIAN)
/* Nonzero if the eight bytes of x are all ASCII digits: each byte's high
 * nibble is 3, and adding 6 to its low nibble does not carry. */
static int eight_digits (uint64_t x)
{
    const uint64_t high = 0xF0F0F0F0F0F0F0F0ull;
    return ((x & high) | (((x + 0x0606060606060606ull) & high) >> 4))
           == 0x3333333333333333ull;
}

/* The value of eight ASCII digits, the first in the lowest byte: pairs,
 * then quads, then the whole, each step one multiply. */
static uint32_t eight_digits_value (uint64_t x)
{
    x = ((x & 0x0F0F0F0F0F0F0F0Full) * 2561) >> 8;
    x = ((x & 0x00FF00FF00FF00FFull) * 6553601) >> 16;
    return (uint32_t)(((x & 0x0000FFFF0000FFFFull) * 42949672960001ull) >> 32);
}
#endif

/* Append the digits from p on to *mantissa, counting them in *count and
 * stopping once it passes FJ_MANTISSA_DIGITS (the caller then gives up).
 * Returns past the digits taken. */
static const unsigned char *add_digits (const unsigned char *p,
                                        const unsigned char *end,
                                        uint64_t *mantissa, int *count)
{
#if defined(FJ_LITTLE_ENDIAN)
    while (end - p >= 8 && *count <= FJ_MANTISSA_DIGITS) {
        uint64_t x;
        memcpy (&x, p, 8);
        if (!eight_digits (x))
            break;
        *mantissa = *mantissa * 100000000u + eight_digits_value (x);
        *count += 8;
        p += 8;
    }
#endif
    for (; p < end && *p >= '0' && *p <= '9' && *count <= FJ_MANTISSA_DIGITS;
         p++, (*count)++)
        *mantissa = *mantissa * 10 + (uint64_t)(*p - '0');
    return p;
}

/* Timestamps have 16-17 significant digits, beyond the exact-double fast
 * path, and glibc then takes a multiprecision route.  With x87 extended
 * precision, mantissa (< 2^64) and 10^k (k <= 27) are exact, so one
 * correctly rounded multiply or divide gives the value to 64 bits; rounding
 * that to 53 bits is correct unless it landed exactly on a midpoint
 * between two doubles, which we detect and leave to strtod.
 *
 * All of which holds only if long double arithmetic really keeps 64 bits:
 * an FPU set to round to 53 bits, or valgrind (which emulates the x87 with
 * doubles), would give wrong answers.  That is checked once. */
static pthread_once_t x87_once = PTHREAD_ONCE_INIT;
static int x87_precise;

static void x87_check (void)
{
    volatile long double big = 9223372036854775808.0L;   /* 2^63 */
    volatile long double one = 1.0L;
    x87_precise = (big + one) - big == one;
}

/* mantissa / 10^scale into *out, or -1 if it must be left to strtod (a
 * midpoint, or an FPU that is not precise enough). */
static int x87_quotient (uint64_t mantissa, int scale, int neg, double *out)
{
    static const long double pow10[] = {
        1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L,
        1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L,
        1e19L, 1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L,
    };
    pthread_once (&x87_once, x87_check);
    if (!x87_precise)
        return -1;
    long double q = (long double)mantissa / pow10[scale];
    uint64_t significand;
    uint16_t exponent;
    memcpy (&significand, &q, sizeof (significand));
    memcpy (&exponent, (const char *)&q + 8, sizeof (exponent));
    if ((significand & X87_DROPPED_MASK) == X87_MIDPOINT
        || (exponent & 0x7FFF) < X87_BIAS + X87_MIN_EXPONENT)
        return -1;
    double d = (double)q;
    *out = neg ? -d : d;
    return 0;
}

static int fast_number_value (const unsigned char *p, const unsigned char *end,
                              double *out)
{
    uint64_t mantissa = 0;
    int digits = 0, scale = 0, neg = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    p = add_digits (p, end, &mantissa, &digits);
    if (p < end && *p == '.') {
        const unsigned char *fraction = ++p;
        p = add_digits (p, end, &mantissa, &digits);
        scale = (int)(p - fraction);
    }
    if (p != end || digits > FJ_MANTISSA_DIGITS)
        return -1;   /* an exponent part, or too many digits */
    return x87_quotient (mantissa, scale, neg, out);
}
#endif

static int number_value (const unsigned char *text, size_t len, double *out)
{
#if LDBL_MANT_DIG == 64
    if (fast_number_value (text, text + len, out) == 0)
        return 0;
#endif
    return slow_number_value (text, len, out);
}

#if LDBL_MANT_DIG == 64
/* A timestamp as the services write it, <digits>.<digits> without sign,
 * leading zero or exponent and with at most FJ_MANTISSA_DIGITS digits,
 * validated and
 * converted in one pass.  Returns past it with *out set, or NULL for any
 * other form, which the general path then reads. */
static const unsigned char *fast_timestamp (const unsigned char *p,
                                            const unsigned char *end,
                                            double *out)
{
    const unsigned char *first = p, *fraction;
    uint64_t mantissa = 0;
    int digits = 0;

    if (p >= end || *p < '1' || *p > '9')
        return NULL;
    p = add_digits (p, end, &mantissa, &digits);
    if (p >= end || *p != '.')
        return NULL;
    fraction = ++p;
    p = add_digits (p, end, &mantissa, &digits);
    if (p == fraction || digits > FJ_MANTISSA_DIGITS)
        return NULL;
    if (x87_quotient (mantissa, (int)(p - fraction), 0, out) < 0
        && slow_number_value (first, (size_t)(p - first), out) < 0)
        return NULL;
    return p;
}
#else
/* A timestamp with a fraction part: past it with *out set, or NULL. */
static const unsigned char *fast_timestamp (const unsigned char *p,
                                            const unsigned char *end,
                                            double *out)
{
    const unsigned char *first = p;

    if (!(p = fast_number (p, end))
        || !memchr (first, '.', (size_t)(p - first))
        || number_value (first, (size_t)(p - first), out) < 0)
        return NULL;
    return p;
}
#endif

/* Parse an int64 from a validated integer literal; 0 if out of range. */
static int integer_value (const unsigned char *text, size_t len, int64_t *out)
{
    int neg = (len > 0 && text[0] == '-');
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;

    for (size_t i = neg; i < len; i++) {
        unsigned d = text[i] - '0';
        if (v > (limit - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* True if the raw string contents (escaped or not) equal literal. */
static int key_is (const char *buf, fj_span_t key, int escaped,
                   const char *literal, size_t literal_len)
{
    if (!escaped)
        return key.len == literal_len
               && memcmp (buf + key.off, literal, literal_len) == 0;
    return fj_raw_string_equals (buf + key.off, key.len, literal);
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

/* The fast path for an entry in the layout the services write:
 * {"timestamp":<fraction>,"name":"<plain>"} with ,"context":<value> before
 * the closing brace, no white space.  Returns 0 with *e (zeroed by the
 * caller) filled and s->p past the entry, or -1 with the scanner
 * untouched: scan_entry() then does it all (another layout, an escaped
 * name, an integer timestamp, a context the fast path leaves, an error). */
static int fast_entry (struct scanner *s, fj_entry_t *e)
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
    if (!(p = fast_timestamp (p, end, &e->timestamp))
        || (size_t)(end - p) < sizeof (name_key) - 1
        || memcmp (p, name_key, sizeof (name_key) - 1) != 0)
        return -1;   /* an integer timestamp is irregular: Python's int */
    name = p += sizeof (name_key) - 1;
    p = plain_end (p, end);
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
        if (*p == '{' || *p == '[') {
            s->p = p;
            s->depth = depth + 1;   /* inside the entry */
            int rc = skip_container (s);
            p = s->p;
            s->depth = depth;
            s->p = first;
            if (rc < 0) {
                s->max_depth = deepest;
                return -1;
            }
        }
        else if (!(p = fast_scalar (p, end)))
            return -1;
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

/* Scan one element of "events": an object with a numeric timestamp and a
 * string name, optionally a context. */
static int scan_entry (struct scanner *s, fj_entry_t *e)
{
    const char *buf = (const char *)s->start;
    const unsigned char *first;
    const unsigned char *ts_text = NULL, *ts_bad = NULL, *name_bad = NULL;
    size_t ts_len = 0;
    int ts_is_int = 0, have_name = 0, position = 0, more;

    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    first = s->p;
    memset (e, 0, sizeof (*e));
    if (fast_entry (s, e) == 0)
        return 0;
    memset (e, 0, sizeof (*e));   /* the fast path may have filled some */
    if (*s->p != '{') {
        fj_span_t ignored;
        shape (s, FJ_EENTRY_TYPE, first);
        return scan_value (s, &ignored);
    }
    int wide_outside = s->wide_int;
    int depth_outside = s->max_depth;
    int entry_depth = s->depth;
    s->wide_int = s->long_int = 0;
    s->max_depth = s->depth;
    if (descend (s) < 0)
        return -1;
    if (empty_container (s, '}')) {
        shape (s, FJ_ETIMESTAMP, first);
        return 0;
    }
    do {
        fj_span_t key, value;
        int escaped, which;
        if (scan_key (s, &key, &escaped) < 0)
            return -1;
        which = entry_key (buf, key, escaped);
        /* The regular layout is timestamp, name[, context], unescaped. */
        if (escaped || which != ++position)
            e->flags |= FJ_ENTRY_IRREGULAR;
        skip_ws (s);
        if (s->p >= s->end)
            return fail (s, FJ_ETRUNCATED, s->p);
        const unsigned char *vstart = s->p;
        /* A repeated member: the last occurrence counts. */
        if (which == KEY_TIMESTAMP) {
            if (!(*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
                if (scan_value (s, &value) < 0)
                    return -1;
                ts_bad = vstart;
                ts_text = NULL;
                continue;
            }
            if (scan_number (s, &ts_is_int) < 0)
                return -1;
            ts_text = vstart;
            ts_len = (size_t)(s->p - vstart);
            ts_bad = NULL;
        }
        else if (which == KEY_NAME) {
            int name_escaped;
            if (*s->p != '"') {
                if (scan_value (s, &value) < 0)
                    return -1;
                name_bad = vstart;
                have_name = 0;
                continue;
            }
            if (scan_string (s, &e->name, &name_escaped) < 0)
                return -1;
            name_bad = NULL;
            if (name_escaped)
                e->flags |= FJ_ENTRY_NAME_ESCAPED;
            else
                e->flags &= ~FJ_ENTRY_NAME_ESCAPED;
            have_name = 1;
        }
        else if (which == KEY_CONTEXT) {
            if (scan_value (s, &e->context) < 0)
                return -1;
            e->flags |= FJ_ENTRY_HAS_CONTEXT;
        }
        else if (scan_value (s, &value) < 0)
            return -1;
    } while ((more = next_or_close (s, '}')) == 1);
    if (more < 0)
        return -1;
    if (!ts_text) {
        shape (s, FJ_ETIMESTAMP, ts_bad ? ts_bad : first);
        return 0;
    }
    if (!have_name) {
        shape (s, FJ_ENAME, name_bad ? name_bad : first);
        return 0;
    }
    if (ts_is_int)
        e->flags |= FJ_ENTRY_IRREGULAR;   /* Python gives an int here */
    if (s->wide_int)
        e->flags |= FJ_ENTRY_WIDE_INT;
    if (s->long_int || s->max_depth - entry_depth > FJ_PY_SAFE_DEPTH)
        e->flags |= FJ_ENTRY_ISOLATE;
    s->wide_int |= wide_outside;
    if (depth_outside > s->max_depth)
        s->max_depth = depth_outside;
    if (number_value (ts_text, ts_len, &e->timestamp) < 0)
        return fail (s, FJ_ENOMEM, ts_text);
    e->entry.off = (uint32_t)(first - s->start);
    e->entry.len = (uint32_t)(s->p - first);
    return 0;
}

static int scan_events (struct scanner *s, fj_payload_t *pl)
{
    int more;

    /* A repeated "events" member replaces the first, errors and all. */
    pl->nentries = 0;
    s->shape_code = 0;
    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p != '[') {
        const unsigned char *first = s->p;
        fj_span_t ignored;
        shape (s, FJ_EEVENTS_TYPE, first);
        return scan_value (s, &ignored);
    }
    if (descend (s) < 0)
        return -1;
    if (empty_container (s, ']'))
        return 0;
    do {
        if (fj_reserve ((void **)&pl->entries, &pl->entries_cap,
                        pl->nentries + 1, sizeof (fj_entry_t), 16) < 0)
            return fail (s, FJ_ENOMEM, s->p);
        if (scan_entry (s, &pl->entries[pl->nentries]) < 0)
            return -1;
        pl->nentries++;
    } while ((more = next_or_close (s, ']')) == 1);
    return more;
}

/* The "id" member: an int64 integer literal, or something else. */
static void record_id (fj_payload_t *pl, const unsigned char *start,
                       fj_span_t value, int is_int)
{
    pl->id_kind = FJ_ID_OTHER;
    if (is_int && integer_value (start + value.off, value.len, &pl->id))
        pl->id_kind = FJ_ID_INT;
}

static int scan_payload (struct scanner *s, fj_payload_t *pl)
{
    const char *buf = (const char *)s->start;
    int more;

    skip_ws (s);
    if (s->p >= s->end)
        return fail (s, FJ_ETRUNCATED, s->p);
    if (*s->p != '{') {
        const unsigned char *first = s->p;
        fj_span_t ignored;
        shape (s, FJ_ENOT_OBJECT, first);
        return scan_value (s, &ignored);
    }
    if (descend (s) < 0)
        return -1;
    if (empty_container (s, '}'))
        return 0;
    do {
        fj_member_t m = { .flags = 0 };
        int escaped;
        if (scan_key (s, &m.key, &escaped) < 0)
            return -1;
        if (escaped)
            m.flags |= FJ_MEMBER_KEY_ESCAPED;
        skip_ws (s);
        if (s->p >= s->end)
            return fail (s, FJ_ETRUNCATED, s->p);
        const unsigned char *vstart = s->p;
        int is_events = KEY_IS (buf, m.key, escaped, "events");
        if (is_events) {
            if (scan_events (s, pl) < 0)
                return -1;
            m.value.off = (uint32_t)(vstart - s->start);
            m.value.len = (uint32_t)(s->p - vstart);
        }
        else if (KEY_IS (buf, m.key, escaped, "id")) {
            int is_int = 0;
            if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
                if (scan_number (s, &is_int) < 0)
                    return -1;
                m.value.off = (uint32_t)(vstart - s->start);
                m.value.len = (uint32_t)(s->p - vstart);
            }
            else if (scan_value (s, &m.value) < 0)
                return -1;
            record_id (pl, s->start, m.value, is_int);
        }
        else if (scan_value (s, &m.value) < 0)
            return -1;
        if (fj_reserve ((void **)&pl->members, &pl->members_cap,
                        pl->nmembers + 1, sizeof (fj_member_t), 16) < 0)
            return fail (s, FJ_ENOMEM, s->p);
        /* the last occurrence of a member counts */
        if (is_events)
            pl->events_member = (int)pl->nmembers;
        else if (KEY_IS (buf, m.key, escaped, "jobspec"))
            pl->jobspec_member = (int)pl->nmembers;
        else if (KEY_IS (buf, m.key, escaped, "R"))
            pl->R_member = (int)pl->nmembers;
        pl->members[pl->nmembers++] = m;
    } while ((more = next_or_close (s, '}')) == 1);
    return more;
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
    struct scanner s = {
        .start = (const unsigned char *)buf,
        .p = (const unsigned char *)buf,
        .end = (const unsigned char *)buf + len,
        .err = err,
    };

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
    if (scan_payload (&s, p) < 0)
        return -err->code;
    skip_ws (&s);
    if (s.p != s.end)
        return fj_fail (err, FJ_ETRAILING, (size_t)(s.p - s.start));
    if (s.shape_code)   /* valid JSON, not a journal response */
        return fj_fail (err, s.shape_code, s.shape_offset);
    if (p->events_member < 0)
        return fj_fail (err, FJ_ENO_EVENTS, 0);
    return FJ_OK;
}

int fj_payload_member (const fj_payload_t *p, const char *key)
{
    for (size_t i = p->nmembers; i-- > 0;) {
        const fj_member_t *m = &p->members[i];
        if (fj_raw_string_equals (p->buf + m->key.off, m->key.len, key))
            return (int)i;
    }
    return -1;
}

/* Decode one escape at raw[*i] (a backslash) to a code unit; advances *i. */
static unsigned escape_unit (const char *raw, size_t len, size_t *i)
{
    char c = *i + 1 < len ? raw[*i + 1] : 0;
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr (from, c) : NULL;

    if (c == 'u' && *i + 5 < len) {
        unsigned v = 0;
        for (int k = 2; k < 6; k++)
            v = v * 16 + (unsigned)hexval ((unsigned char)raw[*i + k]);
        *i += 6;
        return v;
    }
    *i += 2;
    return hit ? (unsigned char)to[hit - from] : 0xFFFFFFFFu;
}

int fj_raw_string_equals (const char *raw, size_t len, const char *literal)
{
    size_t i = 0;

    for (; *literal; literal++) {
        unsigned unit;
        if (i >= len)
            return 0;
        if (raw[i] == '\\')
            unit = escape_unit (raw, len, &i);
        else
            unit = (unsigned char)raw[i++];
        if (unit != (unsigned char)*literal)
            return 0;
    }
    return i == len;
}
