/* fj_number.h - JSON numbers to C numbers, as Python reads them.
 *
 * Conversions of validated number text: a double exactly as Python's
 * float() gives (correctly rounded), and an int64 when an integer literal
 * fits.  Timestamps, the one number read per event, have a fast path.
 */
#ifndef FJ_NUMBER_H
#define FJ_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/* The double of validated number text[0..len).  0, or -FJ_ENOMEM. */
int fj_number_value (const unsigned char *text, size_t len, double *out);

/* A timestamp as the services write it, <digits>.<digits> without sign,
 * leading zero or exponent, validated and converted in one pass.  Returns
 * past it with *out set, or NULL for any other form, which the general
 * path (fj_json_number() then fj_number_value()) reads. */
const unsigned char *fj_number_timestamp (const unsigned char *p,
                                          const unsigned char *end,
                                          double *out);

/* The int64 of a validated integer literal: 1, or 0 if out of range. */
int fj_number_int64 (const unsigned char *text, size_t len, int64_t *out);

#endif /* FJ_NUMBER_H */
