#pragma once
/*
 * Scope-bound cleanup (GCC/Clang `cleanup` attribute) and explicit ownership transfer.
 *
 * Declare a cleanup variable where it is first assigned; hand ownership on with TAKE_PTR()
 * or TAKE_FD(), which return the value and reset the variable so the cleanup does nothing.
 * Never mix cleanup variables with goto in one function.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                typeof(p) _p_ = (p);                                                               \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -1;                                                                         \
                _fd_;                                                                              \
        })

/* Defines `static inline void name##p(type **p)` calling func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p)                                                        \
        {                                                                                          \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

static inline void cc_freep(void *p)
{
        free(*(void **)p);
}

/* Closes fd if >= 0, keeping errno intact; returns -1 for `fd = cc_close(fd)`. */
static inline int cc_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void cc_closep(int *fd)
{
        cc_close(*fd);
}

static inline void cc_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

/* Frees a NULL-terminated array of strings and the array. */
static inline void cc_strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static inline void cc_strv_freep(char ***v)
{
        cc_strv_free(*v);
}

#define _cleanup_free_ _cleanup_(cc_freep)
#define _cleanup_close_ _cleanup_(cc_closep)
#define _cleanup_fclose_ _cleanup_(cc_fclosep)
/* closedirp(DIR **) */
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_ _cleanup_(cc_strv_freep)
