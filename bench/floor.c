/* bench/floor.c - the C floor of bench/broker.py: read the job-manager
 * journal with libflux alone, flux_rpc_get() + flux_future_reset() per
 * response, as cheaply as a client can.
 *
 *   floor live N     follow live events (full=false) until N jobs' "clean"
 *   floor history    full history, until the sentinel
 *
 * Prints "ready" once the request is sent, then one JSON line: responses,
 * cpu (this process's user+system seconds from the request to the end),
 * wall, and first (seconds to the first response; in history, to the
 * sentinel, as the raw loops in bench/broker.py count it).  bench/broker.py builds
 * it against the local flux-core at run time. */
#include <flux/core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

int main (int argc, char **argv)
{
    int live = argc == 3 && !strcmp (argv[1], "live");
    long jobs = live ? atol (argv[2]) : 0;
    long responses = 0, cleans = 0;
    double t0, c0, first = -1;
    flux_t *h;
    flux_future_t *f;
    const char *s;

    if (!live && !(argc == 2 && !strcmp (argv[1], "history"))) {
        fprintf (stderr, "usage: floor live N | floor history\n");
        return 2;
    }
    if (!(h = flux_open (NULL, 0))) {
        perror ("flux_open");
        return 1;
    }
    t0 = now ();
    c0 = cpu ();
    if (!(f = flux_rpc_pack (h, "job-manager.events-journal", FLUX_NODEID_ANY,
                             FLUX_RPC_STREAMING, "{s:b}", "full", !live))) {
        perror ("flux_rpc_pack");
        return 1;
    }
    printf ("ready\n");
    fflush (stdout);
    while (flux_rpc_get (f, &s) == 0) {
        responses++;
        if (live) {
            if (first < 0)
                first = now () - t0;
            if (strstr (s, "\"clean\"") && ++cleans == jobs)
                break;
        }
        else if (!strncmp (s, "{\"id\":-1,", 9)) {
            first = now () - t0;
            break;
        }
        flux_future_reset (f);
    }
    printf ("{\"responses\": %ld, \"cpu\": %.6f, \"wall\": %.6f, \"first\": %.6f}\n",
            responses, cpu () - c0, now () - t0, first);
    flux_future_destroy (f);
    flux_close (h);
    return 0;
}
