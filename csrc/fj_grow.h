/* fj_grow.h - the one way the C core grows an array.
 *
 * Capacity doubles (from a first size) until it holds what is needed, so
 * appending n items one by one costs O(n) copies in all.
 */
#ifndef FJ_GROW_H
#define FJ_GROW_H

#include <stddef.h>

/* Make *array (of *cap items of `size` bytes) hold at least `need` items,
 * starting at `first` items when empty.  Returns 0, or -FJ_ENOMEM (the
 * array is then unchanged). */
int fj_grow (void **array, size_t *cap, size_t need, size_t size,
             size_t first);

/* fj_grow() only when the array is too small: the check stays inline in
 * the loops that append. */
static inline int fj_reserve (void **array, size_t *cap, size_t need,
                              size_t size, size_t first)
{
    return need <= *cap ? 0 : fj_grow (array, cap, need, size, first);
}

#endif /* FJ_GROW_H */
