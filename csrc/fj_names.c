/* fj_names.c - interned event names (see fj_names.h). */
#include <stdlib.h>
#include <string.h>

#include "fj_error.h"
#include "fj_grow.h"
#include "fj_names.h"
#include "fj_payload.h"

static uint32_t hash_bytes (const char *p, uint32_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

void fj_names_init (fj_names_t *t)
{
    memset (t, 0, sizeof (*t));
}

void fj_names_release (fj_names_t *t)
{
    for (uint32_t i = 0; i < t->count; i++)
        free (t->names[i].raw);
    free (t->names);
    free (t->slots);
    fj_names_init (t);
}

/* FIX (fuzz_stream, tests/fuzz/): escaped names were compared with
 * fj_raw_string_equals(), which matches decoded UTF-16 code units against
 * single bytes, so "caf\u00e9", "\ud83d\ude00" or a lone "\ud800" never
 * matched the filter names core.py passes (str.encode("utf-8",
 * "surrogatepass")), and names of 256+ bytes or holding a NUL were skipped.
 * Decode to those same UTF-8 bytes instead, as Python's json.loads() reads
 * the string (a \uD8xx\uDCxx pair is one code point), and compare bytes. */
static unsigned hex4 (const char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = (unsigned char)p[k];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* True if validated JSON string contents raw[0..len) decode to name[0..n). */
static int raw_equals_utf8 (const char *raw, uint32_t len, const char *name,
                            uint32_t n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    uint32_t i = 0, k = 0;

    while (i < len) {
        unsigned char u[4];
        uint32_t m = 1;
        if (raw[i] != '\\')
            u[0] = (unsigned char)raw[i++];
        else if (raw[i + 1] != 'u') {
            u[0] = (unsigned char)to[strchr (from, raw[i + 1]) - from];
            i += 2;
        }
        else {
            unsigned cp = hex4 (raw + i + 2);
            i += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= len && raw[i] == '\\'
                && raw[i + 1] == 'u') {
                unsigned lo = hex4 (raw + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp < 0x80)
                u[0] = (unsigned char)cp;
            else if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | cp >> 6);
                u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                m = 2;
            }
            else if (cp < 0x10000) {   /* lone surrogates too */
                u[0] = (unsigned char)(0xE0 | cp >> 12);
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                m = 3;
            }
            else {
                u[0] = (unsigned char)(0xF0 | cp >> 18);
                u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (unsigned char)(0x80 | (cp & 0x3F));
                m = 4;
            }
        }
        if (n - k < m || memcmp (name + k, u, m) != 0)
            return 0;
        k += m;
    }
    return k == n;
}

int fj_names_contains (const fj_names_t *t, const char *raw, uint32_t len)
{
    if (memchr (raw, '\\', len)) {
        /* escaped: compare decoded, one by one (filters are short) */
        for (uint32_t i = 0; i < t->count; i++)
            if (raw_equals_utf8 (raw, len, t->names[i].raw, t->names[i].len))
                return 1;
        return 0;
    }
    uint32_t hash = hash_bytes (raw, len);
    for (uint32_t j = hash & (t->nslots - 1); t->nslots; j = (j + 1) & (t->nslots - 1)) {
        int32_t i = t->slots[j];
        if (i < 0)
            return 0;
        const fj_name_t *n = &t->names[i];
        if (n->hash == hash && n->len == len && memcmp (n->raw, raw, len) == 0)
            return 1;
    }
    return 0;
}

uint32_t fj_name_flags (const char *raw, uint32_t len)
{
    if (fj_raw_string_equals (raw, len, "submit"))
        return FJ_NAME_SUBMIT;
    if (fj_raw_string_equals (raw, len, "alloc"))
        return FJ_NAME_ALLOC;
    if (fj_raw_string_equals (raw, len, "clean"))
        return FJ_NAME_CLEAN;
    return 0;
}

/* Rebuild the slot array at twice the size (load factor <= 1/2). */
static int rehash (fj_names_t *t)
{
    uint32_t nslots = t->nslots ? t->nslots * 2 : 64;
    int32_t *slots = malloc (nslots * sizeof (*slots));
    if (!slots)
        return -FJ_ENOMEM;
    memset (slots, 0xff, nslots * sizeof (*slots));
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t j = t->names[i].hash & (nslots - 1);
        while (slots[j] >= 0)
            j = (j + 1) & (nslots - 1);
        slots[j] = (int32_t)i;
    }
    free (t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

static int32_t add (fj_names_t *t, const char *raw, uint32_t len,
                    uint32_t hash, uint32_t slot)
{
    int rc = fj_reserve ((void **)&t->names, &t->cap, t->count + 1,
                         sizeof (fj_name_t), 32);
    if (rc < 0)
        return rc;
    fj_name_t *n = &t->names[t->count];
    if (!(n->raw = malloc (len ? len : 1)))
        return -FJ_ENOMEM;
    memcpy (n->raw, raw, len);
    n->len = len;
    n->hash = hash;
    n->flags = fj_name_flags (raw, len);
    t->slots[slot] = (int32_t)t->count;
    return (int32_t)t->count++;
}

int32_t fj_names_intern (fj_names_t *t, const char *raw, uint32_t len)
{
    uint32_t hash = hash_bytes (raw, len);
    int rc;

    if ((t->count + 1) * 2 > t->nslots && (rc = rehash (t)) < 0)
        return rc;
    for (uint32_t j = hash & (t->nslots - 1);; j = (j + 1) & (t->nslots - 1)) {
        int32_t i = t->slots[j];
        if (i < 0)
            return t->count < FJ_MAX_NAMES ? add (t, raw, len, hash, j)
                                           : -FJ_EFULL;
        const fj_name_t *n = &t->names[i];
        if (n->hash == hash && n->len == len && memcmp (n->raw, raw, len) == 0)
            return i;
    }
}
