/* logfmt logging, one write(2) per line so lines from threads never interleave. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc/log.h"

static int log_fd = STDERR_FILENO;
static enum cc_log_level log_level = CC_LOG_INFO;
static char *log_fields;

static const char *const level_names[_CC_LOG_MAX] = {"trace", "debug", "info",
                                                     "warning", "error", "fatal"};

void cc_log_set_fd(int fd)
{
        log_fd = fd;
}

int cc_log_get_fd(void)
{
        return log_fd;
}

void cc_log_set_level(enum cc_log_level level)
{
        if (level < _CC_LOG_MAX)
                log_level = level;
}

enum cc_log_level cc_log_get_level(void)
{
        return log_level;
}

int cc_log_level_from_string(const char *s, enum cc_log_level *ret)
{
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _CC_LOG_MAX; i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        if (strcmp(s, "warn") == 0) {
                *ret = CC_LOG_WARN;
                return 0;
        }
        return -EINVAL;
}

void cc_log_set_fields(const char *fields)
{
        free(log_fields);
        log_fields = fields ? strdup(fields) : NULL;
}

/* A logfmt value needs quotes when empty or when it has a space, '=', '"' or a control byte. */
size_t cc_logfmt_quote(char *buf, size_t size, const char *s)
{
        size_t n = 0;
        int quote = !*s;
        for (const char *p = s; *p && !quote; p++)
                if (*p <= ' ' || *p == '=' || *p == '"' || *p == 0x7f)
                        quote = 1;
#define PUT(c)                                                                                     \
        do {                                                                                       \
                if (n + 1 < size)                                                                  \
                        buf[n] = (c);                                                              \
                n++;                                                                               \
        } while (0)
        if (quote)
                PUT('"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (!quote) {
                        PUT(*p);
                } else if (*p == '"' || *p == '\\') {
                        PUT('\\');
                        PUT(*p);
                } else if (*p == '\n') {
                        PUT('\\');
                        PUT('n');
                } else if (*p == '\t') {
                        PUT('\\');
                        PUT('t');
                } else if (*p < ' ' || *p == 0x7f) {
                        static const char hex[] = "0123456789abcdef";
                        PUT('\\');
                        PUT('x');
                        PUT(hex[*p >> 4]);
                        PUT(hex[*p & 15]);
                } else {
                        PUT(*p);
                }
        }
        if (quote)
                PUT('"');
#undef PUT
        if (size)
                buf[n < size ? n : size - 1] = '\0';
        return n;
}

int cc_log_full(enum cc_log_level level, int errno_value, const char *fields, const char *fmt, ...)
{
        int saved_errno = errno;
        if (errno_value < 0)
                errno_value = -errno_value;
        if (level < log_level || level >= _CC_LOG_MAX)
                goto out;

        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);

        char line[8192];
        size_t n = strftime(line, sizeof(line), "time=\"%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof(line) - n, ".%09ldZ\" level=%s msg=", ts.tv_nsec,
                      level_names[level]);
        if (n < sizeof(line))
                n += cc_logfmt_quote(line + n, sizeof(line) - n, msg);
        if (errno_value && n < sizeof(line)) {
                n += snprintf(line + n, sizeof(line) - n, " error=");
                if (n < sizeof(line))
                        n += cc_logfmt_quote(line + n, sizeof(line) - n, strerror(errno_value));
        }
        if (fields && *fields && n < sizeof(line))
                n += snprintf(line + n, sizeof(line) - n, " %s", fields);
        if (log_fields && *log_fields && n < sizeof(line))
                n += snprintf(line + n, sizeof(line) - n, " %s", log_fields);
        if (n >= sizeof(line) - 1)
                n = sizeof(line) - 2;
        line[n++] = '\n';
        /* Best effort: a log line that cannot be written is dropped. */
        ssize_t w _unused_ = write(log_fd, line, n);
out:
        errno = saved_errno;
        return errno_value ? -errno_value : 0;
}
