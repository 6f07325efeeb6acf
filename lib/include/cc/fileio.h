#pragma once
/* File helpers shared by every component: bounded whole-file reads, mkdir -p, rm -rf, and
 * full reads and writes on blocking fds. */

#include <stddef.h>
#include <sys/types.h>

struct cc_error;

/*
 * Reads a whole regular file of at most max_size bytes into *ret (malloc'ed, NUL-terminated,
 * *ret_len bytes without the NUL). Errors name the path: -ENOENT when it does not exist,
 * -EINVAL when it is not a regular file (a FIFO or a device fails at once: it is opened
 * O_NONBLOCK and never read), -EFBIG when it is (or grows) larger than max_size.
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

/* Writes all n bytes to a blocking fd (a socket with MSG_NOSIGNAL: no SIGPIPE), retrying
 * short writes and EINTR; -errno on error. */
int cc_write_all(int fd, const void *buf, size_t n);
/* Reads exactly n bytes from a blocking fd, retrying short reads and EINTR; -EPIPE at an end
 * of file before n bytes, -errno on error. */
int cc_read_full(int fd, void *buf, size_t n);
