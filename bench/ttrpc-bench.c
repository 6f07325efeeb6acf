/*
 * ttrpc round-trip benchmark client: the same C client measures any ttrpc server that serves
 * containerd.task.v2.Task/Connect (a trivial call).
 *
 *   ttrpc-bench SOCKET [CALLS]
 *
 * Prints one line: p50 and p99 latency of sequential calls on one stream, throughput with one
 * caller (rps_1), throughput with 32 streams in flight on one connection kept full by one
 * pipelining thread (rps_32: the server's capacity, little client cost), and throughput with 32
 * threads calling through the library client on one connection (rps_32t: what a multi-threaded
 * C caller such as the shim gets).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "cc/ttrpc.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "ttrpc/ttrpc.pb-c.h"

#define THREADS 32

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int connect_call(struct cc_ttrpc_client *c)
{
        Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        req.id = "bench";
        Containerd__Task__V2__ConnectResponse *resp = NULL;
        struct cc_error *err = NULL;
        int r = cc_ttrpc_client_call(c, "containerd.task.v2.Task", "Connect", &req.base,
                                     &containerd__task__v2__connect_response__descriptor,
                                     (ProtobufCMessage **)&resp, NULL, &err);
        if (r < 0) {
                fprintf(stderr, "Connect: %s\n", cc_error_message(err));
                cc_error_free(err);
                return r;
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return 0;
}

static int cmp64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

struct worker {
        struct cc_ttrpc_client *c;
        long calls;
        int failed;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        for (long i = 0; i < w->calls; i++)
                if (connect_call(w->c) < 0) {
                        w->failed = 1;
                        break;
                }
        return NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* 32 requests in flight at all times on a fresh connection; returns calls per second. */
static double pipelined(const char *path, long calls)
{
        int fd = cc_unix_connect(path);
        if (fd < 0)
                return -1;
        Containerd__Task__V2__ConnectRequest creq = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        creq.id = "bench";
        uint8_t payload[64];
        size_t plen = containerd__task__v2__connect_request__pack(&creq, payload);
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = "containerd.task.v2.Task";
        req.method = "Connect";
        req.payload.data = payload;
        req.payload.len = plen;
        uint8_t frame[256];
        size_t dlen = ttrpc__request__pack(&req, frame + CC_TTRPC_HEADER_SIZE);
        size_t flen = CC_TTRPC_HEADER_SIZE + dlen;

        uint8_t out[32 * 256];
        static uint8_t in[1 << 16];
        size_t have = 0;
        uint32_t next_id = 1;
        long sent = 0, done = 0;
        int64_t t0 = now_ns();
        while (done < calls) {
                size_t n = 0;
                while (sent - done < 32 && sent < calls) {
                        struct cc_ttrpc_header h = {(uint32_t)dlen, next_id, CC_TTRPC_REQUEST, 0};
                        next_id += 2;
                        cc_ttrpc_header_encode(&h, frame);
                        memcpy(out + n, frame, flen);
                        n += flen;
                        sent++;
                }
                if (n && write_all(fd, out, n) < 0)
                        return -1;
                ssize_t r = read(fd, in + have, sizeof(in) - have);
                if (r <= 0)
                        return -1;
                have += (size_t)r;
                size_t off = 0;
                while (have - off >= CC_TTRPC_HEADER_SIZE) {
                        struct cc_ttrpc_header h;
                        cc_ttrpc_header_decode(in + off, &h);
                        if (have - off < CC_TTRPC_HEADER_SIZE + h.length)
                                break;
                        off += CC_TTRPC_HEADER_SIZE + h.length;
                        done++;
                }
                memmove(in, in + off, have - off);
                have -= off;
        }
        double secs = (double)(now_ns() - t0) / 1e9;
        close(fd);
        return (double)calls / secs;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s SOCKET [CALLS]\n", argv[0]);
                return 2;
        }
        long calls = argc > 2 ? atol(argv[2]) : 20000;
        int fd = cc_unix_connect(argv[1]);
        if (fd < 0) {
                fprintf(stderr, "connect %s: %s\n", argv[1], strerror(-fd));
                return 1;
        }
        struct cc_ttrpc_client *c;
        if (cc_ttrpc_client_new(fd, &c) < 0)
                return 1;
        for (int i = 0; i < 1000; i++) /* warm up both sides */
                if (connect_call(c) < 0)
                        return 1;

        int64_t *lat = calloc((size_t)calls, sizeof(*lat));
        int64_t t0 = now_ns();
        for (long i = 0; i < calls; i++) {
                int64_t s = now_ns();
                if (connect_call(c) < 0)
                        return 1;
                lat[i] = now_ns() - s;
        }
        double seq_s = (double)(now_ns() - t0) / 1e9;
        qsort(lat, (size_t)calls, sizeof(*lat), cmp64);
        double p50 = (double)lat[calls / 2] / 1000.0;
        double p99 = (double)lat[calls * 99 / 100] / 1000.0;
        free(lat);

        struct worker w[THREADS];
        pthread_t t[THREADS];
        int64_t t1 = now_ns();
        for (int i = 0; i < THREADS; i++) {
                w[i] = (struct worker){c, calls / THREADS, 0};
                pthread_create(&t[i], NULL, worker_main, &w[i]);
        }
        int failed = 0;
        for (int i = 0; i < THREADS; i++) {
                pthread_join(t[i], NULL);
                failed |= w[i].failed;
        }
        double par_s = (double)(now_ns() - t1) / 1e9;
        if (failed)
                return 1;
        double rps32 = pipelined(argv[1], calls * 2);
        if (rps32 < 0)
                return 1;
        printf("p50_us=%.1f p99_us=%.1f rps_1=%.0f rps_32=%.0f rps_32t=%.0f\n", p50, p99,
               (double)calls / seq_s, rps32, (double)(calls / THREADS * THREADS) / par_s);
        cc_ttrpc_client_free(c);
        return 0;
}
