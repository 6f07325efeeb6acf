#pragma once
/*
 * Logging in containerd's logfmt shape:
 *   time="2026-11-28T16:52:58.123456789Z" level=info msg="started" id=abc
 * to stderr by default, or to any fd (a shim writes to its log FIFO). Fixed fields (e.g.
 * `id=... pid=...`) set once with cc_log_set_fields() are appended to every line. Libraries log
 * at debug only; handlers and main() log once per failure.
 */

#include "cc/macro.h"

enum cc_log_level {
        CC_LOG_TRACE,
        CC_LOG_DEBUG,
        CC_LOG_INFO,
        CC_LOG_WARN,
        CC_LOG_ERROR,
        CC_LOG_FATAL,
        _CC_LOG_MAX,
};

void cc_log_set_fd(int fd);
/* Where lines go (stderr unless set): a child that should log alongside gets it as its fd 2. */
int cc_log_get_fd(void);
void cc_log_set_level(enum cc_log_level level);
enum cc_log_level cc_log_get_level(void);
/* Parses "trace|debug|info|warn|warning|error|fatal"; -EINVAL otherwise. */
int cc_log_level_from_string(const char *s, enum cc_log_level *ret);
/* Fixed logfmt fields appended to every line, e.g. "runtime=kata-cc id=abc"; NULL clears. */
void cc_log_set_fields(const char *fields);

/*
 * Writes one line. `fields` are extra logfmt pairs for this line (may be NULL). Returns
 * -errno_value when errno_value > 0 (so `return cc_log_errno(...)` works), else 0.
 */
int cc_log_full(enum cc_log_level level, int errno_value, const char *fields, const char *fmt,
                ...) _printf_(4, 5);

#define cc_log(level, ...) cc_log_full(level, 0, NULL, __VA_ARGS__)
#define cc_log_trace(...) cc_log_full(CC_LOG_TRACE, 0, NULL, __VA_ARGS__)
#define cc_log_debug(...) cc_log_full(CC_LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define cc_log_info(...) cc_log_full(CC_LOG_INFO, 0, NULL, __VA_ARGS__)
#define cc_log_warn(...) cc_log_full(CC_LOG_WARN, 0, NULL, __VA_ARGS__)
#define cc_log_error(...) cc_log_full(CC_LOG_ERROR, 0, NULL, __VA_ARGS__)
/* Logs with error="strerror(e)" and returns -e. */
#define cc_log_errno(level, e, ...) cc_log_full(level, e, NULL, __VA_ARGS__)

/* Appends `s` as a logfmt value (quoted and escaped when needed) to buf; returns bytes needed. */
size_t cc_logfmt_quote(char *buf, size_t size, const char *s);
