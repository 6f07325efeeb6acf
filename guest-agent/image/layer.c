/*
 * One layer, streamed: blob reader (size guard + sha256 of the blob) -> [ocicrypt: HMAC of
 * the ciphertext, AES-256-CTR, sha256 of the plain blob] -> gzip / zstd / none -> sha256 of
 * the tar (diff_id) and the decompressed-size limit (decompression bombs) -> libarchive, as a
 * tar reader only -> img__apply_entry() into <store>/staging/<hex>.XXXXXX.
 *
 * libarchive pulls through tar_read(), which pulls the decompressor, which pulls the blob
 * reader, which drives libcurl: no thread per stage and no buffer larger than one chunk.
 * After the tar's end marker the rest of the stream is drained so every digest covers the
 * whole blob. Only when the blob digest, the diff_id and (encrypted layers) the HMAC and the
 * plain digest all match is the staging directory renamed to <store>/layers/sha256/<hex>;
 * on any failure it is removed.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"

#define OUT_SIZE       (256 * 1024)
#define PROGRESS_EVERY (4ULL << 20)

struct pipe {
        /* source: a registry blob, or a plain fd (tests) */
        struct img_blob *blob;
        int fd;
        uint8_t *fdbuf;
        struct img_decryptor *dec;

        enum img_compression comp;
        struct inflate_state *gz; /* ISA-L igzip: several times zlib's inflate speed */
        bool member_done;
        ZSTD_DStream *zs;
        ZSTD_inBuffer zin;
        size_t zlast; /* last ZSTD_decompressStream result: 0 = frame complete */

        const uint8_t *in;
        size_t in_len;
        bool in_eof;

        uint8_t *out;
        EVP_MD_CTX *diff_md;
        uint64_t tar_bytes, max_tar;
        struct cc_error *err;
        volatile int *abort;

        const struct img_layer_job *job;
        uint64_t next_progress;
        uint64_t ns_net, ns_decrypt, ns_inflate, ns_diff; /* stage timings */
};

static void pipe_done(struct pipe *p)
{
        free(p->gz);
        ZSTD_freeDStream(p->zs);
        free(p->out);
        free(p->fdbuf);
        EVP_MD_CTX_free(p->diff_md);
        cc_error_free(p->err);
}

static int pipe_init(struct pipe *p, enum img_compression comp, uint64_t max_tar)
{
        p->comp = comp;
        p->max_tar = max_tar;
        p->out = malloc(OUT_SIZE);
        p->diff_md = EVP_MD_CTX_new();
        if (!p->out || !p->diff_md || !EVP_DigestInit_ex(p->diff_md, EVP_sha256(), NULL))
                return -ENOMEM;
        if (comp == IMG_COMP_GZIP) {
                p->gz = malloc(sizeof(*p->gz));
                if (!p->gz)
                        return -ENOMEM;
                isal_inflate_init(p->gz);
                p->gz->crc_flag = ISAL_GZIP; /* parse the gzip wrapper, verify CRC and size */
        } else if (comp == IMG_COMP_ZSTD) {
                p->zs = ZSTD_createDStream();
                if (!p->zs || ZSTD_isError(ZSTD_initDStream(p->zs)))
                        return -ENOMEM;
        }
        return 0;
}

