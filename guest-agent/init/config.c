/*
 * Agent configuration: defaults, kernel command line (agent.* keys, as Kata's agent reads
 * them, plus agent.image_insecure) and command-line flags, in that order of precedence (flags win).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "guest-agent/agent.h"

void agent_config_done(struct agent_config *cfg)
{
        free(cfg->server_addr);
        free(cfg->policy_path);
        free(cfg->containers_dir);
        free(cfg->cgroup_root);
        free(cfg->log_level);
        free(cfg->log_port);
        free(cfg->image_insecure);
        free(cfg->initdata_digest);
        free(cfg->trusted_storage);
        *cfg = (struct agent_config){0};
}

static int set(char **field, const char *value)
{
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        free(*field);
        *field = v;
        return 0;
}

/* Parses "agent.key=value" words of the kernel command line (no quoting: values are plain). */
static int apply_cmdline(struct agent_config *cfg, const char *cmdline)
{
        static const struct {
                const char *key;
                size_t off;
        } keys[] = {
                {"agent.server_addr=", offsetof(struct agent_config, server_addr)},
                {"agent.log=", offsetof(struct agent_config, log_level)},
                {"agent.policy=", offsetof(struct agent_config, policy_path)},
                {"agent.containers_dir=", offsetof(struct agent_config, containers_dir)},
                {"agent.cgroup_root=", offsetof(struct agent_config, cgroup_root)},
                {"agent.log_port=", offsetof(struct agent_config, log_port)},
                /* Development images: registries reached over plain HTTP (e.g. the host's
                 * registry as 10.0.2.2:PORT under QEMU user networking). The kernel command
                 * line is measured together with the kernel in TEE launches (SEV kernel-hashes,
                 * TDX RTMR), so a host that changes it changes the measurement the verifier
                 * checks: the choice does not pass to an unmeasured host. */
                {"agent.image_insecure=", offsetof(struct agent_config, image_insecure)},
                /* Set by the shim from the pod's initdata; measured with the kernel in a TEE. */
                {"agent.initdata_digest=", offsetof(struct agent_config, initdata_digest)},
                /* Set by the shim when the pod has a scratch disk (trusted-storage.c). */
                {"agent.trusted_storage=", offsetof(struct agent_config, trusted_storage)},
        };
        _cleanup_free_ char *copy = strdup(cmdline);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                /* Only ever turns the TEE defaults on (tee.c): no word of the host's turns
                 * them off. */
                if (strcmp(w, "agent.tee_defaults=1") == 0)
                        cfg->tee_defaults = true;
                /* Kata's words: the console, and its vsock port (debug-console.c). */
                if (strcmp(w, "agent.debug_console") == 0)
                        cfg->debug_console = true;
                if (strncmp(w, "agent.debug_console_vport=", 26) == 0) {
                        char *end;
                        unsigned long v = strtoul(w + 26, &end, 10);
                        cfg->debug_console_vport = !*end && v <= 0xffffffffUL ? (unsigned)v : 0;
                }
                for (size_t i = 0; i < CC_ARRAY_SIZE(keys); i++) {
                        size_t n = strlen(keys[i].key);
                        if (strncmp(w, keys[i].key, n) != 0)
                                continue;
                        int r = set((char **)((char *)cfg + keys[i].off), w + n);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int agent_config_parse(struct agent_config *cfg, const char *cmdline, int argc, char **argv,
                       struct cc_error **err)
{
        int r;
        if ((r = set(&cfg->server_addr, AGENT_DEFAULT_SERVER_ADDR)) < 0 ||
            (r = set(&cfg->policy_path, AGENT_DEFAULT_POLICY)) < 0 ||
            (r = set(&cfg->containers_dir, AGENT_DEFAULT_CONTAINERS_DIR)) < 0 ||
            (r = set(&cfg->cgroup_root, "cc-agent")) < 0 || (r = set(&cfg->log_level, "info")) < 0)
                return r;
        if (cmdline && (r = apply_cmdline(cfg, cmdline)) < 0)
                return r;
        static const struct option opts[] = {
                {"server-addr", required_argument, NULL, 'a'},
                {"policy", required_argument, NULL, 'p'},
                {"containers-dir", required_argument, NULL, 'c'},
                {"cgroup-root", required_argument, NULL, 'g'},
                {"log-level", required_argument, NULL, 'l'},
                {"log-port", required_argument, NULL, 'L'},
                {"tee-defaults", no_argument, NULL, 'T'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        optind = 1;
        int c;
        while (argv && (c = getopt_long(argc, argv, "a:p:c:g:l:L:Th", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        r = set(&cfg->server_addr, optarg);
                        break;
                case 'p':
                        r = set(&cfg->policy_path, optarg);
                        break;
                case 'c':
                        r = set(&cfg->containers_dir, optarg);
                        break;
                case 'g':
                        r = set(&cfg->cgroup_root, optarg);
                        break;
                case 'l':
                        r = set(&cfg->log_level, optarg);
                        break;
                case 'L':
                        r = set(&cfg->log_port, optarg);
                        break;
                case 'T':
                        cfg->tee_defaults = true;
                        break;
                case 'h':
                        return cc_error_set(
                                err, EINVAL,
                                "usage: cc-agent [--server-addr vsock://-1:1024|"
                                "unix://PATH|serial://agent.channel.0] [--policy "
                                "FILE] [--containers-dir DIR] [--cgroup-root NAME] "
                                "[--log-level LEVEL] [--log-port NAME] [--tee-defaults]");
                default:
                        return cc_error_set(err, EINVAL, "unknown option (see --help)");
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return cc_error_set(err, EINVAL, "unexpected argument '%s'", argv[optind]);
        if (cfg->containers_dir[0] != '/')
                return cc_error_set(err, EINVAL, "containers dir must be absolute");
        return 0;
}
