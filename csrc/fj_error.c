/* fj_error.c - error descriptions (see fj_error.h). */
#include "fj_error.h"
#include "fj_limits.h"
#include "fj_port.h"

int fj_fail (fj_error_t *err, int code, size_t offset)
{
    err->code = code;
    err->offset = offset;
    return -code;
}

const char *fj_strerror (int code)
{
    switch (code) {
        case FJ_OK: return "success";
        case FJ_ENOMEM: return "out of memory";
        case FJ_ETOOBIG: return "payload larger than 4 GiB";
        case FJ_EFULL:
            return "more than " FJ_STR (FJ_MAX_NAMES) " distinct names";
        case FJ_EUNBOUND: return "libflux is not bound";
        case FJ_ELIBFLUX: return "libflux failed";
        case FJ_ETRUNCATED: return "unexpected end of payload";
        case FJ_ESYNTAX: return "unexpected character";
        case FJ_ESTRING_CTRL: return "control character in string";
        case FJ_EESCAPE: return "invalid escape in string";
        case FJ_EUTF8: return "invalid UTF-8";
        case FJ_ENUMBER: return "invalid number";
        case FJ_EDEPTH:
            return "nesting deeper than " FJ_STR (FJ_MAX_DEPTH) " levels";
        case FJ_ETRAILING: return "trailing data after the payload";
        case FJ_ENOT_OBJECT: return "payload is not a JSON object";
        case FJ_ENO_EVENTS: return "payload has no \"events\" member";
        case FJ_EEVENTS_TYPE: return "\"events\" is not an array";
        case FJ_EENTRY_TYPE: return "event entry is not an object";
        case FJ_ETIMESTAMP: return "event entry has no numeric \"timestamp\"";
        case FJ_ENAME: return "event entry has no string \"name\"";
        case FJ_EID: return "response has no integer \"id\"";
    }
    return "unknown error";
}
