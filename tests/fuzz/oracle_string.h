/* oracle_string.h - the fuzz targets' own JSON string comparison.
 *
 * Shared by fuzz_payload.c and fuzz_stream.c, and written apart from the
 * scanner on purpose (the oracle must not reuse the code it checks).
 */
#ifndef ORACLE_STRING_H
#define ORACLE_STRING_H

#include <stdlib.h>
#include <string.h>

/* Decode the validated JSON string contents raw[0..len) to UTF-16 code
 * units and compare with an ASCII literal (bytes >= 0x80 never equal). */
static int decoded_equals (const void *contents, size_t len, const char *lit)
{
    const unsigned char *raw = contents;
    size_t i = 0, k = 0, m = strlen (lit);
    while (i < len) {
        unsigned unit;
        if (raw[i] == '\\') {
            unsigned char e = raw[i + 1];
            if (e == 'u') {
                char hex[5] = { (char)raw[i + 2], (char)raw[i + 3],
                                (char)raw[i + 4], (char)raw[i + 5], 0 };
                unit = (unsigned)strtoul (hex, NULL, 16);
                i += 6;
            }
            else {
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                unit = (unsigned char)to[strchr (from, e) - from];
                i += 2;
            }
        }
        else
            unit = raw[i++];
        if (k >= m || unit != (unsigned char)lit[k])
            return 0;
        k++;
    }
    return k == m;
}

#endif /* ORACLE_STRING_H */
