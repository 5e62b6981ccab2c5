/* fj_flux.c - libflux's future functions reached through pointers looked
 * up at run time, and the drain built on them (see fj_flux.h). */
#define _GNU_SOURCE /* RTLD_DEFAULT-free dlopen/dlsym are POSIX; sigaction */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fj_error.h"
#include "fj_flux.h"

/* libflux's signatures (flux/core/future.h, rpc.h), with flux_future_t
 * as void: the pointers are only ever handed back to libflux. */
struct libflux {
    bool (*is_ready) (void *f);
    int (*rpc_get) (void *f, const char **s);
    void (*reset) (void *f);
    int (*wait_for) (void *f, double timeout);
    const char *(*error_string) (void *f);
    int (*then) (void *f, double timeout, void (*cb) (void *f, void *arg),
                 void *arg);
};

static struct libflux flux;
static int bound;

static void *lookup (void *lib, const char *name, char *errbuf, size_t errlen)
{
    void *fn;

    dlerror ();
    fn = dlsym (lib, name);
    if (!fn && errlen > 0) {
        const char *why = dlerror ();
        snprintf (errbuf, errlen, "%s: %s", name, why ? why : "not found");
    }
    return fn;
}

int fj_flux_bind (const char *path, char *errbuf, size_t errlen)
{
    struct libflux f;
    void *lib;

    if (errlen > 0)
        errbuf[0] = '\0';
    /* Never closed: the pointers must outlive every stream. */
    if (!(lib = dlopen (path, RTLD_NOW | RTLD_LOCAL))) {
        if (errlen > 0) {
            const char *why = dlerror ();
            snprintf (errbuf, errlen, "%s", why ? why : "dlopen failed");
        }
        return -FJ_ELIBFLUX;
    }
    if (!(*(void **)&f.is_ready = lookup (lib, "flux_future_is_ready", errbuf, errlen))
        || !(*(void **)&f.rpc_get = lookup (lib, "flux_rpc_get", errbuf, errlen))
        || !(*(void **)&f.reset = lookup (lib, "flux_future_reset", errbuf, errlen))
        || !(*(void **)&f.wait_for = lookup (lib, "flux_future_wait_for", errbuf, errlen))
        || !(*(void **)&f.error_string = lookup (lib, "flux_future_error_string",
                                                 errbuf, errlen))
        || !(*(void **)&f.then = lookup (lib, "flux_future_then", errbuf, errlen)))
        return -FJ_ELIBFLUX;
    flux = f;
    bound = 1;
    return 0;
}

int fj_flux_bound (void)
{
    return bound;
}

int fj_flux_drain (fj_stream_t *s, void *future, size_t limit,
                   fj_drain_t *d)
{
    d->taken = 0;
    d->errnum = 0;
    d->errstr = NULL;
    if (!bound)
        return -FJ_EUNBOUND;
    while (d->taken < limit) {
        const char *payload = NULL;
        int rc;

        if (!flux.is_ready (future))
            return FJ_DRAIN_IDLE;
        errno = 0;
        if (flux.rpc_get (future, &payload) < 0) {
            d->errnum = errno ? errno : EPROTO;
            d->errstr = flux.error_string (future);
            return FJ_DRAIN_ERROR;
        }
        d->taken++;
        if (!payload) {
            flux.reset (future);
            return FJ_DRAIN_NO_PAYLOAD;
        }
        /* the payload lives in the future until it is reset */
        rc = fj_stream_feed_cstr (s, payload, &d->err);
        flux.reset (future);
        if (rc < 0)
            return FJ_DRAIN_REFUSED;
        if (rc == FJ_FED_SENTINEL)
            return FJ_DRAIN_SENTINEL;
    }
    return FJ_DRAIN_LIMIT;
}

int fj_flux_wait (void *future, double timeout, int sigint_default,
                  int *errnum)
{
    struct sigaction dfl, saved;
    int rc;

    *errnum = 0;
    if (!bound)
        return -FJ_EUNBOUND;
    if (sigint_default) {
        memset (&dfl, 0, sizeof (dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset (&dfl.sa_mask);
        sigaction (SIGINT, &dfl, &saved);
    }
    errno = 0;
    rc = flux.wait_for (future, timeout);
    if (rc < 0)
        *errnum = errno ? errno : EPROTO;
    if (sigint_default)
        sigaction (SIGINT, &saved, NULL);
    return rc < 0 ? -FJ_ELIBFLUX : 0;
}

int fj_flux_next (fj_stream_t *s, void *future, double timeout,
                  int sigint_default, fj_batch_t *b, size_t max, size_t limit,
                  fj_drain_t *d, int *errnum)
{
    int waited = 0;
    int rc;

    *errnum = 0;
    d->taken = 0;
    if (!bound)
        return -FJ_EUNBOUND;
    for (;;) {
        /* what the stream holds first, then what has arrived (a response
         * may be there already), and only then wait, once: the caller
         * counts the time left */
        if ((rc = fj_stream_pop (s, b, max)) < 0)
            return rc;
        if (rc > 0 || b->marker)
            return FJ_NEXT_POPPED;
        if (limit == 0)
            return FJ_DRAIN_LIMIT;
        rc = fj_flux_drain (s, future, limit, d);
        limit -= d->taken;
        if (rc != FJ_DRAIN_IDLE)
            return rc;
        if (d->taken > 0)
            continue;
        if (waited)
            return FJ_DRAIN_IDLE;
        if ((rc = fj_flux_wait (future, timeout, sigint_default, errnum)) < 0)
            return rc;
        waited = 1;
    }
}

void fj_flux_reset (void *future)
{
    if (bound)
        flux.reset (future);
}

/* The continuation: drain in C, enter Python only when it has something
 * to do (an ordered history still gathering has nothing to deliver). */
static void then_cb (void *f, void *arg)
{
    fj_flux_then_t *t = arg;
    int rc = fj_flux_drain (t->s, f, (size_t)-1, &t->d);

    if (rc == FJ_DRAIN_IDLE && fj_stream_in_history (t->s))
        return;
    t->deliver (t->arg, rc);
}

int fj_flux_then (void *future, fj_flux_then_t *t, int *errnum)
{
    *errnum = 0;
    if (!bound)
        return -FJ_EUNBOUND;
    errno = 0;
    if (flux.then (future, -1.0, then_cb, t) < 0) {
        *errnum = errno ? errno : EPROTO;
        return -FJ_ELIBFLUX;
    }
    return 0;
}
