/*
 * Attesters: which TEE this guest runs in, and evidence from its device (attestation-kbs.md
 * 4.1, 4.2, 8.1 step 1).
 *
 *   SNP  configfs-tsm (provider sev_guest: outblob = the report, auxblob = the certificate
 *        table) where the kernel has it, else /dev/sev-guest's SNP_GET_EXT_REPORT, falling
 *        back to SNP_GET_REPORT when the host supplies no certificates;
 *   TDX  configfs-tsm (provider tdx_guest: outblob = the TD quote; Linux >= 6.7), the path
 *        guest-components keeps; else, with /dev/tdx_guest (Linux >= 6.2), the TDREPORT from
 *        its ioctl turned into a quote by the host's QGS over vsock (qgs.c);
 *   sample  no TEE: development only, and refused by the client when a TEE device exists.
 *
 * No TEE hardware is available where this was written: the device paths are exercised only
 * by the hardware they are for; everything they return goes through the parsers in
 * evidence.c, which are unit-tested and fuzzed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "guest-agent/attest/kbc.h"

#define TSM_DEFAULT       "/sys/kernel/config/tsm/report"
#define SEV_GUEST_DEFAULT "/dev/sev-guest"
#define TDX_GUEST_DEFAULT "/dev/tdx_guest"
#define TSM_BLOB_MAX      (1u << 20)

/* <linux/sev-guest.h> (Debian 12 has it) declares these; written out here so the layout the
 * ioctl numbers were computed for (reference V13) is visible next to its use. */
struct snp_report_req {
        uint8_t user_data[64];
        uint32_t vmpl;
        uint8_t rsvd[28];
};
struct snp_ext_report_req {
        struct snp_report_req data;
        uint64_t certs_address;
        uint32_t certs_len;
};
struct snp_guest_request_ioctl {
        uint8_t msg_version;
        uint64_t req_data;
        uint64_t resp_data;
        union {
                uint64_t exitinfo2;
                struct {
                        uint32_t fw_error;
                        uint32_t vmm_error;
                };
        };
};
_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req");
_Static_assert(sizeof(struct snp_ext_report_req) == 112, "snp_ext_report_req");
_Static_assert(sizeof(struct snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl");
#define SNP_GET_REPORT          0xC0205300u
#define SNP_GET_EXT_REPORT      0xC0205302u
#define SNP_RESP_SIZE           4000
#define SNP_VMM_ERR_INVALID_LEN 1

/* Debian 12's linux-libc-dev has no <linux/tdx-guest.h>. */
struct tdx_report_req {
        uint8_t reportdata[64];
        uint8_t tdreport[KBC_TDREPORT_SIZE];
};
_Static_assert(sizeof(struct tdx_report_req) == 1088, "tdx_report_req");
#define TDX_CMD_GET_REPORT0 0xC4405401u

static const char *tsm_dir(const struct kbc_attester_paths *p)
{
        return p && p->tsm ? p->tsm : TSM_DEFAULT;
}
static const char *sev_dev(const struct kbc_attester_paths *p)
{
        return p && p->sev_guest ? p->sev_guest : SEV_GUEST_DEFAULT;
}
static const char *tdx_dev(const struct kbc_attester_paths *p)
{
        return p && p->tdx_guest ? p->tdx_guest : TDX_GUEST_DEFAULT;
}

enum kbc_tee kbc_attester_detect(const struct kbc_attester_paths *p)
{
        if (access(tdx_dev(p), F_OK) == 0)
                return KBC_TEE_TDX;
        if (access(sev_dev(p), F_OK) == 0 || access("/sys/devices/platform/sev-guest", F_OK) == 0)
                return KBC_TEE_SNP;
        return KBC_TEE_SAMPLE;
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len, size_t max)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t cap = 4096, len = 0;
        _cleanup_free_ uint8_t *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= max)
                                return -EFBIG;
                        cap *= 2;
                        uint8_t *n = realloc(buf, cap);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, data, len);
        return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* One configfs-tsm report: outblob (and auxblob) for 64 bytes of report data. */
