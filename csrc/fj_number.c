/* fj_number.c - number conversion (see fj_number.h).
 *
 * Two process-wide values are set once, with pthread_once, and only read
 * afterwards: the "C" numeric locale for strtod_l(), and whether long
 * double arithmetic keeps its 64 bits here (the x87 path).
 */
#define _GNU_SOURCE
#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fj_error.h"
#include "fj_json.h"
#include "fj_limits.h"
#include "fj_number.h"
#include "fj_port.h"

/* Python's float() of a validated JSON number: glibc's strtod rounds
 * correctly, and a "C" numeric locale makes it ignore the process locale. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init (void)
{
    c_locale = newlocale (LC_NUMERIC_MASK, "C", (locale_t)0);
}

static int strtod_value (const unsigned char *text, size_t len, double *out)
{
    char local[64];
    char *copy = local;

    pthread_once (&c_locale_once, c_locale_init);
    if (len >= sizeof (local) && !(copy = malloc (len + 1)))
        return -FJ_ENOMEM;
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

/* [-]<digits>[.<digits>] of at most FJ_MANTISSA_DIGITS digits, converted
 * on the x87; -1 for anything else. */
static int x87_number_value (const unsigned char *p, const unsigned char *end,
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

int fj_number_value (const unsigned char *text, size_t len, double *out)
{
    if (x87_number_value (text, text + len, out) == 0)
        return 0;
    return strtod_value (text, len, out);
}

const unsigned char *fj_number_timestamp (const unsigned char *p,
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
        && strtod_value (first, (size_t)(p - first), out) < 0)
        return NULL;
    return p;
}
#else
int fj_number_value (const unsigned char *text, size_t len, double *out)
{
    return strtod_value (text, len, out);
}

const unsigned char *fj_number_timestamp (const unsigned char *p,
                                          const unsigned char *end,
                                          double *out)
{
    const unsigned char *first = p;

    if (!(p = fj_json_fast_number (p, end))
        || !memchr (first, '.', (size_t)(p - first))
        || fj_number_value (first, (size_t)(p - first), out) < 0)
        return NULL;
    return p;
}
#endif

int fj_number_int64 (const unsigned char *text, size_t len, int64_t *out)
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
