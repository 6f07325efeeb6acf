/*
 * The pod owner's initdata on the host side (../shared/reference/attestation-kbs.md section 7):
 * the pod's io.katacontainers.config.hypervisor.cc_init_data annotation (where the handler's
 * enable_annotations lists cc_init_data) or the configuration's default `initdata` file is
 * validated (version, algorithm, size), its digest is taken over the exact TOML bytes (one
 * function with the guest: guest-agent/attest/initdata.c), and it is bound to the launch:
 *
 *   TDX      MRCONFIGID = the digest truncated or zero-padded to 48 bytes (QEMU's tdx-guest
 *            mrconfigid, libvirt's <mrConfigId>); Cloud Hypervisor's API has no such field, so
 *            a clh TDX pod with initdata is refused rather than started unbound;
 *   SEV-SNP  HOST_DATA = the digest to 32 bytes (sev-snp-guest host-data, libvirt <hostData>);
 *   SEV, SEV-ES  no launch field: refused;
 *   all      agent.initdata_digest=<alg>:<hex> on the kernel command line, which the TEE launch
 *            measures with the kernel, and which the guest checks the disk against.
 *
 * The guest gets the initdata on a read-only disk in Kata's format (<run_dir>/initdata.img,
 * removed with the run dir). The annotation is the pod author's input: errors name what is
 * wrong with it but never quote its content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/attest/kbc.h"
#include "shim/shim.h"

#define INITDATA_ANNOTATION "io.katacontainers.config.hypervisor.cc_init_data"

void shim_initdata_done(struct shim_initdata *d)
{
        free(d->kparam);
        free(d->mrconfigid);
        free(d->host_data);
        free(d->disk_path);
        *d = (struct shim_initdata){0};
}

static char *field_b64(const struct kbc_initdata *id, size_t n)
{
        uint8_t f[64];
        kbc_regularize(id->digest, id->digest_len, f, n);
        return cc_b64_encode(f, n, false);
}

int shim_initdata_prepare(const struct shim_config *c, const char *run_dir,
                          struct shim_initdata *out, struct cc_error **err)
{
        const char *cfgname = c->path ? c->path : "the built-in configuration";
        const char *section = c->section ? c->section : "hypervisor.qemu";
        _cleanup_(kbc_initdata_freep) struct kbc_initdata *id = NULL;
        _cleanup_free_ char *annotation = NULL;
        const char *source = NULL;
        int r;
        if (c->initdata_annotation) {
                source = "the pod's " INITDATA_ANNOTATION;
                _cleanup_error_ struct cc_error *e = NULL;
                if ((r = kbc_initdata_from_annotation(c->initdata_annotation, &id, &e)) < 0)
                        return cc_error_set(err, -r, "annotation %s: %s", INITDATA_ANNOTATION,
                                            cc_error_message(e));
                if (!(annotation = strdup(c->initdata_annotation)))
                        return -ENOMEM;
        } else if (c->initdata_file) {
                source = c->initdata_file;
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                if ((r = cc_read_file(c->initdata_file, 256 << 10, &text, &len, err)) < 0)
                        return cc_error_wrap(err, -r, "%s: [%s] initdata", cfgname, section);
                if ((r = kbc_initdata_parse(text, len, &id, err)) < 0)
                        return cc_error_wrap(err, -r, "%s: [%s] initdata %s", cfgname, section,
                                             c->initdata_file);
                if ((r = kbc_initdata_annotation_encode(text, len, &annotation)) < 0)
                        return cc_error_set(err, -r, "initdata %s: gzip: %s", c->initdata_file,
                                            strerror(-r));
        } else {
                if (c->initdata_required)
                        return cc_error_set(err, EINVAL,
                                            "%s: [%s] initdata_required = true, and the pod has no "
                                            "initdata (annotation %s, which enable_annotations "
                                            "must list as cc_init_data) and the configuration "
                                            "names no default (initdata = \"FILE\")",
                                            cfgname, section, INITDATA_ANNOTATION);
                return 0;
        }
        /* Bound to the launch, or refused. */
        switch (c->tee) {
        case HV_TEE_TDX:
                if (strcmp(c->backend, "clh") == 0)
                        return cc_error_set(
                                err, EOPNOTSUPP,
                                "initdata from %s cannot be bound to a Cloud "
                                "Hypervisor TDX launch (its API has no MRCONFIGID); use "
                                "the QEMU TDX handler",
                                source);
                if (!(out->mrconfigid = field_b64(id, 48)))
                        return -ENOMEM;
                break;
        case HV_TEE_SEV_SNP:
                if (!(out->host_data = field_b64(id, 32)))
                        return -ENOMEM;
                break;
        case HV_TEE_SEV:
        case HV_TEE_SEV_ES:
                return cc_error_set(err, EOPNOTSUPP,
                                    "initdata from %s cannot be bound to a %s launch (no "
                                    "HOST_DATA before SEV-SNP)",
                                    source, hv_tee_to_string(c->tee));
        default:
                break;
        }
        char hex[2 * 64 + 1];
        for (size_t i = 0; i < id->digest_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", id->digest[i]);
        if (asprintf(&out->kparam, "agent.initdata_digest=%s:%s", kbc_hash_name(id->alg), hex) < 0)
                return -ENOMEM;
        _cleanup_free_ uint8_t *disk = NULL;
        size_t dl = 0;
        if ((r = kbc_initdata_disk_encode(annotation, &disk, &dl, err)) < 0)
                return r;
        if (asprintf(&out->disk_path, "%s/initdata.img", run_dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd =
                open(out->disk_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || cc_write_all(fd, disk, dl) < 0)
                return cc_error_set(err, errno, "%s: %m", out->disk_path);
        cc_log_info("initdata from %s: %s:%s, %zu bytes, bound as %s", source,
                    kbc_hash_name(id->alg), hex, id->toml_len,
                    out->mrconfigid  ? "TDX MRCONFIGID"
                    : out->host_data ? "SNP HOST_DATA"
                                     : "the kernel command line only (no TEE)");
        return 0;
}
