/*
 * Names the shim derives from containerd's inputs: the task socket address (containerd's
 * SocketAddress, reference shim-v2-ttrpc.md 1.7), the VM run directory, and a task's role in
 * its pod (kata's grouping rules, 1.11).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one-shot low-level SHA-256 interface: unlike EVP_Digest() it does not pull OpenSSL 3's
 * provider machinery (every algorithm) into the statically linked daemon, several MiB of
 * relocated tables. It is marked deprecated in OpenSSL 3 but stays supported. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "cc/cleanup.h"
#include "cc/json.h"

#include "shim/shim.h"

char *shim_path_clean(const char *p)
{
        /* Go's path.Clean, lexically: each kept component is appended after a '/'. */
        size_t len = strlen(p);
        bool rooted = p[0] == '/';
        char *out = malloc(len + 2);
        if (!out)
                return NULL;
        size_t o = 0;
        if (rooted)
                out[o++] = '/';
        size_t base = o; /* ".." never climbs above this */
        for (size_t i = 0; i < len;) {
                while (i < len && p[i] == '/')
                        i++;
                size_t start = i;
                while (i < len && p[i] != '/')
                        i++;
                size_t n = i - start;
                if (n == 0 || (n == 1 && p[start] == '.'))
                        continue;
                if (n == 2 && p[start] == '.' && p[start + 1] == '.') {
                        if (o > base) {
                                while (o > base && out[o - 1] != '/')
                                        o--;
                                if (o > base)
                                        o--; /* the '/' before the removed component */
                                continue;
                        }
                        if (rooted)
                                continue;
                }
                if (o > base)
                        out[o++] = '/';
                memcpy(out + o, p + start, n);
                o += n;
        }
        if (o == 0)
                out[o++] = '.';
        out[o] = '\0';
        return out;
}

static int sha256_hex(const char *s, char hex[65])
{
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256_CTX ctx;
        if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, s, strlen(s)) || !SHA256_Final(md, &ctx))
                return -EIO;
        for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int shim_socket_address(const char *address, const char *ns, const char *id, char **ret)
{
        _cleanup_free_ char *joined = NULL;
        if (asprintf(&joined, "%s/%s/%s", address, ns, id) < 0)
                return -ENOMEM;
        _cleanup_free_ char *clean = shim_path_clean(joined);
        if (!clean)
                return -ENOMEM;
        char hex[65];
        int r = sha256_hex(clean, hex);
        if (r < 0)
                return r;
        return asprintf(ret, "unix://%s/%s", SHIM_SOCKET_DIR, hex) < 0 ? -ENOMEM : 0;
}

const char *shim_run_base(void)
{
        const char *e = getenv("CC_SHIM_RUN_DIR");
        return cc_isempty(e) ? SHIM_RUN_DIR : e;
}

int shim_vm_run_dir(const char *ns, const char *sandbox_id, char **ret)
{
        /* Hashed so that the unix socket paths QEMU makes in it stay well below 107 bytes
         * whatever the id's length; deterministic so that `delete` finds it again. */
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s/%s", ns, sandbox_id) < 0)
                return -ENOMEM;
        char hex[65];
        int r = sha256_hex(key, hex);
        if (r < 0)
                return r;
        hex[24] = '\0';
        return asprintf(ret, "%s/%s", shim_run_base(), hex) < 0 ? -ENOMEM : 0;
}

int shim_debug_console_address(const char *agent_addr, const char *run_dir, char **ret)
{
        int r;
        if (strncmp(agent_addr, "unix:", 5) == 0) {
                r = asprintf(ret, "unix:%s/%s", run_dir, HV_DEBUG_CONSOLE_SOCK);
        } else {
                /* "vsock:<cid>:<port>", "hvsock:<path>:<port>": another port. */
                const char *colon = strrchr(agent_addr, ':');
                if (!colon ||
                    (strncmp(agent_addr, "vsock:", 6) && strncmp(agent_addr, "hvsock:", 7)))
                        return -EINVAL;
                r = asprintf(ret, "%.*s:%d", (int)(colon - agent_addr), agent_addr,
                             HV_DEBUG_CONSOLE_PORT);
        }
        return r < 0 ? -ENOMEM : 0;
}

const char *shim_spec_annotation(struct json_object *spec, const char *key)
{
        struct json_object *annos = NULL, *v = NULL;
        if (!spec || !json_object_object_get_ex(spec, "annotations", &annos) ||
            !json_object_is_type(annos, json_type_object) ||
            !json_object_object_get_ex(annos, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

enum shim_role shim_spec_role(struct json_object *spec, const char *id, const char **sandbox_id)
{
        /* containerd's CRI, CRI-O and dockershim spell the two annotations differently. */
        static const char *const type_keys[] = {ANNO_CONTAINER_TYPE,
                                                "io.kubernetes.cri-o.ContainerType",
                                                "io.kubernetes.docker.type"};
        static const char *const sbid_keys[] = {ANNO_SANDBOX_ID, "io.kubernetes.cri-o.SandboxID",
                                                "io.kubernetes.sandbox.id"};
        const char *type = NULL, *sbid = NULL;
        for (size_t i = 0; i < CC_ARRAY_SIZE(type_keys) && !type; i++)
                type = shim_spec_annotation(spec, type_keys[i]);
        for (size_t i = 0; i < CC_ARRAY_SIZE(sbid_keys) && !sbid; i++)
                sbid = shim_spec_annotation(spec, sbid_keys[i]);
        *sandbox_id = id;
        if (!type)
                return SHIM_ROLE_SINGLE;
        if (cc_streq(type, "sandbox") || cc_streq(type, "podsandbox"))
                return SHIM_ROLE_SANDBOX;
        if (cc_isempty(sbid))
                return SHIM_ROLE_SINGLE;
        *sandbox_id = sbid;
        return SHIM_ROLE_CONTAINER;
}