/* Next chunk of the (decrypted) blob into p->in; sets in_eof at the verified end. */
static int next_input(struct pipe *p)
{
        if (p->abort && *p->abort)
                return cc_error_set(&p->err, ECANCELED, "cancelled: another layer failed");
        const uint8_t *chunk;
        size_t len;
        if (p->blob) {
                uint64_t t0 = img__now_ns();
                int r = img__blob_next(p->blob, &chunk, &len, &p->err);
                p->ns_net += img__now_ns() - t0;
                if (r < 0)
                        return r;
        } else {
                ssize_t n;
                do
                        n = read(p->fd, p->fdbuf, OUT_SIZE);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return cc_error_set(&p->err, errno, "read layer");
                chunk = p->fdbuf;
                len = (size_t)n;
        }
        if (len == 0) {
                p->in_eof = true;
                p->in_len = 0;
                return 0;
        }
        if (p->dec) {
                uint64_t t0 = img__now_ns();
                img__decrypt(p->dec, (uint8_t *)chunk, len);
                p->ns_decrypt += img__now_ns() - t0;
        }
        p->in = chunk;
        p->in_len = len;
        const struct img_layer_job *j = p->job;
        if (j && p->blob && j->opts->progress && img__blob_offset(p->blob) >= p->next_progress) {
                p->next_progress = img__blob_offset(p->blob) + PROGRESS_EVERY;
                j->opts->progress(j->opts->progress_data, j->index, j->n_layers, j->desc->digest,
                                  img__blob_offset(p->blob), (uint64_t)j->desc->size);
        }
        return 0;
}

/* Produces the next decompressed bytes: >0 bytes in *ret, 0 at end, <0 on error. */
static ssize_t produce(struct pipe *p, const void **ret)
{
        for (;;) {
                if (p->in_len == 0 && !p->in_eof) {
                        int r = next_input(p);
                        if (r < 0)
                                return r;
                        if (p->comp == IMG_COMP_GZIP) {
                                p->gz->next_in = (uint8_t *)p->in;
                                p->gz->avail_in = (uint32_t)p->in_len;
                        } else if (p->comp == IMG_COMP_ZSTD) {
                                p->zin = (ZSTD_inBuffer){p->in, p->in_len, 0};
                        }
                        continue;
                }
                size_t produced = 0;
                uint64_t t0 = img__now_ns();
                if (p->comp == IMG_COMP_NONE) {
                        if (p->in_eof)
                                return 0;
                        *ret = p->in;
                        produced = p->in_len;
                        p->in_len = 0;
                } else if (p->comp == IMG_COMP_GZIP) {
                        struct inflate_state *g = p->gz;
                        if (p->member_done) {
                                if (g->avail_in == 0) {
                                        if (p->in_eof)
                                                return 0;
                                        p->in_len = 0;
                                        continue;
                                }
                                /* Concatenated gzip members (eStargz, pigz) form one stream. */
                                uint8_t *next = g->next_in;
                                uint32_t avail = g->avail_in;
                                isal_inflate_reset(g);
                                g->crc_flag = ISAL_GZIP;
                                g->next_in = next;
                                g->avail_in = avail;
                                p->member_done = false;
                        }
                        if (g->avail_in == 0 && !p->in_eof) {
                                p->in_len = 0;
                                continue;
                        }
                        uint32_t avail_before = g->avail_in;
                        g->next_out = p->out;
                        g->avail_out = OUT_SIZE;
                        int gr = isal_inflate(g);
                        if (gr < 0)
                                return cc_error_set(&p->err, EBADMSG, "gzip: %s",
                                                    gr == ISAL_INCORRECT_CHECKSUM
                                                            ? "incorrect data check"
                                                            : "corrupt stream");
                        if (g->block_state == ISAL_BLOCK_FINISH)
                                p->member_done = true;
                        produced = OUT_SIZE - g->avail_out;
                        if (produced == 0 && !p->member_done &&
                            (p->in_eof || g->avail_in == avail_before)) {
                                if (p->in_eof && g->avail_in == 0)
                                        return cc_error_set(&p->err, EPIPE,
                                                            "gzip stream truncated");
                                if (g->avail_in == avail_before)
                                        return cc_error_set(&p->err, EBADMSG,
                                                            "gzip: decoder made no progress");
                        }
                        if (g->avail_in == 0)
                                p->in_len = 0;
                        *ret = p->out;
                } else {
                        if (p->zin.pos == p->zin.size && p->in_eof) {
                                if (p->zlast != 0)
                                        return cc_error_set(&p->err, EPIPE,
                                                            "zstd stream truncated");
                                return 0;
                        }
                        ZSTD_outBuffer zout = {p->out, OUT_SIZE, 0};
                        size_t zr = ZSTD_decompressStream(p->zs, &zout, &p->zin);
                        if (ZSTD_isError(zr))
                                return cc_error_set(&p->err, EBADMSG, "zstd: %s",
                                                    ZSTD_getErrorName(zr));
                        p->zlast = zr;
                        produced = zout.pos;
                        if (p->zin.pos == p->zin.size)
                                p->in_len = 0;
                        *ret = p->out;
                }
                p->ns_inflate += img__now_ns() - t0;
                if (produced == 0)
                        continue;
                p->tar_bytes += produced;
                if (p->max_tar && p->tar_bytes > p->max_tar)
                        return cc_error_set(&p->err, EFBIG,
                                            "uncompressed layer exceeds the %llu-byte limit",
                                            (unsigned long long)p->max_tar);
                t0 = img__now_ns();
                EVP_DigestUpdate(p->diff_md, *ret, produced);
                p->ns_diff += img__now_ns() - t0;
                return (ssize_t)produced;
        }
}

