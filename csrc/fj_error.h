/* fj_error.h - the C core's error codes and its one error convention.
 *
 * Every function that can fail returns an int: zero or more on success
 * (FJ_OK, or a count, an index, a result code), a negated fj_errnum on
 * failure (-FJ_ENOMEM, -FJ_EFULL, ...).  The parsers also fill an
 * fj_error_t with the (positive) code and the byte offset where it was
 * detected.  Constructors returning a pointer return NULL when out of
 * memory, their only failure.
 */
#ifndef FJ_ERROR_H
#define FJ_ERROR_H

#include <stddef.h>

enum fj_errnum {
    FJ_OK = 0,
    /* resources */
    FJ_ENOMEM = 1,
    FJ_ETOOBIG = 2,
    FJ_EFULL = 3,       /* a name table already holds FJ_MAX_NAMES names */
    /* libflux (fj_flux.c) */
    FJ_EUNBOUND = 4,    /* libflux's functions are not bound */
    FJ_ELIBFLUX = 5,    /* libflux could not be loaded, or a call to it
                           failed: the caller's errnum (or errbuf) says why */
    /* JSON syntax (RFC 8259) */
    FJ_ETRUNCATED = 10,
    FJ_ESYNTAX = 11,
    FJ_ESTRING_CTRL = 12,
    FJ_EESCAPE = 13,
    FJ_EUTF8 = 14,
    FJ_ENUMBER = 15,
    FJ_EDEPTH = 16,
    FJ_ETRAILING = 17,
    /* journal response shape */
    FJ_ENOT_OBJECT = 30,
    FJ_ENO_EVENTS = 31,
    FJ_EEVENTS_TYPE = 32,
    FJ_EENTRY_TYPE = 33,
    FJ_ETIMESTAMP = 34,
    FJ_ENAME = 35,
    FJ_EID = 36,
};

/* First error code that concerns shape rather than syntax. */
#define FJ_FIRST_SHAPE_ERROR 30

typedef struct {
    int code;        /* enum fj_errnum */
    size_t offset;   /* byte offset in the payload where it was detected */
} fj_error_t;

/* Set *err to code at offset; returns -code, for `return fj_fail (...)`. */
int fj_fail (fj_error_t *err, int code, size_t offset);

/* A short description of an fj_errnum. */
const char *fj_strerror (int code);

#endif /* FJ_ERROR_H */
