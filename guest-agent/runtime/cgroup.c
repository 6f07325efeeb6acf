/*
 * Container cgroups; see cgroup.h.
 */
#include "guest-agent/runtime/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/validate.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static const char *const v1_names[_AGENT_CG_V1_MAX] = {"memory", "pids", "cpu"};

static struct {
        enum agent_cgroup_mode mode;
        char v2_base[PATH_MAX];                   /* mountpoint + own path */
        char v1_base[_AGENT_CG_V1_MAX][PATH_MAX]; /* "" when absent */
} cgs;

enum agent_cgroup_mode agent_cgroup_mode(void)
{
        return cgs.mode;
}

/* Our own path in the hierarchy identified by `key` ("" for v2, else a v1 controller). */
static void own_path(const char *key, char *buf, size_t n)
{
        snprintf(buf, n, "/");
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[PATH_MAX + 64];
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1, *path = c2 + 1;
                bool match = false;
                if (!*key)
                        match = strcmp(line, "0") == 0 && !*ctrls;
                else
                        for (char *save, *t = strtok_r((char *)ctrls, ",", &save); t;
                             t = strtok_r(NULL, ",", &save))
                                match = match || strcmp(t, key) == 0;
                if (match) {
                        snprintf(buf, n, "%s", path);
                        return;
                }
        }
}

static bool is_cgroup2(const char *path)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 && sf.f_type == (typeof(sf.f_type))CGROUP2_SUPER_MAGIC;
}

int agent_cgroup_init(const char *mountpoint, enum agent_cgroup_mode force)
{
        char own[PATH_MAX];
        memset(&cgs, 0, sizeof(cgs));
        if (force != AGENT_CGROUP_NONE) {
                cgs.mode = force;
                snprintf(cgs.v2_base, sizeof(cgs.v2_base), "%s", mountpoint);
                return 0;
        }
        if (is_cgroup2(mountpoint)) {
                cgs.mode = AGENT_CGROUP_V2;
                own_path("", own, sizeof(own));
                snprintf(cgs.v2_base, sizeof(cgs.v2_base), "%s%s", mountpoint,
                         strcmp(own, "/") ? own : "");
                return 0;
        }
        char unified[PATH_MAX];
        snprintf(unified, sizeof(unified), "%s/unified", mountpoint);
        if (!is_cgroup2(unified))
                return -EOPNOTSUPP;
        cgs.mode = AGENT_CGROUP_HYBRID;
        own_path("", own, sizeof(own));
        snprintf(cgs.v2_base, sizeof(cgs.v2_base), "%s%s", unified, strcmp(own, "/") ? own : "");
        for (int i = 0; i < _AGENT_CG_V1_MAX; i++) {
                char dir[PATH_MAX];
                snprintf(dir, sizeof(dir), "%s/%s", mountpoint, v1_names[i]);
                if (access(dir, W_OK) != 0)
                        continue;
                own_path(v1_names[i], own, sizeof(own));
                snprintf(cgs.v1_base[i], sizeof(cgs.v1_base[i]), "%s%s", dir,
                         strcmp(own, "/") ? own : "");
        }
        return 0;
}

static int write_file(const char *dir, const char *file, const char *value)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        size_t len = strlen(value);
        ssize_t n = write(fd, value, len);
        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EIO;
}

