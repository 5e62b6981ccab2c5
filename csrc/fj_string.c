/* fj_string.c - UTF-8 validation and the escape decoder (see fj_string.h).
 */
#include "fj_string.h"

int fj_utf8_length (const unsigned char *p, const unsigned char *end,
                    const unsigned char **bad)
{
    unsigned char c = *p;
    unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */
    int n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0)
            lo = 0xA0;          /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F;          /* U+D800..U+DFFF */
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0)
            lo = 0x90;          /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F;          /* above U+10FFFF */
    }
    else {
        *bad = p;
        return 0;
    }
    for (int i = 1; i <= n; i++) {
        if (p + i >= end) {
            *bad = p + i;
            return -1;
        }
        unsigned char b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
            *bad = p;
            return 0;
        }
    }
    return n + 1;
}

/* The 16-bit unit of the validated \uXXXX escape at p. */
static unsigned escape_unit (const char *p)
{
    unsigned v = 0;
    for (int k = 2; k < 6; k++)
        v = v * 16 + (unsigned)fj_hexval ((unsigned char)p[k]);
    return v;
}

static unsigned encode_utf8 (unsigned cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {   /* lone surrogates too */
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

unsigned fj_string_next (const char *raw, size_t len, size_t *i,
                         unsigned char out[4])
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *p = raw + *i;
    unsigned cp;

    if (*p != '\\') {
        out[0] = (unsigned char)*p;
        *i += 1;
        return 1;
    }
    if (p[1] != 'u') {
        out[0] = (unsigned char)to[strchr (from, p[1]) - from];
        *i += 2;
        return 1;
    }
    cp = escape_unit (p);
    *i += 6;
    if (cp >= 0xD800 && cp < 0xDC00 && *i + 6 <= len && p[6] == '\\'
        && p[7] == 'u') {
        unsigned low = escape_unit (p + 6);
        if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            *i += 6;
        }
    }
    return encode_utf8 (cp, out);
}

int fj_string_equals (const char *raw, size_t len, const char *text,
                      size_t n)
{
    size_t i = 0, k = 0;

    if (!memchr (raw, '\\', len))
        return len == n && memcmp (raw, text, n) == 0;
    while (i < len) {
        unsigned char u[4];
        unsigned m = fj_string_next (raw, len, &i, u);
        if (n - k < m || memcmp (text + k, u, m) != 0)
            return 0;
        k += m;
    }
    return k == n;
}
