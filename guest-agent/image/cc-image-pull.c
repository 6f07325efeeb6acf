/*
 * cc-image-pull: pulls and unpacks an image with libccimage on the host, for tests and
 * benchmarks (in production the agent calls img_pull() inside the VM).
 *
 *   cc-image-pull [options] REF DIR
 *
 * DIR receives store/ (the layer store, unless --store), config.json (the image config as
 * pulled), layers (layer directories, bottom to top, one per line) and, with --mount, an
 * overlay rootfs at DIR/rootfs (upper DIR/upper, work DIR/work).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "guest-agent/image/image.h"

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;

static void progress(void *userdata, unsigned layer, unsigned n, const char *digest, uint64_t done,
                     uint64_t total)
{
        pthread_mutex_lock(&progress_lock);
        fprintf(stderr, "\r\033[Klayer %u/%u %.19s %6.1f/%.1f MiB", layer + 1, n, digest,
                (double)done / 1048576.0, (double)total / 1048576.0);
        if (done == total)
                fputc('\n', stderr);
        pthread_mutex_unlock(&progress_lock);
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: cc-image-pull [options] REF DIR\n"
                "  --insecure             plain HTTP to the registry\n"
                "  --key FILE             private key (PEM) for encrypted layers (repeatable)\n"
                "  --keys-json FILE       offline_fs KEK file {\"repo/type/tag\":\"base64\"}\n"
                "  --creds USER:PASS      registry credentials\n"
                "  --authfile FILE        containers-auth.json\n"
                "  --ca FILE              extra CA bundle\n"
                "  --platform OS/ARCH[/V] platform to pick from an index\n"
                "  --store DIR            layer store (default DIR/store)\n"
                "  --jobs N               layers in flight (default min(3, CPUs), at least 2)\n"
                "  --retries N            retries per request (default 5)\n"
                "  --stall-timeout MS     abort a transfer idle this long (default 30000)\n"
                "  --mirror HOST[:PORT]   registry mirror tried first\n"
                "  --policy FILE          verify signatures with this containers-policy.json\n"
                "  --registries-d DIR     containers-registries.d directory (lookaside, sigstore)\n"
                "  --max-manifest-bytes N --max-layer-bytes N --max-image-bytes N --max-inodes N\n"
                "  --no-owners            do not chown to the tar's uid/gid\n"
                "  --mount                mount an overlay rootfs at DIR/rootfs\n"
                "  --debug                debug logging\n");
}

static int write_file(const char *dir, const char *name, const char *data, size_t len)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        _cleanup_fclose_ FILE *f = fopen(p, "we");
        if (!f || fwrite(data, 1, len, f) != len)
                return -errno;
        return 0;
}

/* The command line, parsed. */
struct cli {
        struct img_pull_opts o;
        const char *keys[33];
        size_t n_keys;
        const char *keys_json;
        const char *store;
        bool do_mount;
        char *platform; /* owned: o.os, o.arch and o.variant point into it */
};

/* Options that set one field: a string, an unsigned or a 64-bit size (0x... accepted). */
enum opt_kind { OPT_STR, OPT_UINT, OPT_U64 };

struct opt_field {
        const char *name;
        enum opt_kind kind;
        size_t off; /* in struct cli */
};

#define OPT_FIELD(name, kind, field)                    \
        {                                               \
                name, kind, offsetof(struct cli, field) \
        }