static int read_file(const char *dir, const char *file, char *buf, size_t size)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret)
{
        char buf[64];
        int r = read_file(dir, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Reads "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret)
{
        char buf[8192];
        int r = read_file(dir, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        size_t klen = strlen(key);
        for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
                        *ret = strtoull(line + klen + 1, NULL, 10);
                        return 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

static int mkdir_p(const char *path)
{
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s", path);
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Enables the controllers we use for the children of `dir` (best effort: the set available
 * depends on the kernel and on what the parent delegates). */
static void enable_controllers(const char *dir)
{
        static const char *const ctrls[] = {"+memory", "+pids", "+cpu", "+cpuset"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(ctrls); i++)
                (void)write_file(dir, "cgroup.subtree_control", ctrls[i]);
}

void agent_cgroup_free(struct agent_cgroup *cg)
{
        if (!cg)
                return;
        free(cg->v2);
        for (int i = 0; i < _AGENT_CG_V1_MAX; i++)
                free(cg->v1[i]);
        for (char **p = cg->procs; *p; p++)
                free(*p);
        free(cg);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_cgroup *, agent_cgroup_free)

int agent_cgroup_create(const char *root, const char *name, struct agent_cgroup **ret,
                        struct cc_error **err)
{
        int r;
        if (cgs.mode == AGENT_CGROUP_NONE)
                return cc_error_set(err, EOPNOTSUPP, "no cgroup v2 hierarchy found");
        if ((r = agent_validate_rel_path(root, "cgroup root", err)) < 0 ||
            (r = agent_validate_id(name, "cgroup name", err)) < 0)
                return r;
        while (*root == '/')
                root++;
        _cleanup_(agent_cgroup_freep) struct agent_cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        size_t np = 0;
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s/%s", cgs.v2_base, root);
        if ((r = mkdir_p(parent)) < 0)
                return cc_error_set(err, -r, "create cgroup '%s': %s", parent, strerror(-r));
        if (cgs.mode == AGENT_CGROUP_V2) {
                enable_controllers(cgs.v2_base);
                enable_controllers(parent);
        }
        if (asprintf(&cg->v2, "%s/%s", parent, name) < 0)
                return -ENOMEM;
        if (mkdir(cg->v2, 0755) < 0)
                return cc_error_set(err, errno, "create cgroup '%s': %m", cg->v2);
        if (asprintf(&cg->procs[np++], "%s/cgroup.procs", cg->v2) < 0)
                return -ENOMEM;
        for (int i = 0; cgs.mode == AGENT_CGROUP_HYBRID && i < _AGENT_CG_V1_MAX; i++) {
                if (!cgs.v1_base[i][0])
                        continue;
                if (asprintf(&cg->v1[i], "%s/%s/%s", cgs.v1_base[i], root, name) < 0)
                        return -ENOMEM;
                if ((r = mkdir_p(cg->v1[i])) < 0) {
                        cc_log_debug("cgroup: cannot create %s: %s", cg->v1[i], strerror(-r));
                        free(cg->v1[i]);
                        cg->v1[i] = NULL;
                        continue;
                }
                if (asprintf(&cg->procs[np++], "%s/cgroup.procs", cg->v1[i]) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

uint64_t agent_cgroup_shares_to_weight(uint64_t shares)
{
        /* The mapping runc and crun use: shares 2..262144 onto weight 1..10000. */
        if (shares == 0)
                return 0;
        if (shares < 2)
                shares = 2;
        if (shares > 262144)
                shares = 262144;
        return 1 + ((shares - 2) * 9999) / 262142;
}

int agent_cgroup_cpu_max(int64_t quota, uint64_t period, char *buf, size_t n)
{
        if (period == 0)
                period = 100000;
        if (period < 1000 || period > 1000000)
                return -EINVAL;
        int k;
        if (quota <= 0)
                k = snprintf(buf, n, "max %" PRIu64, period);
        else if (quota < 1000)
                return -EINVAL;
        else
                k = snprintf(buf, n, "%" PRId64 " %" PRIu64, quota, period);
        return k < (int)n ? 0 : -ENOSPC;
}

int agent_cgroup_limit_str(int64_t v, char *buf, size_t n)
{
        int k = v < 0 ? snprintf(buf, n, "max") : snprintf(buf, n, "%" PRId64, v);
        return k < (int)n ? 0 : -ENOSPC;
}

int agent_cgroup_swap_max(int64_t mem_swap, int64_t mem, char *buf, size_t n)
{
        /* OCI gives memory+swap; v2 limits swap alone. */
        if (mem_swap < 0)
                return agent_cgroup_limit_str(-1, buf, n);
        if (mem <= 0 || mem_swap < mem)
                return -EINVAL;
        return agent_cgroup_limit_str(mem_swap - mem, buf, n);
}

static int apply_one(const char *dir, const char *file, const char *value, struct cc_error **err)
{
        int r = write_file(dir, file, value);
        if (r < 0)
                return cc_error_set(err, -r, "cgroup: write '%s' to %s/%s: %s", value, dir, file,
                                    strerror(-r));
        return 0;
}

int agent_cgroup_apply(struct agent_cgroup *cg, const struct agent_resources *res,
                       struct cc_error **err)
{
        char v[64];
        int r = 0;
        const char *mem = cg->v1[AGENT_CG_V1_MEMORY], *pids = cg->v1[AGENT_CG_V1_PIDS],
                   *cpu = cg->v1[AGENT_CG_V1_CPU];
        bool v2 = cgs.mode == AGENT_CGROUP_V2;

        if (res->memory_limit != 0) {
                agent_cgroup_limit_str(res->memory_limit, v, sizeof(v));
                if (v2)
                        r = apply_one(cg->v2, "memory.max", v, err);
                else if (mem)
                        r = apply_one(mem, "memory.limit_in_bytes",
                                      res->memory_limit < 0 ? "-1" : v, err);
                else
                        r = cc_error_set(err, EOPNOTSUPP, "cgroup: no memory controller");
                if (r < 0)
                        return r;
        }
        if (res->memory_reservation > 0) {
                agent_cgroup_limit_str(res->memory_reservation, v, sizeof(v));
                if (v2 && (r = apply_one(cg->v2, "memory.low", v, err)) < 0)
                        return r;
        }
        if (res->memory_swap != 0) {
                if (v2) {
                        if (agent_cgroup_swap_max(res->memory_swap, res->memory_limit, v,
                                                  sizeof(v)) < 0)
                                return cc_error_set(err, EINVAL,
                                                    "cgroup: memory.swap %" PRId64
                                                    " is below memory.limit %" PRId64,
                                                    res->memory_swap, res->memory_limit);
                        /* memory.swap.max is absent without swap accounting: not an error. */
                        (void)write_file(cg->v2, "memory.swap.max", v);
                } else if (mem) {
                        agent_cgroup_limit_str(res->memory_swap, v, sizeof(v));
                        (void)write_file(mem, "memory.memsw.limit_in_bytes",
                                         res->memory_swap < 0 ? "-1" : v);
                }
        }
        if (res->cpu_shares) {
                if (v2) {
                        snprintf(v, sizeof(v), "%" PRIu64,
                                 agent_cgroup_shares_to_weight(res->cpu_shares));
                        r = apply_one(cg->v2, "cpu.weight", v, err);
                } else if (cpu) {
                        snprintf(v, sizeof(v), "%" PRIu64, res->cpu_shares);
                        r = apply_one(cpu, "cpu.shares", v, err);
                }
                if (r < 0)
                        return r;
        }
        if (res->cpu_quota != 0 || res->cpu_period != 0) {
                if (agent_cgroup_cpu_max(res->cpu_quota, res->cpu_period, v, sizeof(v)) < 0)
                        return cc_error_set(err, EINVAL, "cgroup: invalid cpu quota/period");
                if (v2) {
                        r = apply_one(cg->v2, "cpu.max", v, err);
                } else if (cpu) {
                        char q[32], p[32];
                        sscanf(v, "%31s %31s", q, p);
                        r = apply_one(cpu, "cpu.cfs_period_us", p, err);
                        if (r >= 0)
                                r = apply_one(cpu, "cpu.cfs_quota_us", strcmp(q, "max") ? q : "-1",
                                              err);
                }
                if (r < 0)
                        return r;
        }
        if (res->pids_limit != 0) {
                agent_cgroup_limit_str(res->pids_limit, v, sizeof(v));
                if (v2)
                        r = apply_one(cg->v2, "pids.max", v, err);
                else if (pids)
                        r = apply_one(pids, "pids.max", v, err);
                if (r < 0)
                        return r;
        }
        if (v2 && !cc_isempty(res->cpuset_cpus) &&
            (r = apply_one(cg->v2, "cpuset.cpus", res->cpuset_cpus, err)) < 0)
                return r;
        if (v2 && !cc_isempty(res->cpuset_mems) &&
            (r = apply_one(cg->v2, "cpuset.mems", res->cpuset_mems, err)) < 0)
                return r;
        return 0;
}

int agent_cgroup_enter_self(const struct agent_cgroup *cg)
{
        for (char *const *p = cg->procs; *p; p++) {
                int fd = open(*p, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                ssize_t n = write(fd, "0", 1);
                int e = errno;
                close(fd);
                if (n != 1)
                        return n < 0 ? -e : -EIO;
        }
        return 0;
}

int agent_cgroup_freeze(struct agent_cgroup *cg, bool frozen, struct cc_error **err)
{
        int r = apply_one(cg->v2, "cgroup.freeze", frozen ? "1" : "0", err);
        if (r < 0)
                return r;
        /* Freezing is asynchronous: wait (up to 2 s) until cgroup.events says it is done, so a
         * caller that reads the state right after sees it. */
        for (int i = 0; i < 200; i++) {
                uint64_t f = 0;
                if (read_keyed(cg->v2, "cgroup.events", "frozen", &f) < 0 || f == (frozen ? 1 : 0))
                        return 0;
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        return cc_error_set(err, ETIMEDOUT, "cgroup: %s did not %s in time", cg->v2,
                            frozen ? "freeze" : "thaw");
}

int agent_cgroup_oom_kills(struct agent_cgroup *cg, uint64_t *ret)
{
        if (cg->v1[AGENT_CG_V1_MEMORY])
                return read_keyed(cg->v1[AGENT_CG_V1_MEMORY], "memory.oom_control", "oom_kill",
                                  ret);
        return read_keyed(cg->v2, "memory.events", "oom_kill", ret);
}

const char *agent_cgroup_events_path(struct agent_cgroup *cg)
{
        return cgs.mode == AGENT_CGROUP_V2 ? cg->v2 : NULL;
}

int agent_cgroup_stats(struct agent_cgroup *cg, struct agent_cgroup_stats *st)
{
        *st = (struct agent_cgroup_stats){0};
        uint64_t v;
        /* cpu.stat exists in every v2 cgroup, controller or not. */
        if (read_keyed(cg->v2, "cpu.stat", "usage_usec", &v) == 0)
                st->cpu_usage_ns = v * 1000;
        if (read_keyed(cg->v2, "cpu.stat", "user_usec", &v) == 0)
                st->cpu_user_ns = v * 1000;
        if (read_keyed(cg->v2, "cpu.stat", "system_usec", &v) == 0)
                st->cpu_system_ns = v * 1000;
        (void)read_keyed(cg->v2, "cpu.stat", "nr_periods", &st->cpu_periods);
        (void)read_keyed(cg->v2, "cpu.stat", "nr_throttled", &st->cpu_throttled_periods);
        if (read_keyed(cg->v2, "cpu.stat", "throttled_usec", &v) == 0)
                st->cpu_throttled_ns = v * 1000;
        const char *mem = cg->v1[AGENT_CG_V1_MEMORY];
        if (mem) {
                (void)read_u64(mem, "memory.usage_in_bytes", &st->mem_usage);
                (void)read_u64(mem, "memory.max_usage_in_bytes", &st->mem_max_usage);
                (void)read_u64(mem, "memory.limit_in_bytes", &st->mem_limit);
                (void)read_u64(mem, "memory.failcnt", &st->mem_failcnt);
                (void)read_keyed(mem, "memory.stat", "cache", &st->mem_cache);
                (void)read_keyed(mem, "memory.stat", "rss", &st->mem_rss);
        } else {
                (void)read_u64(cg->v2, "memory.current", &st->mem_usage);
                (void)read_u64(cg->v2, "memory.peak", &st->mem_max_usage);
                (void)read_u64(cg->v2, "memory.max", &st->mem_limit);
                (void)read_keyed(cg->v2, "memory.events", "max", &st->mem_failcnt);
                (void)read_keyed(cg->v2, "memory.stat", "file", &st->mem_cache);
                (void)read_keyed(cg->v2, "memory.stat", "anon", &st->mem_rss);
                (void)read_u64(cg->v2, "memory.swap.current", &st->mem_swap_usage);
        }
        (void)agent_cgroup_oom_kills(cg, &st->oom_kills);
        const char *pids = cg->v1[AGENT_CG_V1_PIDS] ? cg->v1[AGENT_CG_V1_PIDS] : cg->v2;
        (void)read_u64(pids, "pids.current", &st->pids_current);
        (void)read_u64(pids, "pids.max", &st->pids_limit);
        return 0;
}

static int kill_procs(const char *dir)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        int n = 0;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
                if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
                        n++;
        return n;
}

int agent_cgroup_kill(struct agent_cgroup *cg)
{
        /* Thaw first: a frozen task cannot die until it is thawed. */
        (void)write_file(cg->v2, "cgroup.freeze", "0");
        if (write_file(cg->v2, "cgroup.kill", "1") == 0)
                return 0;
        int r = kill_procs(cg->v2);
        return r < 0 ? r : 0;
}

static int rmdir_retry(const char *dir)
{
        /* rmdir fails with EBUSY until the last task has been released by the kernel. */
        for (int i = 0; i < 300; i++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        return -errno;
                if (i % 20 == 0)
                        (void)kill_procs(dir);
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        return -EBUSY;
}

int agent_cgroup_destroy(struct agent_cgroup *cg)
{
        if (!cg)
                return 0;
        int r = 0, k;
        (void)agent_cgroup_kill(cg);
        for (int i = 0; i < _AGENT_CG_V1_MAX; i++)
                if (cg->v1[i] && (k = rmdir_retry(cg->v1[i])) < 0 && r == 0)
                        r = k;
        if (cg->v2 && (k = rmdir_retry(cg->v2)) < 0 && r == 0)
                r = k;
        if (r < 0)
                cc_log_warn("cgroup: cannot remove %s: %s", cg->v2, strerror(-r));
        agent_cgroup_free(cg);
        return r;
}

void agent_cgroup_remove_root(const char *root)
{
        char path[PATH_MAX];
        if (cgs.mode == AGENT_CGROUP_NONE || agent_validate_rel_path(root, "cgroup root", NULL) < 0)
                return;
        while (*root == '/')
                root++;
        if (!*root)
                return;
        snprintf(path, sizeof(path), "%s/%s", cgs.v2_base, root);
        (void)rmdir(path);
        for (int i = 0; i < _AGENT_CG_V1_MAX; i++)
                if (cgs.v1_base[i][0]) {
                        snprintf(path, sizeof(path), "%s/%s", cgs.v1_base[i], root);
                        (void)rmdir(path);
                }
}
