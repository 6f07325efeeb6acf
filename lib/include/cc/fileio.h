#pragma once
/* File helpers shared by every component: bounded whole-file reads, mkdir -p, rm -rf. */

#include <stddef.h>
#include <sys/types.h>

struct cc_error;

/*
 * Reads a whole regular file of at most max_size bytes into *ret (malloc'ed, NUL-terminated,
 * *ret_len bytes without the NUL). Errors name the path: -ENOENT when it does not exist,
 * -EINVAL when it is not a regular file, -EFBIG when it is (or grows) larger than max_size.
 */
int cc_read_file(const char *path, size_t max_size, char **ret, size_t *ret_len,
                 struct cc_error **err);

/* Creates path and its missing parents with mode (existing directories are fine). */
int cc_mkdir_p(const char *path, mode_t mode);

/*
 * Removes parent/name and everything below it. Every open is O_NOFOLLOW and relative to its
 * parent's fd, so a symlink planted in the tree is removed, never followed. A missing name is
 * success.
 */
int cc_rm_rf_at(int parent, const char *name);