static const struct opt_field opt_fields[] = {
        OPT_FIELD("keys-json", OPT_STR, keys_json),
        OPT_FIELD("creds", OPT_STR, o.creds),
        OPT_FIELD("authfile", OPT_STR, o.auth_file),
        OPT_FIELD("ca", OPT_STR, o.ca_file),
        OPT_FIELD("store", OPT_STR, store),
        OPT_FIELD("jobs", OPT_UINT, o.max_parallel_layers),
        OPT_FIELD("retries", OPT_UINT, o.retries),
        OPT_FIELD("stall-timeout", OPT_UINT, o.stall_timeout_ms),
        OPT_FIELD("max-manifest-bytes", OPT_U64, o.max_manifest_bytes),
        OPT_FIELD("max-layer-bytes", OPT_U64, o.max_layer_bytes),
        OPT_FIELD("max-image-bytes", OPT_U64, o.max_image_bytes),
        OPT_FIELD("mirror", OPT_STR, o.mirror),
        OPT_FIELD("max-inodes", OPT_U64, o.max_inodes),
        OPT_FIELD("policy", OPT_STR, o.policy_file),
        OPT_FIELD("registries-d", OPT_STR, o.registries_d),
        OPT_FIELD("registries.d", OPT_STR, o.registries_d),
};

/* getopt_long's value for opt_fields[i] is O_FIELD + i; the other long options have their
 * own values. */
enum { O_PLATFORM = 256, O_NO_OWNERS, O_MOUNT, O_DEBUG, O_FIELD = 512 };

static const struct option other_opts[] = {
        {"insecure", no_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},
        {"platform", required_argument, NULL, O_PLATFORM},
        {"no-owners", no_argument, NULL, O_NO_OWNERS},
        {"mount", no_argument, NULL, O_MOUNT},
        {"debug", no_argument, NULL, O_DEBUG},
        {"help", no_argument, NULL, 'h'},
};

/* The long options of getopt_long: other_opts, then one per opt_fields entry. */
static void long_options(struct option *lo)
{
        size_t n = 0;
        for (size_t i = 0; i < CC_ARRAY_SIZE(other_opts); i++)
                lo[n++] = other_opts[i];
        for (size_t i = 0; i < CC_ARRAY_SIZE(opt_fields); i++)
                lo[n++] = (struct option){opt_fields[i].name, required_argument, NULL,
                                          O_FIELD + (int)i};
        lo[n] = (struct option){0};
}

static void cli_done(struct cli *cli)
{
        free(cli->platform);
}

/* One option into cli: 0, or the exit status (1 out of memory, 2 usage). */
static int parse_option(struct cli *cli, int c, const char *arg)
{
        struct img_pull_opts *o = &cli->o;
        if (c >= O_FIELD && (size_t)(c - O_FIELD) < CC_ARRAY_SIZE(opt_fields)) {
                const struct opt_field *f = &opt_fields[c - O_FIELD];
                char *field = (char *)cli + f->off;
                if (f->kind == OPT_STR)
                        *(const char **)field = arg;
                else if (f->kind == OPT_UINT)
                        *(unsigned *)field = (unsigned)atoi(arg);
                else
                        *(uint64_t *)field = strtoull(arg, NULL, 0);
                return 0;
        }
        switch (c) {
        case 'i':
                o->flags |= IMG_PULL_ALL_INSECURE;
                break;
        case 'k':
                if (cli->n_keys + 1 >= CC_ARRAY_SIZE(cli->keys)) {
                        fprintf(stderr, "cc-image-pull: too many keys\n");
                        return 2;
                }
                cli->keys[cli->n_keys++] = arg;
                break;
        case O_PLATFORM:
                free(cli->platform);
                cli->platform = strdup(arg);
                if (!cli->platform)
                        return 1;
                o->os = strtok(cli->platform, "/");
                o->arch = strtok(NULL, "/");
                o->variant = strtok(NULL, "/");
                break;
        case O_NO_OWNERS:
                o->flags &= ~(unsigned)IMG_PULL_KEEP_OWNERS;
                break;
        case O_MOUNT:
                cli->do_mount = true;
                break;
        case O_DEBUG:
                cc_log_set_level(CC_LOG_DEBUG);
                break;
        default:
                usage(stderr);
                return 2;
        }
        return 0;
}

/* DIR/config.json and DIR/layers (one layer directory a line, bottom to top). */
static int write_outputs(const char *dir, const struct img_pulled *p)
{
        size_t cap = 1;
        for (size_t i = 0; i < p->n_layers; i++)
                cap += strlen(p->layer_dirs[i]) + 1;
        _cleanup_free_ char *list = calloc(1, cap);
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_layers; i++) {
                strcat(list, p->layer_dirs[i]);
                strcat(list, "\n");
        }
        int r = write_file(dir, "config.json", p->config_json, p->config_json_len);
        return r < 0 ? r : write_file(dir, "layers", list, strlen(list));
}

