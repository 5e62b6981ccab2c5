/* fj_grow.c - array growth (see fj_grow.h). */
#include <stdint.h>
#include <stdlib.h>

#include "fj_error.h"
#include "fj_grow.h"

int fj_grow (void **array, size_t *cap, size_t need, size_t size,
             size_t first)
{
    size_t n = *cap ? *cap : (first ? first : 1);
    void *a;

    if (need <= *cap)
        return 0;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -FJ_ENOMEM;
        n *= 2;
    }
    if (n > SIZE_MAX / size || !(a = realloc (*array, n * size)))
        return -FJ_ENOMEM;
    *array = a;
    *cap = n;
    return 0;
}
