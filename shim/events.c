/*
 * The events publisher: containerd.services.events.ttrpc.v1.Events/Forward on $TTRPC_ADDRESS
 * (reference shim-v2-ttrpc.md 1.10).
 *
 * Events are encoded when published and delivered by one thread in publication order, which
 * is how the ordering rules hold (create, then start, then exit, then delete): each is
 * published by the step that makes it true. A failed Forward is retried up to 5 times with a
 * back-off of 1 s x attempt and a 5 s deadline per call, re-dialling a broken connection, as
 * containerd's own publisher does; an event that still fails is logged and dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/ttrpc.h"

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "shim/shim.h"

#define FORWARD_ATTEMPTS   5
#define FORWARD_TIMEOUT_NS (5ll * 1000000000ll)

struct event {
        struct event *next;
        char *topic;
        char *type_url;
        uint8_t *data;
        size_t len;
        struct timespec ts;
};

struct shim_events {
        char *path; /* containerd's ttrpc socket */
        char *ns;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct event *head, *tail;
        bool stop, busy;
        struct cc_ttrpc_client *client;
};

void shim_now(struct timespec *ts)
{
        clock_gettime(CLOCK_REALTIME, ts);
}

static void event_free(struct event *e)
{
        if (!e)
                return;
        free(e->topic);
        free(e->type_url);
        free(e->data);
        free(e);
}

static int forward(struct shim_events *ev, const struct event *e, struct cc_error **err)
{
        if (ev->client && cc_ttrpc_client_broken(ev->client)) {
                cc_ttrpc_client_free(ev->client);
                ev->client = NULL;
        }
        if (!ev->client) {
                int fd = cc_unix_connect(ev->path);
                if (fd < 0)
                        return cc_error_set(err, -fd, "connect %s: %s", ev->path, strerror(-fd));
                int r = cc_ttrpc_client_new(fd, &ev->client);
                if (r < 0)
                        return cc_error_set(err, -r, "ttrpc client: %s", strerror(-r));
        }
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = e->ts.tv_sec;
        ts.nanos = (int32_t)e->ts.tv_nsec;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = e->type_url;
        any.value.data = e->data;
        any.value.len = e->len;
        Containerd__Services__Events__Ttrpc__V1__Envelope env =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        env.timestamp = &ts;
        env.namespace_ = ev->ns;
        env.topic = e->topic;
        env.event = &any;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        req.envelope = &env;
        struct cc_ttrpc_kv md = {"containerd-namespace-ttrpc", ev->ns};
        struct cc_ttrpc_call_opts o = {.timeout_ns = FORWARD_TIMEOUT_NS, .md = &md, .n_md = 1};
        return cc_ttrpc_client_call(ev->client, "containerd.services.events.ttrpc.v1.Events",
                                    "Forward", &req.base, NULL, NULL, &o, err);
}

static void *publisher(void *arg)
{
        struct shim_events *ev = arg;
        pthread_mutex_lock(&ev->lock);
        for (;;) {
                while (!ev->head && !ev->stop)
                        pthread_cond_wait(&ev->cond, &ev->lock);
                if (!ev->head)
                        break;
                struct event *e = ev->head;
                ev->head = e->next;
                if (!ev->head)
                        ev->tail = NULL;
                ev->busy = true;
                pthread_mutex_unlock(&ev->lock);
                for (int attempt = 1; attempt <= FORWARD_ATTEMPTS; attempt++) {
                        _cleanup_error_ struct cc_error *err = NULL;
                        if (forward(ev, e, &err) == 0)
                                break;
                        if (attempt == FORWARD_ATTEMPTS) {
                                cc_log_error("publish %s failed after %d attempts: %s", e->topic,
                                             attempt, cc_error_message(err));
                                break;
                        }
                        cc_log_warn("publish %s: %s; retrying", e->topic, cc_error_message(err));
                        struct timespec d = {.tv_sec = attempt};
                        pthread_mutex_lock(&ev->lock);
                        bool stopping = ev->stop;
                        pthread_mutex_unlock(&ev->lock);
                        if (stopping && attempt >= 2)
                                break;
                        nanosleep(&d, NULL);
                }
                event_free(e);
                pthread_mutex_lock(&ev->lock);
                ev->busy = false;
                pthread_cond_broadcast(&ev->cond);
        }
        pthread_mutex_unlock(&ev->lock);
        return NULL;
}

int shim_events_new(const char *ttrpc_address, const char *ns, struct shim_events **ret)
{
        struct shim_events *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return -ENOMEM;
        const char *p = ttrpc_address ? ttrpc_address : "";
        if (strncmp(p, "unix://", 7) == 0)
                p += 7;
        ev->path = strdup(p);
        ev->ns = strdup(ns);
        pthread_mutex_init(&ev->lock, NULL);
        pthread_cond_init(&ev->cond, NULL);
        if (!ev->path || !ev->ns || pthread_create(&ev->thread, NULL, publisher, ev) != 0) {
                free(ev->path);
                free(ev->ns);
                free(ev);
                return -ENOMEM;
        }
        *ret = ev;
        return 0;
}

void shim_events_publish(struct shim_events *ev, const char *topic, const ProtobufCMessage *msg)
{
        if (!ev)
                return;
        struct event *e = calloc(1, sizeof(*e));
        if (!e)
                return;
        shim_now(&e->ts);
        e->len = protobuf_c_message_get_packed_size(msg);
        e->data = malloc(e->len ? e->len : 1);
        e->topic = strdup(topic);
        /* containerd's type URLs are the bare full names (containerd.events.TaskExit). */
        e->type_url = strdup(msg->descriptor->name);
        if (!e->data || !e->topic || !e->type_url) {
                event_free(e);
                return;
        }
        protobuf_c_message_pack(msg, e->data);
        pthread_mutex_lock(&ev->lock);
        if (ev->tail)
                ev->tail->next = e;
        else
                ev->head = e;
        ev->tail = e;
        pthread_cond_broadcast(&ev->cond);
        pthread_mutex_unlock(&ev->lock);
        cc_log_debug("event %s queued", topic);
}

void shim_events_free(struct shim_events *ev, int timeout_ms)
{
        if (!ev)
                return;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ev->lock);
        while ((ev->head || ev->busy) &&
               pthread_cond_timedwait(&ev->cond, &ev->lock, &until) != ETIMEDOUT)
                ;
        ev->stop = true;
        /* Whatever is still queued after the grace period is dropped. */
        while (ev->head) {
                struct event *e = ev->head;
                ev->head = e->next;
                event_free(e);
        }
        ev->tail = NULL;
        pthread_cond_broadcast(&ev->cond);
        pthread_mutex_unlock(&ev->lock);
        pthread_join(ev->thread, NULL);
        cc_ttrpc_client_free(ev->client);
        pthread_mutex_destroy(&ev->lock);
        pthread_cond_destroy(&ev->cond);
        free(ev->path);
        free(ev->ns);
        free(ev);
}
