/* fj_port.h - compiler and platform portability macros.
 *
 * Every compiler builtin the C core uses is reached through a macro here,
 * with a plain C fallback, so the core builds with any C99 compiler.
 */
#ifndef FJ_PORT_H
#define FJ_PORT_H

/* Force inlining of the few helpers of the innermost loops, where a call
 * per string costs more than the work. */
#if defined(__GNUC__)
#define FJ_HOT_INLINE inline __attribute__ ((always_inline))
#else
#define FJ_HOT_INLINE inline
#endif

/* Start loading the cache line at addr (a hint: no effect elsewhere). */
#if defined(__GNUC__)
#define FJ_PREFETCH(addr) __builtin_prefetch (addr)
#else
#define FJ_PREFETCH(addr) ((void)(addr))
#endif

/* FJ_LITTLE_ENDIAN: the lowest-addressed byte of a word is its least
 * significant one (word-at-a-time scanning relies on it). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FJ_LITTLE_ENDIAN 1
#endif

/* FJ_CTZ64(x): number of trailing zero bits of a nonzero uint64_t;
 * defined only where the compiler has it. */
#if defined(__GNUC__)
#define FJ_CTZ64(x) __builtin_ctzll (x)
#endif

/* A macro's value as a string literal: FJ_STR(FJ_MAX_DEPTH) is "2048". */
#define FJ_STR_(x) #x
#define FJ_STR(x) FJ_STR_ (x)

#endif /* FJ_PORT_H */
