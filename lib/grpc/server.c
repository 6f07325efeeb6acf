/*
 * gRPC server over HTTP/2 cleartext on nghttp2. See cc/grpc.h for the model.
 *
 * Threads and ownership:
 *  - the accept thread turns each accepted socket into a conn with its own thread;
 *  - a conn thread owns its nghttp2 session: every nghttp2 call happens on it;
 *  - handlers run on worker threads (a small pool fed by a queue) or inline. A handler never
 *    touches the session: it appends encoded bytes to its call's output buffer under the
 *    conn's lock and wakes the conn thread through an eventfd.
 *  - struct call is shared by the conn thread (while its stream is open) and a worker (while
 *    its handler runs): reference-counted. Each call holds a reference on its conn, so the
 *    eventfd a late worker writes to stays valid after the conn thread exited.
 *
 * Files: this one is the server (registration, the accept thread, shutdown); server-call.c a
 * call's life apart from HTTP/2; server-h2.c the nghttp2 glue and the connection thread;
 * server-internal.h what they share.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/grpc.h"
#include "cc/log.h"

#include "lib/grpc/server-internal.h"

/* ---- server -------------------------------------------------------------------------------------
 */

int cc_grpc_server_new(const struct cc_grpc_server_options *opts, struct cc_grpc_server **ret)
{
        struct cc_grpc_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (opts)
                s->opts = *opts;
        if (!s->opts.max_recv_msg)
                s->opts.max_recv_msg = CC_GRPC_DEFAULT_MAX_MSG;
        if (!s->opts.max_send_msg)
                s->opts.max_send_msg = CC_GRPC_DEFAULT_MAX_MSG;
        if (!s->opts.max_concurrent_streams)
                s->opts.max_concurrent_streams = 1000;
        if (!s->opts.max_workers)
                s->opts.max_workers = 128;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->listen_fd = -1;
        s->accept_wake[0] = s->accept_wake[1] = -1;
        *ret = s;
        return 0;
}

int cc_grpc_server_register(struct cc_grpc_server *s, const struct cc_grpc_service *svc,
                            void *userdata)
{
        pthread_mutex_lock(&s->lock);
        struct registered *n = realloc(s->svcs, (s->n_svcs + 1) * sizeof(*n));
        if (!n) {
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        s->svcs = n;
        s->svcs[s->n_svcs++] = (struct registered){svc, userdata};
        pthread_mutex_unlock(&s->lock);
        return 0;
}

static void *accept_main(void *arg)
{
        struct cc_grpc_server *s = arg;
        for (;;) {
                struct pollfd pfd[2] = {{.fd = s->listen_fd, .events = POLLIN},
                                        {.fd = s->accept_wake[0], .events = POLLIN}};
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Out of fds: back off instead of spinning. */
                                usleep(100000);
                                continue;
                        }
                        break;
                }
                int r = cc_grpc_server_add_conn(s, fd);
                if (r < 0)
                        cc_log_debug("grpc: dropping connection: %s", strerror(-r));
        }
        return NULL;
}

int cc_grpc_server_listen(struct cc_grpc_server *s, int listen_fd)
{
        if (s->accepting) {
                cc_close(listen_fd);
                return -EBUSY;
        }
        if (pipe2(s->accept_wake, O_CLOEXEC) < 0) {
                cc_close(listen_fd);
                return -errno;
        }
        s->listen_fd = listen_fd;
        int r = -pthread_create(&s->accept_thread, NULL, accept_main, s);
        if (r < 0)
                return r;
        s->accepting = true;
        return 0;
}

unsigned cc_grpc_server_n_conns(struct cc_grpc_server *s)
{
        pthread_mutex_lock(&s->lock);
        unsigned n = s->n_conns;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static void wake_all_conns(struct cc_grpc_server *s, bool closing)
{
        for (struct conn *c = s->conns; c; c = c->next) {
                if (closing)
                        c->closing = true;
                cc_grpc__conn_wake(c);
        }
}

void cc_grpc_server_shutdown(struct cc_grpc_server *s)
{
        if (s->accepting) {
                char b = 1;
                ssize_t _unused_ n = write(s->accept_wake[1], &b, 1);
                pthread_join(s->accept_thread, NULL);
                s->accepting = false;
        }
        s->listen_fd = cc_close(s->listen_fd);
        s->accept_wake[0] = cc_close(s->accept_wake[0]);
        s->accept_wake[1] = cc_close(s->accept_wake[1]);

        pthread_mutex_lock(&s->lock);
        s->shut = true;
        /* Let running handlers finish and their replies go out (5 s at most), then close. */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        while ((s->jobs_head || s->n_busy) &&
               pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == 0)
                ;
        wake_all_conns(s, true);
        s->stop_workers = true;
        pthread_cond_broadcast(&s->cond);
        while (s->n_conns || s->n_threads)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

void cc_grpc_server_free(struct cc_grpc_server *s)
{
        if (!s)
                return;
        cc_grpc_server_shutdown(s);
        free(s->svcs);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}
