/* fj_flux.h - take a Flux RPC's responses straight from libflux into a
 * stream, without Python in between.
 *
 * libflux-core is never linked: its functions are looked up at run time
 * (fj_flux_bind) in the library flux-core's Python bindings already loaded,
 * so the C core builds, installs and runs where there is no Flux.
 *
 * fj_flux_drain() takes every response of a streaming RPC future that is
 * ready now, as flux-core's own readers do one at a time:
 * flux_rpc_get() -> fj_stream_feed_cstr() -> flux_future_reset().
 * It stops where Python has something to do: at the sentinel, at a payload
 * the stream refuses, at an error response (left unreset, so its message
 * stays readable), when no response is ready, or after `limit` responses.
 * fj_flux_then() does the same from the reactor, as a C continuation.
 */
#ifndef FJ_FLUX_H
#define FJ_FLUX_H

#include <stddef.h>

#include "fj_payload.h"
#include "fj_stream.h"

/* fj_flux_drain() results */
#define FJ_DRAIN_IDLE       0 /* no response is ready */
#define FJ_DRAIN_LIMIT      1 /* `limit` responses taken; more may be ready */
#define FJ_DRAIN_SENTINEL   2 /* the last response taken was the sentinel */
#define FJ_DRAIN_REFUSED    3 /* the last one was refused: see err */
#define FJ_DRAIN_NO_PAYLOAD 4 /* the last one had no payload */
#define FJ_DRAIN_ERROR      5 /* the ready response is an error: errnum,
                                 errstr; the future is not reset */
#define FJ_NEXT_POPPED      6 /* fj_flux_next(): the batch holds events,
                                 or a marker */

typedef struct {
    size_t taken;       /* responses consumed (fed, refused or empty) */
    int errnum;         /* FJ_DRAIN_ERROR: the response's errno */
    const char *errstr; /* FJ_DRAIN_ERROR: flux_future_error_string(), or
                           NULL; valid until the future is reset */
    fj_error_t err;     /* FJ_DRAIN_REFUSED: why */
} fj_drain_t;

/* Look libflux's functions up in the shared object at `path` (already
 * loaded, or loaded now) and the libraries it depends on.  0, or
 * -FJ_ELIBFLUX with a message in errbuf.  Call once, before any other fj_flux function;
 * later calls rebind. */
int fj_flux_bind (const char *path, char *errbuf, size_t errlen);

/* True once fj_flux_bind() succeeded. */
int fj_flux_bound (void);

/* Take up to `limit` ready responses of `future` (a flux_future_t * of a
 * streaming RPC) into s.  Returns FJ_DRAIN_*, d filled in;
 * -FJ_EUNBOUND if not bound. */
int fj_flux_drain (fj_stream_t *s, void *future, size_t limit,
                   fj_drain_t *d);

/* flux_future_wait_for(future, timeout).  With `sigint_default` set,
 * SIGINT takes its default action while waiting, so Ctrl-C ends a blocked
 * process as flux-core's Python bindings arrange for their own waits
 * (only the main thread, outside a reactor, may ask for this).  0,
 * -FJ_ELIBFLUX with *errnum set (ETIMEDOUT when the time ran out), or
 * -FJ_EUNBOUND. */
int fj_flux_wait (void *future, double timeout, int sigint_default,
                  int *errnum);

/* poll()'s step in one call: pop what s can deliver into b (at most
 * `max` events); if nothing, drain the responses that have arrived at
 * `future` and pop again; if none has, wait as fj_flux_wait() does (once
 * per call: the caller counts the time left), drain and pop again.  At
 * most `limit` responses are taken per call, so that Python (a signal,
 * a max_backlog) is never kept waiting long.  d is filled in by the last
 * drain.  Returns FJ_NEXT_POPPED (b holds b->count events, or a marker);
 * FJ_DRAIN_IDLE after a wait that brought nothing deliverable;
 * FJ_DRAIN_LIMIT after `limit` responses brought nothing deliverable;
 * where the caller has something to do, the drain's result as
 * fj_flux_drain() leaves it (FJ_DRAIN_SENTINEL, _REFUSED, _NO_PAYLOAD,
 * _ERROR); or fj_stream_pop()'s and fj_flux_wait()'s failures. */
int fj_flux_next (fj_stream_t *s, void *future, double timeout,
                  int sigint_default, fj_batch_t *b, size_t max, size_t limit,
                  fj_drain_t *d, int *errnum);

/* flux_future_reset(future). */
void fj_flux_reset (void *future);

/* A C continuation: on each fulfillment, drain every ready response into
 * s, then call deliver(arg, drain result) unless there is nothing for the
 * caller (no stop, and an ordered history still gathering). */
typedef void (*fj_flux_deliver_f) (void *arg, int rc);
typedef struct {
    fj_stream_t *s;
    fj_flux_deliver_f deliver;
    void *arg;
    fj_drain_t d;
} fj_flux_then_t;

/* Set the continuation on `future`.  0, -FJ_ELIBFLUX with *errnum set,
 * or -FJ_EUNBOUND. */
int fj_flux_then (void *future, fj_flux_then_t *t, int *errnum);

#endif /* FJ_FLUX_H */
