#pragma once
/*
 * Cloud Hypervisor backend internals: the pure VmConfig renderer and a minimal HTTP/1.1
 * client for CH's REST API on a unix socket (reference 2.1, 2.2, 2.5). Untested against a real
 * Cloud Hypervisor (none can run without KVM); tested against a fake API server.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "hypervisor/hv-internal.h"

#define HV_CLH_API_SOCK   "clh-api.sock"
#define HV_CLH_VSOCK_SOCK "clh.vsock"
#define HV_CLH_LOG        "clh.log"
#define HV_CLH_GUEST_CID  3 /* Kata's defaultGuestVSockCID: hybrid vsock is per-VM */

struct hv_clh_plan {
        const struct hv_config *cfg; /* defaults applied */
        const char *console_log;
};

/* Renders the VmConfig for PUT /api/v1/vm.create (caller puts *ret). */
int hv_clh_vmconfig(const struct hv_clh_plan *plan, json_object **ret, struct cc_error **err);

/* The body of PUT /api/v1/vm.add-net for cfg->nets[i] (malloc'ed JSON in *ret). */
int hv_clh_netconfig(const struct hv_config *cfg, size_t i, char **ret, struct cc_error **err);

/* Hot-plugged disks are named "hpblk-<serial>" in CH (DiskConfig.id, vm.remove-device). */
#define HV_CLH_DISK_PREFIX "hpblk-"

/* The body of PUT /api/v1/vm.add-disk (DiskConfig, 2.2) for a hot-plugged disk; `direct`:
 * O_DIRECT (block devices). Malloc'ed JSON in *ret. */
int hv_clh_diskconfig(const struct hv_disk *disk, bool direct, char **ret, struct cc_error **err);

#define HV_CLH_MAX_RESPONSE (1u << 20)

/*
 * Parses an HTTP/1.1 response held in buf[0..len): -EAGAIN while incomplete, -EBADMSG when
 * malformed, else 0 with the status code and the body's offset and length.
 */
int hv_clh_parse_response(const char *buf, size_t len, int *status, size_t *body_off,
                          size_t *body_len);

/*
 * One request on a new connection to the API socket: `method` ("GET"/"PUT") on
 * /api/v1/<endpoint> with an optional JSON body. Returns the HTTP status (>= 100) or -errno;
 * *ret_body (may be NULL) receives the response body, NUL-terminated.
 */
int hv_clh_request(const char *api_sock, const char *method, const char *endpoint, const char *body,
                   int timeout_ms, char **ret_body, struct cc_error **err);

/*
 * The same with n_fds file descriptors passed beside the request (SCM_RIGHTS on its first
 * bytes), as CH's API takes tap fds for vm.add-net: the VMM receives its own duplicates.
 */
int hv_clh_request_fds(const char *api_sock, const char *method, const char *endpoint,
                       const char *body, const int *fds, size_t n_fds, int timeout_ms,
                       char **ret_body, struct cc_error **err);
