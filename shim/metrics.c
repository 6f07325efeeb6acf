/*
 * Task.Stats' answer: the agent's cgroup statistics of a container as containerd's cgroups v2
 * io.containerd.cgroups.v2.Metrics (protos/containerd/cgroups/v2/metrics.proto), which
 * `ctr task metrics` and CRI's container stats decode. The agent reports CPU times in
 * nanoseconds, Metrics wants microseconds. The pids, cpu and memory messages are always
 * present, empty for the pod sandbox (it has no guest container).
 */
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "kata/agent.pb-c.h"
#include "shim/shim.h"

/* Fills m's sub-messages (already initialised) from cg (NULL: all zero). */
static void metrics_from(const Grpc__CgroupStats *cg, Io__Containerd__Cgroups__V2__Metrics *m)
{
        if (!cg)
                return;
        if (cg->pids_stats) {
                m->pids->current = cg->pids_stats->current;
                m->pids->limit = cg->pids_stats->limit;
        }
        const Grpc__CpuStats *c = cg->cpu_stats;
        if (c && c->cpu_usage) {
                m->cpu->usage_usec = c->cpu_usage->total_usage / 1000;
                m->cpu->user_usec = c->cpu_usage->usage_in_usermode / 1000;
                m->cpu->system_usec = c->cpu_usage->usage_in_kernelmode / 1000;
        }
        if (c && c->throttling_data) {
                m->cpu->nr_periods = c->throttling_data->periods;
                m->cpu->nr_throttled = c->throttling_data->throttled_periods;
                m->cpu->throttled_usec = c->throttling_data->throttled_time / 1000;
        }
        const Grpc__MemoryStats *ms = cg->memory_stats;
        if (ms && ms->usage) {
                m->memory->usage = ms->usage->usage;
                m->memory->usage_limit = ms->usage->limit;
                m->memory->max_usage = ms->usage->max_usage;
        }
        if (ms && ms->swap_usage) {
                m->memory->swap_usage = ms->swap_usage->usage;
                m->memory->swap_limit = ms->swap_usage->limit;
        }
}

size_t shim_metrics_pack(const Grpc__CgroupStats *cg, uint8_t *buf)
{
        Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
        Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
        Io__Containerd__Cgroups__V2__MemoryStat mem =
                IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
        Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
        m.pids = &pids;
        m.cpu = &cpu;
        m.memory = &mem;
        metrics_from(cg, &m);
        if (!buf)
                return io__containerd__cgroups__v2__metrics__get_packed_size(&m);
        return io__containerd__cgroups__v2__metrics__pack(&m, buf);
}
