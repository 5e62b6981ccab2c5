/* callgrind_toggle.c - one call that starts or stops callgrind's counting,
 * so that `bench/live_offline.py --footprint` counts the timed part of each
 * response alone (the 16 MB written between responses still passes through
 * the simulated caches, and leaves them cold).  Outside valgrind the call
 * does nothing. */
#include <valgrind/callgrind.h>

void fj_bench_toggle_collect (void)
{
    CALLGRIND_TOGGLE_COLLECT;
}