static int tsm_report(const struct kbc_attester_paths *p, const char *want_provider,
                      const uint8_t rd[64], uint8_t **out, size_t *out_len, uint8_t **aux,
                      size_t *aux_len, struct cc_error **err)
{
        char dir[256], f[320];
        for (int attempt = 0; attempt < 3; attempt++) {
                snprintf(dir, sizeof(dir), "%s/cc-kbc-%d-%d", tsm_dir(p), (int)getpid(), attempt);
                if (mkdir(dir, 0700) < 0)
                        return -errno; /* no configfs-tsm: the caller falls back */
                int r = 0;
                _cleanup_free_ uint8_t *prov = NULL, *gen = NULL;
                size_t pl = 0, gl = 0;
                snprintf(f, sizeof(f), "%s/provider", dir);
                if ((r = read_all(f, &prov, &pl, 64)) == 0 &&
                    (pl < strlen(want_provider) ||
                     memcmp(prov, want_provider, strlen(want_provider))))
                        r = cc_error_set(err, ENODEV, "configfs-tsm provider is '%.*s', not %s",
                                         (int)(pl && prov[pl - 1] == '\n' ? pl - 1 : pl),
                                         (const char *)prov, want_provider);
                if (r == 0) {
                        snprintf(f, sizeof(f), "%s/inblob", dir);
                        r = write_file(f, rd, 64);
                }
                if (r == 0) {
                        snprintf(f, sizeof(f), "%s/outblob", dir);
                        r = read_all(f, out, out_len, TSM_BLOB_MAX);
                }
                if (r == 0 && aux) {
                        snprintf(f, sizeof(f), "%s/auxblob", dir);
                        if (read_all(f, aux, aux_len, TSM_BLOB_MAX) < 0)
                                *aux = NULL, *aux_len = 0;
                }
                if (r == 0) {
                        snprintf(f, sizeof(f), "%s/generation", dir);
                        r = read_all(f, &gen, &gl, 64);
                }
                rmdir(dir);
                if (r < 0) {
                        if (err && !*err)
                                cc_error_set(err, -r, "configfs-tsm report: %s", strerror(-r));
                        return r;
                }
                /* Another writer raced us when generation > 1: discard and retry. */
                if (gl && atoi((const char *)gen) <= 1)
                        return 0;
                free(*out);
                *out = NULL;
                if (aux) {
                        free(*aux);
                        *aux = NULL;
                }
        }
        return cc_error_set(err, EBUSY, "configfs-tsm report: raced by another writer 3 times");
}

/* SNP_GET_EXT_REPORT, sized by the host's answer: 0 with the certificate table, or -errno
 * (the caller then asks for the plain report: a host may supply no certificates). */
static int snp_ext_report(int fd, struct snp_ext_report_req *ext, uint8_t *resp, uint8_t **certs,
                          size_t *certs_len)
{
        size_t cl = 4096;
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ uint8_t *cb = calloc(1, cl);
                if (!cb)
                        return -ENOMEM;
                ext->certs_address = (uint64_t)(uintptr_t)cb;
                ext->certs_len = (uint32_t)cl;
                struct snp_guest_request_ioctl io = {.msg_version = 1,
                                                     .req_data = (uint64_t)(uintptr_t)ext,
                                                     .resp_data = (uint64_t)(uintptr_t)resp};
                if (ioctl(fd, SNP_GET_EXT_REPORT, &io) == 0) {
                        *certs = TAKE_PTR(cb);
                        *certs_len = cl;
                        return 0;
                }
                int e = errno;
                if (io.vmm_error != SNP_VMM_ERR_INVALID_LEN || ext->certs_len <= cl ||
                    ext->certs_len > TSM_BLOB_MAX)
                        return -e;
                cl = ext->certs_len;
        }
        return -ENOSPC;
}

static int snp_ioctl_report(const struct kbc_attester_paths *p, const uint8_t rd[64],
                            uint8_t report[KBC_SNP_REPORT_SIZE], uint8_t **certs, size_t *certs_len,
                            struct cc_error **err)
{
        _cleanup_close_ int fd = open(sev_dev(p), O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "%s: %m", sev_dev(p));
        _cleanup_free_ uint8_t *resp = calloc(1, SNP_RESP_SIZE);
        if (!resp)
                return -ENOMEM;
        struct snp_ext_report_req ext = {0};
        memcpy(ext.data.user_data, rd, 64); /* VMPL 0: Trustee rejects any other */
        if (snp_ext_report(fd, &ext, resp, certs, certs_len) < 0) {
                struct snp_guest_request_ioctl io = {.msg_version = 1,
                                                     .req_data = (uint64_t)(uintptr_t)&ext.data,
                                                     .resp_data = (uint64_t)(uintptr_t)resp};
                if (ioctl(fd, SNP_GET_REPORT, &io) < 0)
                        return cc_error_set(
                                err, errno,
                                "SNP_GET_REPORT: %m (firmware error 0x%x, VMM error 0x%x)",
                                io.fw_error, io.vmm_error);
        }
        /* MSG_REPORT_RSP: status, report size, 24 reserved, the report. */
        uint32_t status = resp[0] | resp[1] << 8 | resp[2] << 16 | (uint32_t)resp[3] << 24;
        uint32_t size = resp[4] | resp[5] << 8 | resp[6] << 16 | (uint32_t)resp[7] << 24;
        if (status != 0 || size != KBC_SNP_REPORT_SIZE)
                return cc_error_set(err, EIO, "SNP report response: status 0x%x, size %u", status,
                                    size);
        memcpy(report, resp + 0x20, KBC_SNP_REPORT_SIZE);
        return 0;
}