static int mount_rootfs(const char *dir, const struct img_pulled *p, unsigned flags,
                        struct cc_error **err)
{
        _cleanup_free_ char *up = NULL, *wk = NULL, *rf = NULL;
        if (asprintf(&up, "%s/upper", dir) < 0 || asprintf(&wk, "%s/work", dir) < 0 ||
            asprintf(&rf, "%s/rootfs", dir) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        return img_rootfs_mount(p, up, wk, rf, flags, err);
}

static void report(const struct img_pulled *p, const struct img_pull_opts *o, double secs)
{
        printf("pulled %s manifest %s, %zu layers, %.1f MiB fetched in %.3f s\n", p->ref,
               p->manifest_digest, p->n_layers, (double)p->bytes_fetched / 1048576.0, secs);
        printf("layer time (s, summed over threads): network %.3f digest %.3f decrypt %.3f "
               "inflate %.3f extract %.3f\n",
               (double)p->ns.network / 1e9, (double)p->ns.digest / 1e9, (double)p->ns.decrypt / 1e9,
               (double)p->ns.inflate / 1e9, (double)p->ns.extract / 1e9);
        if (o->policy_file)
                printf("signature check: %.3f ms\n", (double)p->ns.verify / 1e6);
}

int main(int argc, char **argv)
{
        _cleanup_(cli_done) struct cli cli = {
                .o = {.flags = geteuid() == 0 ? IMG_PULL_KEEP_OWNERS : 0}};
        struct option lo[CC_ARRAY_SIZE(other_opts) + CC_ARRAY_SIZE(opt_fields) + 1];
        long_options(lo);
        int c;
        while ((c = getopt_long(argc, argv, "ik:h", lo, NULL)) != -1) {
                if (c == 'h') {
                        usage(stdout);
                        return 0;
                }
                int st = parse_option(&cli, c, optarg);
                if (st)
                        return st;
        }
        struct img_pull_opts *o = &cli.o;
        if (argc - optind != 2) {
                usage(stderr);
                return 2;
        }
        const char *ref = argv[optind];
        char dir[PATH_MAX];
        if (!realpath(argv[optind + 1], dir)) {
                fprintf(stderr, "cc-image-pull: %s: %m\n", argv[optind + 1]);
                return 1;
        }
        _cleanup_free_ char *def_store = NULL;
        char store_abs[PATH_MAX];
        if (!cli.store) {
                if (asprintf(&def_store, "%s/store", dir) < 0)
                        return 1;
                cli.store = def_store;
        } else if (realpath(cli.store, store_abs)) {
                cli.store = store_abs;
        }
        o->store_dir = cli.store;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(img_key_broker_freep) struct img_key_broker *kb = NULL;
        if (cli.n_keys || cli.keys_json) {
                if (img_key_broker_offline_fs(cli.keys, cli.keys_json, &kb, &err) < 0) {
                        fprintf(stderr, "cc-image-pull: %s\n", cc_error_message(err));
                        return 1;
                }
                o->keys = kb;
        }
        if (isatty(STDERR_FILENO))
                o->progress = progress;

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        _cleanup_(img_pulled_freep) struct img_pulled *p = NULL;
        if (img_pull(o, ref, &p, &err) < 0) {
                fprintf(stderr, "cc-image-pull: %s: %s\n", ref, cc_error_message(err));
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (write_outputs(dir, p) < 0) {
                fprintf(stderr, "cc-image-pull: write into %s: %m\n", dir);
                return 1;
        }
        if (cli.do_mount && mount_rootfs(dir, p, o->flags, &err) < 0) {
                fprintf(stderr, "cc-image-pull: %s\n", cc_error_message(err));
                return 1;
        }
        report(p, o, secs);
        return 0;
}
