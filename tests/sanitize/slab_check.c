/* slab_check.c - the slab allocator keeps AddressSanitizer's eyes open.
 *
 * Records carved from one block (csrc/fj_slab.c) sit side by side, so
 * without its poisoning ASan would miss an overrun into the next record or
 * a read of a released one.  Built with -fsanitize=address by
 * tests/sanitize/run.sh and run three ways: "ok" must exit 0 without a
 * report; "overrun" and "released" must each be reported.
 */
#include <stdio.h>
#include <string.h>

#include "fj_slab.h"

int main (int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    volatile char *first;
    fj_slabs_t slabs;
    fj_slab_t *b1, *b2;
    char *a, *b;

    fj_slabs_init (&slabs);
    a = fj_slab_alloc (&slabs, 40, &b1);
    b = fj_slab_alloc (&slabs, 40, &b2);
    if (!a || !b || b1 != b2)
        return 2;   /* two small records share a block */
    memset (a, 1, 40);
    memset (b, 2, 40);
    first = a;
    if (strcmp (mode, "overrun") == 0)
        first[40] = 3;
    fj_slab_release (b1, a, 40);
    if (strcmp (mode, "released") == 0)
        printf ("%d\n", first[0]);
    fj_slab_release (b2, b, 40);
    fj_slabs_close (&slabs);
    return 0;
}
