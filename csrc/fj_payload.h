/* fj_payload.h - index one raw journal response payload without copying it.
 *
 * A journal response is a JSON object such as
 *
 *   {"id":123,"events":[{"timestamp":1.5,"name":"submit","context":{..}}],
 *    "jobspec":{..},"R":{..}}
 *
 * fj_payload_parse() validates the whole text against RFC 8259 (strictly:
 * UTF-8 checked, no NaN/Infinity, no leading zeros, no trailing bytes, no
 * byte order mark, nesting at most FJ_MAX_DEPTH; see fj_json.h) and
 * records byte spans of the top-level members and of each element of
 * "events".  Nothing is copied: spans refer to the caller's buffer, which
 * must outlive the index.
 *
 * The shape is checked too: the payload is an object with an "events"
 * array whose elements are objects with a numeric "timestamp" and a string
 * "name".  Where a member occurs twice the last occurrence wins, as with
 * Python's json module.
 */
#ifndef FJ_PAYLOAD_H
#define FJ_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "fj_error.h"
#include "fj_json.h"
#include "fj_limits.h"

/* fj_entry_t.flags */
#define FJ_ENTRY_HAS_CONTEXT 0x1u  /* "context" member present */
#define FJ_ENTRY_IRREGULAR   0x2u  /* members other than timestamp, name,
                                    * context in that order (extra, missing
                                    * context aside, repeated, escaped keys),
                                    * or an integer-literal timestamp: only a
                                    * full JSON decode of the entry gives
                                    * Python's exact dict */
#define FJ_ENTRY_NAME_ESCAPED 0x4u /* the name string holds a backslash */
#define FJ_ENTRY_WIDE_INT    0x8u  /* an integer literal of
                                    * FJ_WIDE_INT_DIGITS or more digits */
#define FJ_ENTRY_ISOLATE     0x10u /* beyond FJ_PY_SAFE_DEPTH / _DIGITS */

typedef struct {
    double timestamp;   /* as Python's float() of the literal */
    fj_span_t entry;    /* the whole {...} element */
    fj_span_t name;     /* string contents, between the quotes, raw */
    fj_span_t context;  /* the context value; len 0 when absent */
    uint32_t flags;
} fj_entry_t;

/* fj_member_t.flags */
#define FJ_MEMBER_KEY_ESCAPED 0x1u

typedef struct {
    fj_span_t key;      /* string contents, between the quotes, raw */
    fj_span_t value;
    uint32_t flags;
} fj_member_t;

/* fj_payload_t.id_kind */
#define FJ_ID_ABSENT 0
#define FJ_ID_INT    1   /* an integer literal that fits int64 */
#define FJ_ID_OTHER  2   /* anything else */

typedef struct {
    const char *buf;
    size_t len;
    fj_member_t *members;
    size_t nmembers;
    size_t members_cap;
    fj_entry_t *entries;
    size_t nentries;
    size_t entries_cap;
    int id_kind;
    int64_t id;
    int events_member;   /* index in members[], or -1 */
    int jobspec_member;
    int R_member;
} fj_payload_t;

void fj_payload_init (fj_payload_t *p);
void fj_payload_release (fj_payload_t *p);

/* Parse buf[0..len) into p (reusing its arrays).  Returns FJ_OK, or a
 * negated fj_errnum with *err set; on error p holds nothing usable. */
int fj_payload_parse (fj_payload_t *p, const char *buf, size_t len,
                      fj_error_t *err);

#endif /* FJ_PAYLOAD_H */
