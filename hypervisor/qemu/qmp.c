/*
 * A small QMP client: greeting, qmp_capabilities, then one command at a time. Replies carry
 * the "id" we sent (QEMU echoes it, reference 1.8), and asynchronous events may arrive before
 * a reply (SHUTDOWN comes before quit's return), so the reader skips and records events while
 * it waits. QEMU is not trusted to send sane data: lines are bounded and every member's type is
 * checked.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/qemu/qemu.h"

static const char *get_string(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static unsigned get_uint(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        int64_t n = json_object_get_int64(v);
        return n < 0 || n > 9999 ? 0 : (unsigned)n;
}

void hv_qmp_msg_done(struct hv_qmp_msg *m)
{
        if (m->root)
                json_object_put(m->root);
        *m = (struct hv_qmp_msg){0};
}

int hv_qmp_parse(const char *line, size_t len, struct hv_qmp_msg *ret)
{
        *ret = (struct hv_qmp_msg){0};
        if (len == 0 || len > HV_QMP_MAX_LINE)
                return -EBADMSG;
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, line, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        /* The whole line must be one object, possibly followed by whitespace. */
        size_t used = tok->char_offset > 0 ? (size_t)tok->char_offset : 0;
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                json_object_put(root);
                return -EBADMSG;
        }
        for (size_t i = used; i < len; i++)
                if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n') {
                        json_object_put(root);
                        return -EBADMSG;
                }
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return -EBADMSG;
        }
        ret->root = root;
        json_object *v;
        if (json_object_object_get_ex(root, "QMP", &v) &&
            json_object_is_type(v, json_type_object)) {
                ret->kind = HV_QMP_GREETING;
                json_object *ver, *q;
                if (json_object_object_get_ex(v, "version", &ver) &&
                    json_object_object_get_ex(ver, "qemu", &q))
                        ret->version = get_uint(q, "major") * 10000 + get_uint(q, "minor") * 100 +
                                       get_uint(q, "micro");
                return 0;
        }
        ret->id = get_string(root, "id");
        if (json_object_object_get_ex(root, "return", &v)) {
                ret->kind = HV_QMP_RETURN;
                ret->value = v;
                return 0;
        }
        if (json_object_object_get_ex(root, "error", &v) &&
            json_object_is_type(v, json_type_object)) {
                ret->kind = HV_QMP_ERROR;
                ret->err_class = get_string(v, "class");
                ret->err_desc = get_string(v, "desc");
                return 0;
        }
        const char *ev = get_string(root, "event");
        if (ev) {
                ret->kind = HV_QMP_EVENT;
                ret->event = ev;
                if (json_object_object_get_ex(root, "data", &v) &&
                    json_object_is_type(v, json_type_object))
                        ret->value = v;
                return 0;
        }
        hv_qmp_msg_done(ret);
        return -EBADMSG;
}

void hv_qmp_close(struct hv_qmp *q)
{
        q->fd = cc_close(q->fd);
        free(q->buf);
        q->buf = NULL;
        q->len = q->cap = 0;
}

/* Reads the next complete line into a new message; waits at most until deadline. */
static int read_msg(struct hv_qmp *q, int64_t deadline, struct hv_qmp_msg *ret,
                    struct cc_error **err)
{
        for (;;) {
                char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
                if (nl) {
                        size_t linelen = (size_t)(nl - q->buf);
                        int r = hv_qmp_parse(q->buf, linelen, ret);
                        memmove(q->buf, nl + 1, q->len - linelen - 1);
                        q->len -= linelen + 1;
                        if (r == -EBADMSG) {
                                cc_log_debug("hv: qmp: skipping a line that is not QMP");
                                continue;
                        }
                        if (r < 0)
                                return cc_error_set(err, -r, "qmp: parse: %s", strerror(-r));
                        if (ret->kind == HV_QMP_EVENT && strcmp(ret->event, "SHUTDOWN") == 0) {
                                q->shutdown_seen = true;
                                const char *reason =
                                        ret->value ? get_string(ret->value, "reason") : NULL;
                                snprintf(q->shutdown_reason, sizeof(q->shutdown_reason), "%s",
                                         reason ? reason : "");
                        }
                        if (ret->kind == HV_QMP_EVENT && q->on_event)
                                q->on_event(q->event_data, ret);
                        return 0;
                }
                if (q->len >= HV_QMP_MAX_LINE)
                        return cc_error_set(err, EMSGSIZE, "qmp: line longer than %u bytes",
                                            HV_QMP_MAX_LINE);
                struct pollfd pfd[2] = {{.fd = q->fd, .events = POLLIN},
                                        {.fd = q->watch_fd, .events = POLLIN}};
                int left = hv__remaining(deadline);
                if (left == 0)
                        return cc_error_set(err, ETIMEDOUT, "qmp: no reply from QEMU in time");
                int n = poll(pfd, q->watch_fd >= 0 ? 2 : 1, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cc_error_set(err, errno, "qmp: poll: %m");
                }
                if (n == 0)
                        continue;
                if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && pfd[1].revents)
                        return cc_error_set(err, ECHILD, "qmp: QEMU exited");
                if (!pfd[0].revents)
                        continue;
                if (q->cap - q->len < 4096) {
                        size_t cap = q->cap ? q->cap * 2 : 8192;
                        char *b = realloc(q->buf, cap);
                        if (!b)
                                return cc_error_set(err, ENOMEM, "out of memory");
                        q->buf = b;
                        q->cap = cap;
                }
                ssize_t got = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
                if (got < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return cc_error_set(err, errno, "qmp: read: %m");
                }
                if (got == 0)
                        return cc_error_set(err, ECONNRESET, "qmp: QEMU closed the connection");
                q->len += (size_t)got;
        }
}

