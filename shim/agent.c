/*
 * The agent client's unary call as every part of the shim makes it, given the client itself
 * (not the sandbox), so that the pod network (net.c) and the sandbox (sandbox.c) both use it
 * without depending on each other.
 *
 * The time a thread spends in these calls (and, through shim_external_ns_add(), waiting for
 * the VMM) is counted per thread: a Create subtracts it from its own duration to log the part
 * that is the shim's own work (create_own_ms, bench/shim-rss.sh).
 *
 * The timings the shim logs are logfmt fields of their line (agent_ready_ms=, guest_pull_ms=,
 * create_ms=, create_own_ms=), which the benchmarks read by name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cc/log.h"

#include "shim/shim.h"

static __thread int64_t external_ns;

int64_t shim_mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t shim_external_ns_take(void)
{
        int64_t v = external_ns;
        external_ns = 0;
        return v;
}

void shim_external_ns_add(int64_t ns)
{
        external_ns += ns;
}

int shim_agent_rpc(struct cc_ttrpc_client *agent, const char *service, const char *method,
                   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                   ProtobufCMessage **ret, int64_t timeout_ns, struct cc_error **err)
{
        if (!agent)
                return cc_error_set_code(err, CC_GRPC_UNAVAILABLE,
                                         "the pod's VM is not running (agent unreachable)");
        struct cc_ttrpc_call_opts o = {.timeout_ns = timeout_ns};
        int64_t t0 = shim_mono_ns();
        int r = cc_ttrpc_client_call(agent, service, method, req, resp_desc, ret, &o, err);
        external_ns += shim_mono_ns() - t0;
        if (r < 0)
                cc_error_wrap(err, -r, "agent %s", method);
        return r;
}

void shim_logfmt_add(char *buf, size_t size, const char *key, const char *fmt, ...)
{
        char value[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(value, sizeof(value), fmt, ap);
        va_end(ap);
        size_t n = strnlen(buf, size);
        if (n + 1 >= size)
                return;
        n += (size_t)snprintf(buf + n, size - n, "%s%s=", n ? " " : "", key);
        if (n < size)
                cc_logfmt_quote(buf + n, size - n, value);
}
