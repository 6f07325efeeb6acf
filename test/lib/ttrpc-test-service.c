/* The test service described in ttrpc-test-service.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "ttrpc-test-service.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned released;

void test_ttrpc_service_reset(void)
{
        pthread_mutex_lock(&lock);
        released = 0;
        pthread_mutex_unlock(&lock);
}

static int echo(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                ProtobufCMessage *resp, struct cc_error **err)
{
        const Google__Protobuf__Timestamp *in = (const Google__Protobuf__Timestamp *)req;
        Google__Protobuf__Timestamp *out = (Google__Protobuf__Timestamp *)resp;
        out->seconds = in->seconds + 1;
        out->nanos = in->nanos;
        return 0;
}

static int fail(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                ProtobufCMessage *resp, struct cc_error **err)
{
        const Google__Protobuf__Timestamp *in = (const Google__Protobuf__Timestamp *)req;
        int e = in->seconds > 0 && in->seconds < 4096 ? (int)in->seconds : EIO;
        return cc_error_set(err, e, "failed as asked");
}

static int sleep_echo(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                      ProtobufCMessage *resp, struct cc_error **err)
{
        const Google__Protobuf__Timestamp *in = (const Google__Protobuf__Timestamp *)req;
        long ns = in->nanos > 0 && in->nanos < 1000000000 ? in->nanos : 0;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
        nanosleep(&ts, NULL);
        return echo(call, ud, req, resp, err);
}

static int block(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                 ProtobufCMessage *resp, struct cc_error **err)
{
        pthread_mutex_lock(&lock);
        unsigned seen = released;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while (released == seen)
                if (pthread_cond_timedwait(&cond, &lock, &until) == ETIMEDOUT)
                        break;
        bool ok = released != seen;
        pthread_mutex_unlock(&lock);
        if (!ok)
                return cc_error_set(err, ETIMEDOUT, "never released");
        return echo(call, ud, req, resp, err);
}

static int release(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                   ProtobufCMessage *resp, struct cc_error **err)
{
        pthread_mutex_lock(&lock);
        released++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return echo(call, ud, req, resp, err);
}

static int meta(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                ProtobufCMessage *resp, struct cc_error **err)
{
        const char *ns = cc_ttrpc_call_metadata(call, "containerd-namespace-ttrpc");
        Google__Protobuf__Timestamp *out = (Google__Protobuf__Timestamp *)resp;
        out->seconds = ns ? (int64_t)strlen(ns) : -1;
        pid_t pid;
        out->nanos = cc_ttrpc_call_peer(call, &pid, NULL, NULL) == 0 ? (int32_t)pid : -1;
        return 0;
}

/* Answers with the request's unknown fields copied back: a response as large as the request. */
static int mirror(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                  ProtobufCMessage *resp, struct cc_error **err)
{
        unsigned n = req->n_unknown_fields;
        if (n == 0)
                return echo(call, ud, req, resp, err);
        ProtobufCMessageUnknownField *f = cc_ttrpc_call_alloc(call, n * sizeof(*f));
        if (!f)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (unsigned i = 0; i < n; i++) {
                f[i] = req->unknown_fields[i];
                f[i].data = cc_ttrpc_call_alloc(call, f[i].len ? f[i].len : 1);
                if (!f[i].data)
                        return cc_error_set(err, ENOMEM, "out of memory");
                memcpy(f[i].data, req->unknown_fields[i].data, f[i].len);
        }
        resp->n_unknown_fields = n;
        resp->unknown_fields = f;
        return 0;
}

static int empty(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req,
                 ProtobufCMessage *resp, struct cc_error **err)
{
        return 0;
}

#define TS &google__protobuf__timestamp__descriptor
static const struct cc_ttrpc_method methods[] = {
        {"Echo", TS, TS, echo, CC_TTRPC_METHOD_INLINE},
        {"Work", TS, TS, echo, 0},
        {"Fail", TS, TS, fail, CC_TTRPC_METHOD_INLINE},
        {"Sleep", TS, TS, sleep_echo, 0},
        {"Block", TS, TS, block, 0},
        {"Release", TS, TS, release, CC_TTRPC_METHOD_INLINE},
        {"Meta", TS, TS, meta, CC_TTRPC_METHOD_INLINE},
        {"Empty", TS, NULL, empty, CC_TTRPC_METHOD_INLINE},
        {"Mirror", TS, TS, mirror, 0},
};

/* The methods that never wait, for fuzzing (every input must finish quickly). */
static const struct cc_ttrpc_method quick_methods[] = {
        {"Echo", TS, TS, echo, CC_TTRPC_METHOD_INLINE},
        {"Work", TS, TS, echo, 0},
        {"Fail", TS, TS, fail, CC_TTRPC_METHOD_INLINE},
        {"Meta", TS, TS, meta, CC_TTRPC_METHOD_INLINE},
        {"Empty", TS, NULL, empty, CC_TTRPC_METHOD_INLINE},
};

const struct cc_ttrpc_service test_ttrpc_service_quick = {
        .name = "cc.test.v1.Test",
        .methods = quick_methods,
        .n_methods = sizeof(quick_methods) / sizeof(quick_methods[0]),
};

const struct cc_ttrpc_service test_ttrpc_service = {
        .name = "cc.test.v1.Test",
        .methods = methods,
        .n_methods = sizeof(methods) / sizeof(methods[0]),
};
