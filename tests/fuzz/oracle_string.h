/* oracle_string.h - the fuzz targets' own reading of JSON strings.
 *
 * Shared by fuzz_payload.c and fuzz_stream.c, and written from RFC 8259
 * section 7 rather than from csrc/ (an oracle must not reuse the code it
 * checks).  The RFC describes string contents as characters, each either
 * itself or escaped: \" \\ \/ \b \f \n \r \t, or \uXXXX, one UTF-16 code
 * unit, a character beyond the Basic Multilingual Plane being written as
 * two (a surrogate pair).  So decoding is done the RFC's way, in three
 * steps over whole arrays:
 *
 *   1. contents -> UTF-16 code units (an unescaped character beyond the
 *      BMP becomes its two units);
 *   2. code units -> code points: a high surrogate followed by a low one
 *      is one character; any other surrogate stands for itself, as Python's
 *      json keeps it (RFC 8259 section 8.2 leaves that open);
 *   3. code points -> UTF-8, surrogates as their three-byte form (what
 *      Python's str.encode("utf-8", "surrogatepass") gives).
 *
 * Contents must be valid (the oracle's validator or the scanner said so).
 */
#ifndef ORACLE_STRING_H
#define ORACLE_STRING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The code unit of a two-character escape, by its second character. */
static unsigned oracle_short_escape (unsigned char c)
{
    switch (c) {
        case '"': return 0x22;
        case '\\': return 0x5C;
        case '/': return 0x2F;
        case 'b': return 0x08;
        case 'f': return 0x0C;
        case 'n': return 0x0A;
        case 'r': return 0x0D;
        case 't': return 0x09;
    }
    abort ();   /* not valid contents */
}

/* Step 1: UTF-16 code units of raw[0..len) into units[] (room for len). */
static size_t oracle_utf16 (const unsigned char *raw, size_t len,
                            uint16_t *units)
{
    size_t n = 0;

    for (size_t i = 0; i < len;) {
        if (raw[i] == '\\' && raw[i + 1] == 'u') {
            char hex[5] = { (char)raw[i + 2], (char)raw[i + 3],
                            (char)raw[i + 4], (char)raw[i + 5], 0 };
            units[n++] = (uint16_t)strtoul (hex, NULL, 16);
            i += 6;
        }
        else if (raw[i] == '\\') {
            units[n++] = (uint16_t)oracle_short_escape (raw[i + 1]);
            i += 2;
        }
        else {
            /* UTF-8: the lead byte's high bits give the length */
            unsigned char c = raw[i];
            int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
            uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
            for (int k = 1; k <= extra; k++)
                cp = (cp << 6) | (raw[i + k] & 0x3F);
            i += 1 + extra;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[n++] = (uint16_t)(0xD800 + (cp >> 10));
                units[n++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
            }
            else
                units[n++] = (uint16_t)cp;
        }
    }
    return n;
}

/* Step 3 for one code point: its UTF-8 bytes at out, returns how many. */
static size_t oracle_put_utf8 (uint32_t cp, unsigned char *out)
{
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const unsigned char lead[] = { 0, 0x00, 0xC0, 0xE0, 0xF0 };

    for (size_t k = n - 1; k > 0; k--) {
        out[k] = (unsigned char)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (unsigned char)(lead[n] | cp);
    return n;
}

/* What json.loads() makes of the valid contents raw[0..len), encoded as
 * UTF-8 with surrogatepass: a malloc'd buffer of *n bytes (never more than
 * len: no escape or character grows when decoded). */
static unsigned char *oracle_decode (const void *contents, size_t len,
                                     size_t *n)
{
    uint16_t *units = malloc ((len + 1) * sizeof (*units));
    unsigned char *out = malloc (len + 1);
    size_t count, k = 0;

    if (!units || !out)
        abort ();
    count = oracle_utf16 (contents, len, units);
    for (size_t i = 0; i < count; i++) {
        uint32_t cp = units[i];
        int high = cp >= 0xD800 && cp <= 0xDBFF;
        if (high && i + 1 < count && units[i + 1] >= 0xDC00
            && units[i + 1] <= 0xDFFF)
            cp = 0x10000 + ((cp - 0xD800) << 10) + (units[++i] - 0xDC00);
        k += oracle_put_utf8 (cp, out + k);
    }
    free (units);
    *n = k;
    return out;
}

/* True if the valid contents decode to the NUL-terminated UTF-8 text. */
static int decoded_equals (const void *contents, size_t len, const char *text)
{
    size_t n;
    unsigned char *d = oracle_decode (contents, len, &n);
    int equal = n == strlen (text) && memcmp (d, text, n) == 0;
    free (d);
    return equal;
}

#endif /* ORACLE_STRING_H */
