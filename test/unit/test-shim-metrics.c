/*
 * Task.Stats' Metrics (shim/metrics.c, generated from protos/containerd/cgroups/v2/metrics.proto)
 * against the bytes the shim sent before it used generated code, which containerd decodes:
 * the same message (field for field), the same bytes where protobuf-c's field order is the
 * same, and the three sub-messages present even when empty.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "kata/agent.pb-c.h"
#include "shim/shim.h"

/* pids 7/100; cpu 123456789 ns (user 100000000, system 23456789), 10 periods, 2 throttled for
 * 5 ms; memory 1 MiB of 2 MiB, peak 1500000; swap 4096 of 8192. Memory's fields came in the
 * order 32, 33, 36, 34, 35. */
static const uint8_t before_full[] =
        "\x0a\x04\x08\x07\x10\x64\x12\x13\x08\xc0\xc4\x07\x10\xa0\x8d\x06\x18\xa0\xb7\x01\x20\x0a"
        "\x28\x02\x30\x88\x27\x22\x18\x80\x02\x80\x80\x40\x88\x02\x80\x80\x80\x01\xa0\x02\xe0\xc6"
        "\x5b\x90\x02\x80\x20\x98\x02\x80\x40";
static const uint8_t before_empty[] = "\x0a\x00\x12\x00\x22\x00";
static const uint8_t before_cpu_only[] =
        "\x0a\x00\x12\x0c\x08\xc0\xc4\x07\x10\xa0\x8d\x06\x18\xa0\xb7\x01\x22\x00";

struct sample {
        Grpc__CgroupStats cg;
        Grpc__PidsStats ps;
        Grpc__CpuStats cs;
        Grpc__CpuUsage cu;
        Grpc__ThrottlingData td;
        Grpc__MemoryStats ms;
        Grpc__MemoryData mu, sw;
};

static void sample_init(struct sample *s, bool cpu_only)
{
        *s = (struct sample){GRPC__CGROUP_STATS__INIT,    GRPC__PIDS_STATS__INIT,
                             GRPC__CPU_STATS__INIT,       GRPC__CPU_USAGE__INIT,
                             GRPC__THROTTLING_DATA__INIT, GRPC__MEMORY_STATS__INIT,
                             GRPC__MEMORY_DATA__INIT,     GRPC__MEMORY_DATA__INIT};
        s->cu = (Grpc__CpuUsage)GRPC__CPU_USAGE__INIT;
        s->cu.total_usage = 123456789;
        s->cu.usage_in_usermode = 100000000;
        s->cu.usage_in_kernelmode = 23456789;
        s->cs.cpu_usage = &s->cu;
        s->cg.cpu_stats = &s->cs;
        if (cpu_only)
                return;
        s->ps.current = 7;
        s->ps.limit = 100;
        s->td.periods = 10;
        s->td.throttled_periods = 2;
        s->td.throttled_time = 5000000;
        s->mu.usage = 1048576;
        s->mu.limit = 2097152;
        s->mu.max_usage = 1500000;
        s->sw.usage = 4096;
        s->sw.limit = 8192;
        s->cs.throttling_data = &s->td;
        s->ms.usage = &s->mu;
        s->ms.swap_usage = &s->sw;
        s->cg.pids_stats = &s->ps;
        s->cg.memory_stats = &s->ms;
}

/* The message both byte strings carry, re-packed in protobuf-c's canonical order. */
static void same_message(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
        Io__Containerd__Cgroups__V2__Metrics *a =
                io__containerd__cgroups__v2__metrics__unpack(NULL, got_len, got);
        Io__Containerd__Cgroups__V2__Metrics *b =
                io__containerd__cgroups__v2__metrics__unpack(NULL, want_len, want);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(a->pids);
        assert_non_null(a->cpu);
        assert_non_null(a->memory);
        uint8_t pa[512], pb[512];
        size_t na = io__containerd__cgroups__v2__metrics__pack(a, pa);
        size_t nb = io__containerd__cgroups__v2__metrics__pack(b, pb);
        assert_int_equal(na, nb);
        assert_memory_equal(pa, pb, na);
        io__containerd__cgroups__v2__metrics__free_unpacked(a, NULL);
        io__containerd__cgroups__v2__metrics__free_unpacked(b, NULL);
}

static void test_full(void **state)
{
        struct sample s;
        sample_init(&s, false);
        uint8_t buf[512];
        size_t n = shim_metrics_pack(&s.cg, NULL);
        assert_true(n <= sizeof(buf));
        assert_int_equal(shim_metrics_pack(&s.cg, buf), n);
        assert_int_equal(n, sizeof(before_full) - 1);
        same_message(buf, n, before_full, sizeof(before_full) - 1);
        Io__Containerd__Cgroups__V2__Metrics *m =
                io__containerd__cgroups__v2__metrics__unpack(NULL, n, buf);
        assert_non_null(m);
        assert_int_equal(m->pids->current, 7);
        assert_int_equal(m->pids->limit, 100);
        assert_int_equal(m->cpu->usage_usec, 123456);
        assert_int_equal(m->cpu->user_usec, 100000);
        assert_int_equal(m->cpu->system_usec, 23456);
        assert_int_equal(m->cpu->nr_periods, 10);
        assert_int_equal(m->cpu->nr_throttled, 2);
        assert_int_equal(m->cpu->throttled_usec, 5000);
        assert_int_equal(m->memory->usage, 1048576);
        assert_int_equal(m->memory->usage_limit, 2097152);
        assert_int_equal(m->memory->max_usage, 1500000);
        assert_int_equal(m->memory->swap_usage, 4096);
        assert_int_equal(m->memory->swap_limit, 8192);
        io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

/* Where the field order agrees, the bytes are the same as before. */
static void test_same_bytes(void **state)
{
        uint8_t buf[64];
        assert_int_equal(shim_metrics_pack(NULL, buf), sizeof(before_empty) - 1);
        assert_memory_equal(buf, before_empty, sizeof(before_empty) - 1);
        struct sample s;
        sample_init(&s, true);
        assert_int_equal(shim_metrics_pack(&s.cg, buf), sizeof(before_cpu_only) - 1);
        assert_memory_equal(buf, before_cpu_only, sizeof(before_cpu_only) - 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_same_bytes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
