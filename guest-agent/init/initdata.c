/*
 * The pod's initdata in the guest (attestation-kbs.md 7.2-7.4): the shim attaches it as a small
 * read-only disk in Kata's format; the agent finds it by its magic at boot, checks its digest,
 * and leaves the TOML (and its aa.toml/cdh.toml) under /run/confidential-containers/initdata/
 * for the pull helper's KBS client, which sends the same bytes with every attestation.
 *
 * The digest is checked against what the launch bound: in a TEE, SNP HOST_DATA or TDX
 * MRCONFIGID (read from the hardware, so the host cannot lie about it); and the digest the
 * shim put on the kernel command line (agent.initdata_digest=<alg>:<hex>), which is measured
 * with the kernel in a TEE launch and is the only reference without one. A disk that does not
 * match stops the agent with both digests named: the host changed the initdata after launch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/attest/kbc.h"

#define DISK_MAX (1u << 20) /* an initdata disk is a few KiB; never read more than this */

static void hexstr(const uint8_t *p, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
        out[2 * n] = '\0';
}

/* The first block device under dev_dir (vd*, sd*) that starts with the magic: its bytes. */
static int find_disk(const char *dev_dir, uint8_t **ret, size_t *ret_len, char *name,
                     size_t name_len)
{
        _cleanup_closedir_ DIR *d = opendir(dev_dir);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "vd", 2) && strncmp(de->d_name, "sd", 2))
                        continue;
                /* Whole disks only: vda, not vda1. */
                size_t l = strlen(de->d_name);
                if (l < 3 || (de->d_name[l - 1] >= '0' && de->d_name[l - 1] <= '9'))
                        continue;
                char path[300];
                snprintf(path, sizeof(path), "%s/%s", dev_dir, de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        continue;
                struct stat st;
                if (fstat(fd, &st) < 0 || (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)))
                        continue;
                char magic[8];
                if (pread(fd, magic, 8, 0) != 8 || memcmp(magic, "initdata", 8))
                        continue;
                _cleanup_free_ uint8_t *buf = malloc(DISK_MAX);
                if (!buf)
                        return -ENOMEM;
                ssize_t n = pread(fd, buf, DISK_MAX, 0);
                if (n < 16)
                        return n < 0 ? -errno : -EIO;
                snprintf(name, name_len, "%s", path);
                *ret = TAKE_PTR(buf);
                *ret_len = (size_t)n;
                return 0;
        }
        return -ENOENT;
}

/* "sha384:<hex>" from the kernel command line against the disk's digest. */
static int check_cmdline_digest(const struct kbc_initdata *id, const char *want,
                                struct cc_error **err)
{
        char have[2 * 64 + 1];
        hexstr(id->digest, id->digest_len, have);
        const char *colon = strchr(want, ':');
        if (!colon || (size_t)(colon - want) != strlen(kbc_hash_name(id->alg)) ||
            strncmp(want, kbc_hash_name(id->alg), (size_t)(colon - want)) ||
            strcasecmp(colon + 1, have))
                return cc_error_set(err, EBADMSG,
                                    "initdata was changed after launch: the disk's digest is "
                                    "%s:%s, the launch bound %.140s",
                                    kbc_hash_name(id->alg), have, want);
        return 0;
}

/* The TEE's launch field (HOST_DATA, MRCONFIGID) against the digest, regularized. */
static int check_tee_digest(const struct kbc_initdata *id, enum kbc_tee tee, struct cc_error **err)
{
        uint8_t field[64];
        size_t fl = 0;
        int r = kbc_attester_init_data_field(tee, NULL, field, &fl, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "initdata: reading the %s launch field",
                                     kbc_tee_name(tee));
        uint8_t want[64];
        kbc_regularize(id->digest, id->digest_len, want, fl);
        if (memcmp(want, field, fl)) {
                char a[129], b[129];
                hexstr(want, fl, a);
                hexstr(field, fl, b);
                return cc_error_set(err, EBADMSG,
                                    "initdata was changed after launch: its digest gives %s, the "
                                    "%s launch bound %s (%s)",
                                    a, kbc_tee_name(tee), b,
                                    tee == KBC_TEE_SNP ? "HOST_DATA" : "MRCONFIGID");
        }
        return 0;
}

