/* fj_string.h - JSON string contents (RFC 8259 section 7): validation
 * helpers for the scanner and the one escape decoder of the C core.
 *
 * "Raw" contents are the bytes between a string's quotes as they appear in
 * the payload.  The scanner (fj_json.c) validates them with the helpers
 * below; every comparison of validated raw contents with a name (member
 * keys in fj_payload.c, event names and filters in fj_names.c) decodes
 * them with fj_string_next(), to UTF-8 as Python's json.loads() and then
 * str.encode("utf-8", "surrogatepass") would.
 */
#ifndef FJ_STRING_H
#define FJ_STRING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fj_port.h"

/* True for bytes a string may hold as they are: printable ASCII but the
 * quote and the backslash. */
static inline int fj_is_plain (unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Nonzero if any byte of the 8-byte word x needs attention in a string:
 * below 0x20, 0x80 and above, '"' or '\\'.  The classic SWAR tests: for
 * n <= 128, (x - n*ones) & ~x & high is nonzero iff some byte is below n. */
static inline uint64_t fj_special_bytes (uint64_t x)
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
static FJ_HOT_INLINE const unsigned char *fj_plain_end (
    const unsigned char *p, const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t x, special;
        memcpy (&x, p, 8);
        if ((special = fj_special_bytes (x))) {
#if defined(FJ_LITTLE_ENDIAN) && defined(FJ_CTZ64)
            return p + FJ_CTZ64 (special) / 8;
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < end && fj_is_plain (*p))
        p++;
    return p;
}

static inline int fj_hexval (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the valid escape at p (a backslash): 2, or 6 for \uXXXX; 0 if
 * it is not a valid escape, -1 if the text ends inside it. */
static inline int fj_escape_length (const unsigned char *p,
                                    const unsigned char *end)
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
                if (fj_hexval (p[i]) < 0)
                    return 0;
            }
            return 6;
        default:
            return 0;
    }
}

/* Length of the valid UTF-8 sequence at p (first byte >= 0x80), per RFC
 * 3629: no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF.
 * 0 if invalid, with *bad at the offending sequence; -1 if the text ends
 * inside it, with *bad at the end. */
int fj_utf8_length (const unsigned char *p, const unsigned char *end,
                    const unsigned char **bad);

/* Decode the next character of validated raw contents raw[*i..len) to
 * UTF-8 in out[], advancing *i; returns the byte count (1 to 4).  A
 * \uD8xx\uDCxx pair is one character; a lone surrogate escape is encoded
 * as its three bytes ("surrogatepass"). */
unsigned fj_string_next (const char *raw, size_t len, size_t *i,
                         unsigned char out[4]);

/* True if validated raw contents raw[0..len) decode to the UTF-8 bytes
 * text[0..n). */
int fj_string_equals (const char *raw, size_t len, const char *text,
                      size_t n);

#endif /* FJ_STRING_H */
