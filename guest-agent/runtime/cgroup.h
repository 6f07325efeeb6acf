#pragma once
/*
 * Container cgroups. The guest mounts cgroup v2 at /sys/fs/cgroup; development hosts may run
 * the "hybrid" layout (v1 controllers plus a controller-less v2 tree at
 * /sys/fs/cgroup/unified), where membership, freezing and killing use the v2 tree and the
 * memory/pids/cpu limits go to the v1 controllers. Each container gets
 * <own cgroup>/<root>/<container id> in every hierarchy used; the host-supplied
 * linux.cgroupsPath is ignored because a host-chosen path could name any cgroup of the guest.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"

#include "guest-agent/runtime/spec.h"

enum agent_cgroup_mode {
        AGENT_CGROUP_NONE,   /* no usable cgroup2 tree */
        AGENT_CGROUP_V2,     /* unified only */
        AGENT_CGROUP_HYBRID, /* v2 tree for membership + v1 controllers for limits */
};

enum {
        AGENT_CG_V1_MEMORY,
        AGENT_CG_V1_PIDS,
        AGENT_CG_V1_CPU,
        _AGENT_CG_V1_MAX,
};

struct agent_cgroup {
        char *v2;                   /* directory in the v2 tree */
        char *v1[_AGENT_CG_V1_MAX]; /* directories in v1 hierarchies (hybrid), or NULL */
        /* "<dir>/cgroup.procs" paths prepared in advance: a forked child joins with plain
         * open/write, no allocation. NULL-terminated. */
        char *procs[_AGENT_CG_V1_MAX + 2];
};

struct agent_cgroup_stats {
        uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
        uint64_t cpu_periods, cpu_throttled_periods, cpu_throttled_ns;
        uint64_t mem_usage, mem_max_usage, mem_limit, mem_failcnt;
        uint64_t mem_cache, mem_rss, mem_swap_usage;
        uint64_t oom_kills;
        uint64_t pids_current, pids_limit;
};

/*
 * Finds the cgroup layout under `mountpoint` (normally "/sys/fs/cgroup"). `force` other than
 * AGENT_CGROUP_NONE skips detection (unit tests point it at a plain directory).
 */
int agent_cgroup_init(const char *mountpoint, enum agent_cgroup_mode force);
enum agent_cgroup_mode agent_cgroup_mode(void);

/* Creates <own>/<root>/<name> (root validated as a relative path, name as an id). */
int agent_cgroup_create(const char *root, const char *name, struct agent_cgroup **ret,
                        struct cc_error **err);
/* Applies the limits; unset values are left alone. */
int agent_cgroup_apply(struct agent_cgroup *cg, const struct agent_resources *r,
                       struct cc_error **err);
/* Moves the calling process into the cgroup: open/write only, safe in a forked child. */
int agent_cgroup_enter_self(const struct agent_cgroup *cg);
int agent_cgroup_freeze(struct agent_cgroup *cg, bool frozen, struct cc_error **err);
int agent_cgroup_stats(struct agent_cgroup *cg, struct agent_cgroup_stats *st);
/* Kernel OOM-kill counter of the cgroup (memory.events oom_kill, or v1 memory.oom_control). */
int agent_cgroup_oom_kills(struct agent_cgroup *cg, uint64_t *ret);
/* Path of the file whose modification signals an OOM kill (v2 memory.events), or NULL. */
const char *agent_cgroup_events_path(struct agent_cgroup *cg);
/* SIGKILLs every process in the cgroup (cgroup.kill, else one by one). */
int agent_cgroup_kill(struct agent_cgroup *cg);
/* Kills what is left, waits briefly for it to go, removes the directories, frees cg. */
int agent_cgroup_destroy(struct agent_cgroup *cg);
void agent_cgroup_free(struct agent_cgroup *cg);
/* Removes the (empty) <own>/<root> directories at shutdown; errors are ignored. */
void agent_cgroup_remove_root(const char *root);

/* Pure value conversions (unit tested). */
uint64_t agent_cgroup_shares_to_weight(uint64_t shares);
/* OCI quota/period -> "cpu.max" text ("max 100000", "50000 100000"). */
int agent_cgroup_cpu_max(int64_t quota, uint64_t period, char *buf, size_t n);
/* -1 -> "max", n -> "n". */
int agent_cgroup_limit_str(int64_t v, char *buf, size_t n);
/* OCI memory+swap and memory -> memory.swap.max (swap alone): -1 -> "max". */
int agent_cgroup_swap_max(int64_t mem_swap, int64_t mem, char *buf, size_t n);