static int snp_report(const struct kbc_attester_paths *p, const uint8_t rd[64], uint8_t **report,
                      size_t *len, uint8_t **certs, size_t *certs_len, struct cc_error **err)
{
        int r = tsm_report(p, "sev_guest", rd, report, len, certs, certs_len, err);
        if (r != -ENOENT && r != -ENOTDIR && r != -EROFS)
                return r;
        uint8_t *rep = malloc(KBC_SNP_REPORT_SIZE);
        if (!rep)
                return -ENOMEM;
        r = snp_ioctl_report(p, rd, rep, certs, certs_len, err);
        if (r < 0) {
                free(rep);
                return r;
        }
        *report = rep;
        *len = KBC_SNP_REPORT_SIZE;
        return 0;
}

/* Without configfs-tsm: the TDREPORT binding rd from /dev/tdx_guest, quoted by the QGS. */
static int tdx_qgs_quote(const struct kbc_attester_paths *p, const uint8_t rd[64], uint8_t **ret,
                         size_t *ret_len, struct cc_error **err)
{
        _cleanup_close_ int fd = open(tdx_dev(p), O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno == ENOENT ? EOPNOTSUPP : errno,
                                    "TDX quote: no configfs-tsm at %s and no %s: %m", tsm_dir(p),
                                    tdx_dev(p));
        struct tdx_report_req req = {{0}};
        memcpy(req.reportdata, rd, 64);
        if (ioctl(fd, TDX_CMD_GET_REPORT0, &req) < 0)
                return cc_error_set(err, errno, "TDX_CMD_GET_REPORT0: %m");
        int r = kbc_qgs_quote(kbc_qgs_port(NULL), req.tdreport, ret, ret_len, err);
        explicit_bzero(&req, sizeof(req));
        return r < 0 ? cc_error_wrap(err, -r, "TDX quote (no configfs-tsm at %s)", tsm_dir(p)) : 0;
}

int kbc_attester_evidence(enum kbc_tee tee, const struct kbc_attester_paths *p,
                          const uint8_t *report_data, size_t len, struct json_object **ret,
                          struct cc_error **err)
{
        if (len > 64)
                return cc_error_set(err, EINVAL, "report data of %zu bytes (64 at most)", len);
        if (tee == KBC_TEE_SAMPLE) {
                /* Sample evidence carries the digest unpadded (2.2). */
                *ret = kbc_evidence_sample(report_data, len);
                return *ret ? 0 : -ENOMEM;
        }
        uint8_t rd[64];
        kbc_regularize(report_data, len, rd, sizeof(rd));
        _cleanup_free_ uint8_t *out = NULL, *aux = NULL;
        size_t ol = 0, al = 0;
        int r;
        if (tee == KBC_TEE_SNP) {
                if ((r = snp_report(p, rd, &out, &ol, &aux, &al, err)) < 0)
                        return r;
                return kbc_evidence_snp(out, ol, aux, al, ret, err);
        }
        _cleanup_error_ struct cc_error *terr = NULL;
        r = tsm_report(p, "tdx_guest", rd, &out, &ol, NULL, NULL, &terr);
        if (r == -ENOENT || r == -ENOTDIR)
                r = tdx_qgs_quote(p, rd, &out, &ol, err);
        else if (r < 0)
                return cc_error_set(err, -r, "%s", cc_error_message(terr));
        if (r < 0)
                return r;
        return kbc_evidence_tdx(out, ol, ret, err);
}

int kbc_attester_init_data_field(enum kbc_tee tee, const struct kbc_attester_paths *p, uint8_t *out,
                                 size_t *out_len, struct cc_error **err)
{
        if (tee == KBC_TEE_SNP) {
                static const uint8_t zero[64];
                _cleanup_free_ uint8_t *rep = NULL, *certs = NULL;
                size_t rl = 0, cl = 0;
                int r = snp_report(p, zero, &rep, &rl, &certs, &cl, err);
                if (r < 0)
                        return r;
                if (rl != KBC_SNP_REPORT_SIZE)
                        return cc_error_set(err, EBADMSG, "SNP report is %zu bytes", rl);
                memcpy(out, rep + KBC_SNP_HOST_DATA, 32);
                *out_len = 32;
                return 0;
        }
        if (tee == KBC_TEE_TDX) {
                _cleanup_close_ int fd = open(tdx_dev(p), O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return cc_error_set(err, errno, "%s: %m", tdx_dev(p));
                struct tdx_report_req req = {{0}};
                if (ioctl(fd, TDX_CMD_GET_REPORT0, &req) < 0)
                        return cc_error_set(err, errno, "TDX_CMD_GET_REPORT0: %m");
                memcpy(out, req.tdreport + KBC_TDREPORT_MRCONFIGID, 48);
                *out_len = 48;
                return 0;
        }
        return -EOPNOTSUPP;
}
