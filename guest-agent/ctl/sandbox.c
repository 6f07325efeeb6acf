/*
 * cc-agent-ctl's commands for the agent itself and the sandbox: check (grpc.Health, with
 * --wait retrying until the agent answers), version, details, create-sandbox,
 * destroy-sandbox, pull-image (grpc.Image), oom-event, set-time, set-policy, copy-file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cc/cleanup.h"
#include "cc/ttrpc.h"

#include "guest-agent/ctl/ctl.h"
#include "kata/health.pb-c.h"
#include "kata/image.pb-c.h"

static int cmd_check(struct opts *o)
{
        Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
        Grpc__HealthCheckResponse *resp = NULL;
        time_t end = time(NULL) + o->wait_s;
        for (;;) {
                int r = ctl_call("grpc.Health", "Check", &req.base,
                                 &grpc__health_check_response__descriptor,
                                 (ProtobufCMessage **)&resp, 2000000000LL, time(NULL) >= end);
                if (r >= 0)
                        break;
                if (cc_ttrpc_client_broken(ctl_client)) {
                        fprintf(stderr, "error: connection broken\n");
                        return 1;
                }
        }
        printf("%s\n", resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                               ? "SERVING"
                               : "NOT_SERVING");
        return resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
}

static int cmd_version(struct opts *o)
{
        Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
        Grpc__VersionCheckResponse *resp = NULL;
        ctl_call("grpc.Health", "Version", &req.base, &grpc__version_check_response__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        printf("agent_version=%s grpc_version=%s\n", resp->agent_version, resp->grpc_version);
        return 0;
}

static int cmd_details(struct opts *o)
{
        Grpc__GuestDetailsRequest req = GRPC__GUEST_DETAILS_REQUEST__INIT;
        req.mem_block_size = true;
        Grpc__GuestDetailsResponse *resp = NULL;
        ctl_call(AGENT, "GetGuestDetails", &req.base, &grpc__guest_details_response__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        Grpc__AgentDetails *d = resp->agent_details;
        printf("version=%s init_daemon=%d supports_seccomp=%d mem_block_size=%" PRIu64,
               d ? d->version : "", d ? d->init_daemon : 0, d ? d->supports_seccomp : 0,
               resp->mem_block_size_bytes);
        for (size_t i = 0; d && i < d->n_extra_features; i++)
                printf(" %s", d->extra_features[i]);
        printf("\n");
        return 0;
}

static int cmd_create_sandbox(struct opts *o)
{
        Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
        req.hostname = (char *)(o->hostname ? o->hostname : "");
        req.sandbox_id = (char *)(o->id ? o->id : "");
        ctl_call(AGENT, "CreateSandbox", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_pull_image(struct opts *o)
{
        /* pull-image --id C [--user USER:PASS] -- IMAGE: grpc.Image/PullImage. */
        if (!o->id || o->n_args != 1) {
                fprintf(stderr, "usage: pull-image --id CONTAINER -- IMAGE\n");
                return 2;
        }
        Grpc__PullImageRequest req = GRPC__PULL_IMAGE_REQUEST__INIT;
        req.image = o->args[0];
        req.container_id = (char *)o->id;
        req.source_creds = (char *)(o->user ? o->user : "");
        Grpc__PullImageResponse *resp = NULL;
        ctl_call("grpc.Image", "PullImage", &req.base, &grpc__pull_image_response__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        printf("%s\n", resp->image_ref);
        return 0;
}

static int cmd_destroy_sandbox(struct opts *o)
{
        Grpc__DestroySandboxRequest req = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
        ctl_call(AGENT, "DestroySandbox", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_oom_event(struct opts *o)
{
        Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
        Grpc__OOMEvent *resp = NULL;
        ctl_call(AGENT, "GetOOMEvent", &req.base, &grpc__oomevent__descriptor,
                 (ProtobufCMessage **)&resp, (int64_t)(o->timeout ? o->timeout : 10) * 1000000000LL,
                 true);
        printf("%s\n", resp->container_id);
        return 0;
}

static int cmd_set_time(struct opts *o)
{
        Grpc__SetGuestDateTimeRequest req = GRPC__SET_GUEST_DATE_TIME_REQUEST__INIT;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        req.sec = ts.tv_sec;
        ctl_call(AGENT, "SetGuestDateTime", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_set_policy(struct opts *o)
{
        /* --src FILE: the agent's JSON policy. */
        Grpc__SetPolicyRequest req = GRPC__SET_POLICY_REQUEST__INIT;
        _cleanup_fclose_ FILE *f = o->src ? fopen(o->src, "re") : NULL;
        static char text[1 << 20];
        size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        if (!f) {
                perror(o->src ? o->src : "--src");
                return 1;
        }
        text[n] = '\0';
        req.policy = text;
        ctl_call(AGENT, "SetPolicy", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_copy_file(struct opts *o)
{
        /* Sends --src in 1 MiB chunks (CopyFile carries an offset), or creates a
         * directory when --mode has the directory type bits. */
        Grpc__CopyFileRequest req = GRPC__COPY_FILE_REQUEST__INIT;
        req.path = (char *)o->dst;
        req.file_mode = o->mode ? o->mode : (S_IFREG | 0644);
        req.dir_mode = 0755;
        req.uid = -1;
        req.gid = -1;
        if (S_ISDIR(req.file_mode)) {
                ctl_call(AGENT, "CopyFile", &req.base, NULL, NULL, 0, true);
                return 0;
        }
        _cleanup_fclose_ FILE *f = o->src ? fopen(o->src, "re") : NULL;
        struct stat st;
        if (!f || fstat(fileno(f), &st) < 0) {
                perror(o->src ? o->src : "--src");
                return 1;
        }
        static uint8_t buf[1 << 20];
        req.file_size = st.st_size;
        do {
                size_t n = fread(buf, 1, sizeof(buf), f);
                req.data.data = buf;
                req.data.len = n;
                ctl_call(AGENT, "CopyFile", &req.base, NULL, NULL, 0, true);
                req.offset += (int64_t)n;
        } while (req.offset < st.st_size && !feof(f));
        return 0;
}

const struct ctl_command ctl_sandbox_commands[] = {
        {"check", false, cmd_check},
        {"version", false, cmd_version},
        {"details", false, cmd_details},
        {"create-sandbox", false, cmd_create_sandbox},
        {"pull-image", false, cmd_pull_image},
        {"destroy-sandbox", false, cmd_destroy_sandbox},
        {"oom-event", false, cmd_oom_event},
        {"set-time", false, cmd_set_time},
        {"set-policy", false, cmd_set_policy},
        {"copy-file", false, cmd_copy_file},
        {NULL},
};
