/* fj_names.h - interned event names of one stream.
 *
 * A journal carries a few dozen distinct event names over millions of
 * events.  Each distinct raw name (the JSON string contents) gets a small
 * index; Python decodes each name once and delivers the same str object for
 * every event of that name.  The table is bounded: past FJ_MAX_NAMES
 * distinct names, interning fails with -FJ_EFULL (fj_error.h) and the
 * caller takes the slow path.
 */
#ifndef FJ_NAMES_H
#define FJ_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "fj_limits.h"

/* fj_name_t.flags: what the name means to delivery */
#define FJ_NAME_SUBMIT 0x1u
#define FJ_NAME_ALLOC  0x2u
#define FJ_NAME_DROP   0x4u   /* set by the stream: filtered out by name */
#define FJ_NAME_CHECKED 0x8u  /* the stream has decided FJ_NAME_DROP */
#define FJ_NAME_CLEAN  0x10u  /* a job's final event (RFC 21) */

typedef struct {
    char *raw;
    uint32_t len;
    uint32_t hash;
    uint32_t flags;
} fj_name_t;

typedef struct {
    fj_name_t *names;     /* in order of first appearance */
    uint32_t count;
    size_t cap;
    int32_t *slots;       /* open addressing: index into names, or -1 */
    uint32_t nslots;      /* power of two */
} fj_names_t;

void fj_names_init (fj_names_t *t);
void fj_names_release (fj_names_t *t);

/* Index of raw[0..len), added if new; -FJ_EFULL when the table already
 * holds FJ_MAX_NAMES names, -FJ_ENOMEM when out of memory. */
int32_t fj_names_intern (fj_names_t *t, const char *raw, uint32_t len);

/* True if the table holds a name equal to raw[0..len) (JSON string
 * contents, escapes decoded for the comparison). */
int fj_names_contains (const fj_names_t *t, const char *raw, uint32_t len);

/* What a raw name means (FJ_NAME_* bits), whether interned or not. */
uint32_t fj_name_flags (const char *raw, uint32_t len);

#endif /* FJ_NAMES_H */
