/* fj_limits.h - every limit of the C core, each named once.
 *
 * Python reads those it needs through cdef.h (lib.FJ_...).
 */
#ifndef FJ_LIMITS_H
#define FJ_LIMITS_H

/* Deepest nesting of arrays and objects accepted (the payload object
 * itself is depth 1): jansson's limit, so every payload a broker can send
 * is accepted.  Real payloads are under 10 deep.  A plain number: it is
 * spelled into an error message. */
#define FJ_MAX_DEPTH 2048

/* An entry nested deeper than this below itself, or holding an integer
 * literal longer than this many digits, may be more than Python's json
 * can decode (its recursion limit; int max_str_digits, 4300): such an
 * entry is delivered in a batch of its own (FJ_ENTRY_ISOLATE), so that a
 * decoding failure concerns it alone. */
#define FJ_PY_SAFE_DEPTH 400
#define FJ_PY_SAFE_DIGITS 4000

/* Integer literals of this many digits or more may not fit 64 bits
 * (INT64_MAX has 19 digits), where decoders differ: orjson turns them into
 * floats, Python's json keeps them exact.  Such text is flagged for json. */
#define FJ_WIDE_INT_DIGITS 19

/* Most significant digits the fast number conversion accumulates: every
 * 19-digit decimal is below 2^64, so the mantissa stays exact. */
#define FJ_MANTISSA_DIGITS 19

/* Largest payload indexed: spans are 32-bit. */
#define FJ_MAX_PAYLOAD 0xFFFFFFF0u

/* Distinct names a name table (a stream's interned event names, each of
 * its allow and deny filters) holds.  A plain number: it is spelled into
 * an error message. */
#define FJ_MAX_NAMES 4096

#endif /* FJ_LIMITS_H */
