/* A stand-in for libflux-core's future functions, for tests without Flux:
 * one streaming RPC future answering from a scripted queue of responses.
 * The test builds it as a shared library and drives it through ctypes. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct response {
    char *payload;  /* NULL: no payload (or an error) */
    int errnum;     /* an error response */
    char *errstr;   /* its message, or NULL */
};

#define MAX_RESPONSES 4096

static struct response script[MAX_RESPONSES];
static int head, arrived, queued;
static int resets, gets;
static int one_at_a_time; /* a wait or a reactor turn releases one response */
static char future_cell;
static const char *current_payload; /* handed out, freed on reset */

static char *dup_or_null (const char *s)
{
    return s ? strdup (s) : NULL;
}

void *fake_future (void)
{
    return &future_cell;
}

/* Queue a response; it arrives (becomes ready) at fake_arrive() or at a
 * wait that finds nothing ready. */
int fake_push (const char *payload, int errnum, const char *errstr)
{
    if (queued >= MAX_RESPONSES)
        return -1;
    script[queued].payload = dup_or_null (payload);
    script[queued].errnum = errnum;
    script[queued].errstr = dup_or_null (errstr);
    queued++;
    return 0;
}

void fake_arrive (int n)
{
    arrived += n;
    if (arrived > queued)
        arrived = queued;
}

int fake_ready (void) { return arrived - head; }
void fake_one_at_a_time (int on) { one_at_a_time = on; }
int fake_resets (void) { return resets; }
int fake_gets (void) { return gets; }

static void check (void *f)
{
    if (f != &future_cell)
        abort ();
}

bool flux_future_is_ready (void *f)
{
    check (f);
    return head < arrived;
}

int flux_rpc_get (void *f, const char **s)
{
    check (f);
    if (head >= arrived)
        abort (); /* callers only read a ready future */
    gets++;
    if (script[head].errnum) {
        errno = script[head].errnum;
        return -1;
    }
    current_payload = script[head].payload;
    if (s)
        *s = current_payload;
    return 0;
}

const char *flux_future_error_string (void *f)
{
    check (f);
    if (head < arrived && script[head].errnum)
        return script[head].errstr;
    return NULL;
}

void flux_future_reset (void *f)
{
    check (f);
    resets++;
    if (head < arrived) {
        free (script[head].payload);
        free (script[head].errstr);
        memset (&script[head], 0, sizeof (script[head]));
        head++;
    }
    current_payload = NULL;
}

/* Nothing ready: what is queued arrives; with nothing queued, time out,
 * or with no timeout block for good as a reactor does (a signal handler
 * that returns does not end the wait), saying so on standard output. */
int flux_future_wait_for (void *f, double timeout)
{
    check (f);
    if (head < arrived)
        return 0;
    if (arrived < queued) {
        arrived = one_at_a_time ? arrived + 1 : queued;
        return 0;
    }
    if (timeout < 0) {
        /* tell a watching test the wait has begun */
        if (write (STDOUT_FILENO, "blocked\n", 8) < 0)
            abort ();
        for (;;)
            pause ();
    }
    if (timeout > 0) {
        struct timespec ts = { (time_t)timeout,
                               (long)((timeout - (time_t)timeout) * 1e9) };
        nanosleep (&ts, NULL);
    }
    errno = ETIMEDOUT;
    return -1;
}

static void (*then_cb) (void *f, void *arg);
static void *then_arg;

int flux_future_then (void *f, double timeout, void (*cb) (void *, void *), void *arg)
{
    check (f);
    (void)timeout;
    then_cb = cb;
    then_arg = arg;
    return 0;
}

/* What a reactor does: what is queued arrives (one response, one at a
 * time), and the continuation (if any) runs, once per call while a
 * response is ready. */
void fake_fulfill (void)
{
    if (arrived < queued)
        arrived = one_at_a_time ? arrived + 1 : queued;
    if (then_cb && head < arrived)
        then_cb (&future_cell, then_arg);
}