static int send_all(int fd, const char *s, size_t len, struct cc_error **err)
{
        while (len) {
                ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cc_error_set(err, errno, "qmp: write: %m");
                }
                s += n;
                len -= (size_t)n;
        }
        return 0;
}

int hv_qmp_execute(struct hv_qmp *q, const char *cmd, json_object *args, int timeout_ms,
                   json_object **ret, struct cc_error **err)
{
        if (q->fd < 0)
                return cc_error_set(err, ENOTCONN, "qmp: not connected");
        int64_t deadline = hv__deadline(timeout_ms);
        char id[32];
        snprintf(id, sizeof(id), "hv-%u", ++q->next_id);
        json_object *req = json_object_new_object();
        if (!req)
                return cc_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(req, "execute", json_object_new_string(cmd));
        if (args)
                json_object_object_add(req, "arguments", json_object_get(args));
        json_object_object_add(req, "id", json_object_new_string(id));
        _cleanup_free_ char *line = NULL;
        if (asprintf(&line, "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)) <
            0)
                line = NULL;
        json_object_put(req);
        if (!line)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = send_all(q->fd, line, strlen(line), err);
        if (r < 0)
                return r;
        for (;;) {
                struct hv_qmp_msg m;
                r = read_msg(q, deadline, &m, err);
                if (r < 0)
                        return cc_error_wrap(err, -r, "qmp %s", cmd);
                if ((m.kind == HV_QMP_RETURN || m.kind == HV_QMP_ERROR) && m.id &&
                    strcmp(m.id, id) == 0) {
                        if (m.kind == HV_QMP_ERROR) {
                                r = cc_error_set(err, EREMOTEIO, "qmp %s: %s: %s", cmd,
                                                 m.err_class ? m.err_class : "Error",
                                                 m.err_desc ? m.err_desc : "(no description)");
                        } else if (ret) {
                                *ret = json_object_get(m.value);
                        }
                        hv_qmp_msg_done(&m);
                        return r;
                }
                if (m.kind == HV_QMP_EVENT)
                        cc_log_debug("hv: qmp event %s", m.event);
                hv_qmp_msg_done(&m);
        }
}

int hv_qmp_wait(struct hv_qmp *q, bool (*done)(void *data), void *data, int timeout_ms,
                struct cc_error **err)
{
        if (q->fd < 0)
                return cc_error_set(err, ENOTCONN, "qmp: not connected");
        int64_t deadline = hv__deadline(timeout_ms);
        while (!done(data)) {
                if (hv__remaining(deadline) == 0)
                        return -ETIMEDOUT;
                struct hv_qmp_msg m;
                _cleanup_error_ struct cc_error *read_err = NULL;
                int r = read_msg(q, deadline, &m, &read_err);
                if (r == -ETIMEDOUT)
                        return -ETIMEDOUT;
                if (r < 0)
                        return cc_error_set(err, -r, "%s", cc_error_message(read_err));
                if (m.kind == HV_QMP_EVENT)
                        cc_log_debug("hv: qmp event %s", m.event);
                hv_qmp_msg_done(&m);
        }
        return 0;
}

int hv_qmp_handshake(struct hv_qmp *q, int fd, int timeout_ms, struct cc_error **err)
{
        q->fd = fd;
        int64_t deadline = hv__deadline(timeout_ms);
        struct hv_qmp_msg m;
        int r = read_msg(q, deadline, &m, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "qmp greeting");
        bool greeting = m.kind == HV_QMP_GREETING;
        q->version = m.version;
        hv_qmp_msg_done(&m);
        if (!greeting)
                return cc_error_set(err, EPROTO, "qmp: expected the greeting first");
        return hv_qmp_execute(q, "qmp_capabilities", NULL, hv__remaining(deadline), NULL, err);
}
