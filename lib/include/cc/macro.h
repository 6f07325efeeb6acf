#pragma once
/* Small language helpers shared by every component. */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define cc_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _noreturn_           __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define cc_likely(x)   __builtin_expect(!!(x), 1)
#define cc_unlikely(x) __builtin_expect(!!(x), 0)

#define CC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* True when s is NULL or "". */
static inline int cc_isempty(const char *s)
{
        return !s || !*s;
}

/* NULL-safe string equality. */
static inline int cc_streq(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        for (; *a && *a == *b; a++, b++)
                ;
        return *a == *b;
}

/* Value of one hexadecimal digit, or -1. */
static inline int cc_hexval(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Grows the array *arr_p (a pointer to a T *, holding *n elements of size sz) by one zeroed
 * element and returns it; NULL (nothing changed) when out of memory. For tables built one
 * answer at a time, as netlink dumps are.
 */
static inline void *cc_array_grow(void *arr_p, size_t *n, size_t sz)
{
        void **arr = arr_p;
        void *p = realloc(*arr, (*n + 1) * sz);
        if (!p)
                return NULL;
        *arr = p;
        void *el = (char *)p + *n * sz;
        memset(el, 0, sz);
        (*n)++;
        return el;
}