static la_ssize_t tar_read(struct archive *ar, void *data, const void **buf)
{
        struct pipe *p = data;
        if (p->err)
                return -1;
        ssize_t n = produce(p, buf);
        if (n < 0) {
                archive_set_error(ar, -(int)n, "%s", cc_error_message(p->err));
                return -1;
        }
        return n;
}

/* Reads the whole tar through the applier, then drains the stream to its verified end. */
static int unpack(struct pipe *p, int rootfd, const struct img_pull_opts *opts,
                  const struct img_limits *lim, struct cc_error **err)
{
        struct archive *ar = archive_read_new();
        if (!ar)
                return -ENOMEM;
        archive_read_support_format_tar(ar);
        archive_read_support_format_empty(ar);
        struct img_applier *ap = NULL;
        int r = img__applier_new(rootfd, opts ? opts->flags : 0, lim, &ap);
        if (r < 0) {
                archive_read_free(ar);
                return r;
        }
        if (archive_read_open(ar, p, NULL, tar_read, NULL) != ARCHIVE_OK) {
                r = p->err ? -p->err->errnum : -EBADMSG;
                cc_error_set(err, -r, "tar: %s",
                             p->err ? cc_error_message(p->err) : archive_error_string(ar));
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int ar_r = archive_read_next_header(ar, &e);
                if (ar_r == ARCHIVE_EOF)
                        break;
                if (ar_r != ARCHIVE_OK && ar_r != ARCHIVE_WARN) {
                        r = p->err ? -p->err->errnum : -EBADMSG;
                        cc_error_set(err, -r, "tar: %s",
                                     p->err ? cc_error_message(p->err) : archive_error_string(ar));
                        goto out;
                }
                r = img__apply_entry(ap, ar, e, err);
                if (r < 0) {
                        if (p->err) {
                                /* A data-read failure surfaces as an entry error: say why. */
                                r = -p->err->errnum;
                                cc_error_set(err, -r, "%s", cc_error_message(p->err));
                        }
                        goto out;
                }
        }
        const void *buf;
        ssize_t n;
        while ((n = produce(p, &buf)) > 0)
                ;
        if (n < 0) {
                r = (int)n;
                cc_error_set(err, -r, "%s", cc_error_message(p->err));
                goto out;
        }
        r = img__applier_finish(ap, err);
out:
        img__applier_free(ap);
        archive_read_free(ar);
        return r;
}

int img__unpack_fd(int fd, int rootfd, enum img_compression comp, unsigned flags,
                   struct cc_error **err)
{
        struct pipe p = {.blob = NULL, .fd = fd};
        struct img_pull_opts o = {.flags = flags};
        uint64_t bytes = 0, inodes = 0;
        struct img_limits lim = {
                .max_bytes = 64ULL << 20, .max_inodes = 100000, .bytes = &bytes, .inodes = &inodes};
        int r = pipe_init(&p, comp, 64ULL << 20);
        if (r == 0 && !(p.fdbuf = malloc(OUT_SIZE)))
                r = -ENOMEM;
        if (r == 0)
                r = unpack(&p, rootfd, &o, &lim, err);
        pipe_done(&p);
        return r;
}