static int write_file(const char *dir, const char *name, const char *data, size_t len,
                      struct cc_error **err)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || cc_write_all(fd, data, len) < 0)
                return cc_error_set(err, errno, "%s: %m", path);
        return 0;
}

int agent_initdata_load(const char *dev_dir, const char *cmdline_digest, const char *out_dir,
                        bool *found, bool *bound, struct cc_error **err)
{
        *found = *bound = false;
        _cleanup_free_ uint8_t *disk = NULL;
        size_t len = 0;
        char name[300] = "";
        int r = find_disk(dev_dir, &disk, &len, name, sizeof(name));
        if (r == -ENOENT) {
                if (!cc_isempty(cmdline_digest))
                        return cc_error_set(err, ENOENT,
                                            "the launch bound initdata %.140s but no initdata "
                                            "disk is attached",
                                            cmdline_digest);
                return 0;
        }
        if (r < 0)
                return cc_error_set(err, -r, "initdata: scanning %s: %s", dev_dir, strerror(-r));
        _cleanup_(kbc_initdata_freep) struct kbc_initdata *id = NULL;
        if ((r = kbc_initdata_from_disk(disk, len, &id, err)) < 0)
                return cc_error_wrap(err, -r, "initdata disk %s", name);
        enum kbc_tee tee = kbc_attester_detect(NULL);
        if (tee != KBC_TEE_SAMPLE && (r = check_tee_digest(id, tee, err)) < 0)
                return r;
        if (!cc_isempty(cmdline_digest) && (r = check_cmdline_digest(id, cmdline_digest, err)) < 0)
                return r;
        if (tee == KBC_TEE_SAMPLE && cc_isempty(cmdline_digest))
                cc_log_warn("initdata on %s: no TEE and no launch digest to check it against",
                            name);
        if ((r = cc_mkdir_p(out_dir, 0700)) < 0)
                return cc_error_set(err, -r, "mkdir %s: %s", out_dir, strerror(-r));
        if ((r = write_file(out_dir, "initdata.toml", id->toml, id->toml_len, err)) < 0)
                return r;
        static const char *const known[] = {"aa.toml", "cdh.toml", "policy.json"};
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                const char *v = kbc_initdata_get(id, known[i]);
                if (v && (r = write_file(out_dir, known[i], v, strlen(v), err)) < 0)
                        return r;
        }
        /* Keys this agent does not apply are named once, never silently dropped. */
        json_object_object_foreach(id->data, k, v)
        {
                (void)v;
                bool used = false;
                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        used |= !strcmp(k, known[i]);
                if (!strcmp(k, "policy.rego"))
                        cc_log_warn("initdata: policy.rego (Rego) is not supported by this agent: "
                                    "give the agent policy as policy.json");
                else if (!used)
                        cc_log_warn("initdata: key '%.64s' is not used by this agent", k);
        }
        _cleanup_free_ char *ignored = NULL;
        if ((r = kbc_initdata_ignored(id, &ignored, err)) < 0)
                return r;
        if (ignored)
                cc_log_warn("initdata: settings this agent does not apply: %.1024s", ignored);
        char hex[129];
        hexstr(id->digest, id->digest_len, hex);
        cc_log_info("initdata from %s: %s:%s (%zu bytes) checked against %s", name,
                    kbc_hash_name(id->alg), hex, id->toml_len,
                    tee != KBC_TEE_SAMPLE        ? kbc_tee_name(tee)
                    : cc_isempty(cmdline_digest) ? "nothing"
                                                 : "the kernel command line");
        *found = true;
        *bound = tee != KBC_TEE_SAMPLE || !cc_isempty(cmdline_digest);
        return 0;
}
