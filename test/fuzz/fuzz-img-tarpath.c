/*
 * Fuzz target: tar path handling and the layer decoders. The input is cleaned as a tar path,
 * then unpacked as a tar (gzip or zstd compressed when it starts with their magic) into a fresh
 * directory below a private root; afterwards nothing may exist in the root's
 * parent besides that root (an escape aborts). Inputs are capped at 64 KiB and file data at
 * the applier's test limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

static char base[] = "/tmp/img-fuzz.XXXXXX";
static int basefd = -1;

/* Removes the private root at exit: a replay run leaves nothing behind. */
static void cleanup(void)
{
        char *slash = strrchr(base, '/');
        int parent = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent >= 0 && slash)
                cc_rm_rf_at(parent, slash + 1);
        if (parent >= 0)
                close(parent);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        if (!mkdtemp(base))
                abort();
        basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        atexit(cleanup);
        return basefd < 0;
}

static void check_no_escape(void)
{
        /* Only "root" may exist in base: anything else came from an escaped entry. */
        struct stat st;
        char probe[64];
        for (int i = 0; i < 3; i++) {
                static const char *names[] = {"x", "escaped", "pwned"};
                snprintf(probe, sizeof(probe), "%s", names[i]);
                if (fstatat(basefd, probe, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 65536)
                return 0;
        if (basefd < 0)
                LLVMFuzzerInitialize(NULL, NULL);
        char in[1024], out[PATH_MAX];
        size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
        memcpy(in, data, n);
        in[n] = 0;
        if (img__path_clean(in, out, sizeof(out)) == 0) {
                /* A cleaned path is relative and has no "..", "." or empty component. */
                if (out[0] == '/')
                        abort();
                for (char *c = out; *c;) {
                        size_t len = strcspn(c, "/");
                        if (len == 0 || (len == 1 && c[0] == '.') ||
                            (len == 2 && c[0] == '.' && c[1] == '.'))
                                abort();
                        c += len;
                        if (*c == '/')
                                c++;
                }
        }

        if (mkdirat(basefd, "root", 0700) < 0 && errno != EEXIST)
                abort();
        int rootfd = openat(basefd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = memfd_create("tar", MFD_CLOEXEC);
        if (rootfd < 0 || fd < 0 || write(fd, data, size) != (ssize_t)size)
                abort();
        lseek(fd, 0, SEEK_SET);
        struct cc_error *err = NULL;
        /* The decoders see hostile input too: gzip (ISA-L) and zstd streams by their magic. */
        enum img_compression comp = IMG_COMP_NONE;
        if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
                comp = IMG_COMP_GZIP;
        else if (size >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f &&
                 data[3] == 0xfd)
                comp = IMG_COMP_ZSTD;
        img__unpack_fd(fd, rootfd, comp, 0, &err);
        cc_error_free(err);
        close(fd);
        close(rootfd);
        cc_rm_rf_at(basefd, "root");
        check_no_escape();
        return 0;
}