int img__layer_pull(struct img_layer_job *job, struct cc_error **err)
{
        const struct img_descriptor *d = job->desc;
        const char *hex = d->digest + 7;
        _cleanup_free_ char *final = NULL, *staging_root = NULL, *staging = NULL;
        if (asprintf(&final, "%s/layers/sha256/%s", job->store_dir, hex) < 0 ||
            asprintf(&staging_root, "%s/staging", job->store_dir) < 0 ||
            asprintf(&staging, "%s/%.16s.XXXXXX", staging_root, hex) < 0)
                return -ENOMEM;
        struct stat st;
        if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
                cc_log_debug("layer %s: already in the store", d->digest);
                return 0;
        }
        struct statvfs sv;
        if (statvfs(staging_root, &sv) == 0 &&
            (uint64_t)sv.f_bavail * sv.f_frsize < (uint64_t)d->size + job->limits->min_free)
                return cc_error_set(err, ENOSPC,
                                    "layer %s: %llu bytes compressed, only %llu free in the store",
                                    d->digest, (unsigned long long)d->size,
                                    (unsigned long long)sv.f_bavail * sv.f_frsize);
        if (!mkdtemp(staging))
                return cc_error_set(err, errno, "layer %s: create staging dir", d->digest);
        _cleanup_close_ int rootfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        struct pipe p = {.fd = -1, .abort = job->abort, .job = job};
        uint64_t t_start = img__now_ns();
        int r = rootfd < 0 ? cc_error_set(err, errno, "open staging dir") : 0;
        if (r == 0) {
                r = pipe_init(&p, d->compression, job->opts->max_layer_bytes);
                if (r < 0)
                        cc_error_set(err, -r, "layer init");
        }
        if (r == 0 && d->encrypted)
                r = img__decryptor_new(d, job->opts->keys, &p.dec, err);
        if (r == 0)
                r = img__blob_open(job->reg, d->digest, d->size, &p.blob, err);
        if (r == 0)
                r = unpack(&p, rootfd, job->opts, job->limits, err);
        if (r == 0 && p.dec)
                r = img__decrypt_final(p.dec, err);
        if (r == 0) {
                char got[72];
                img__digest_final(p.diff_md, got);
                if (strcmp(got, job->diff_id))
                        r = cc_error_set(err, EBADMSG, "diff_id mismatch: config says %s, got %s",
                                         job->diff_id, got);
        }
        if (p.blob) {
                job->fetched = img__blob_offset(p.blob);
                job->ns_digest = img__blob_digest_ns(p.blob);
        }
        job->ns_network = p.ns_net - job->ns_digest;
        job->ns_digest += p.ns_diff;
        job->ns_decrypt = p.ns_decrypt;
        job->ns_inflate = p.ns_inflate;
        job->ns_total = img__now_ns() - t_start;
        img__blob_free(p.blob);
        img__decryptor_free(p.dec);
        pipe_done(&p);
        if (r == 0 && job->opts->progress)
                job->opts->progress(job->opts->progress_data, job->index, job->n_layers, d->digest,
                                    (uint64_t)d->size, (uint64_t)d->size);
        /* Private (0700) while unpacking; the published layer root is 0755. */
        if (r == 0 && chmod(staging, 0755) < 0)
                r = cc_error_set(err, errno, "layer %s: chmod", d->digest);
        if (r == 0 && rename(staging, final) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY)
                        cc_log_debug("layer %s: published concurrently", d->digest);
                else
                        r = cc_error_set(err, errno, "publish layer");
        }
        if (r < 0 || access(staging, F_OK) == 0) {
                /* Failed or lost a publish race: nothing of this attempt may stay. */
                _cleanup_close_ int sfd = open(staging_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sfd >= 0)
                        cc_rm_rf_at(sfd, strrchr(staging, '/') + 1);
        }
        if (r < 0)
                return cc_error_wrap(err, r, "layer %u/%u %s", job->index + 1, job->n_layers,
                                     d->digest);
        return 0;
}
