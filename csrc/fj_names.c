/* fj_names.c - interned event names (see fj_names.h). */
#include <stdlib.h>
#include <string.h>

#include "fj_error.h"
#include "fj_grow.h"
#include "fj_names.h"
#include "fj_string.h"

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

int fj_names_contains (const fj_names_t *t, const char *raw, uint32_t len)
{
    if (memchr (raw, '\\', len)) {
        /* escaped: compare decoded, one by one (filters are short) */
        for (uint32_t i = 0; i < t->count; i++)
            if (fj_string_equals (raw, len, t->names[i].raw, t->names[i].len))
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
    if (fj_string_equals (raw, len, "submit", 6))
        return FJ_NAME_SUBMIT;
    if (fj_string_equals (raw, len, "alloc", 5))
        return FJ_NAME_ALLOC;
    if (fj_string_equals (raw, len, "clean", 5))
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
