/*
 * cc-agent-ctl's container and process commands: create (with an optional image_guest_pull
 * Storage), start, pause, resume, run (create + start + copy stdout/stderr + wait + remove),
 * exec, wait, signal, the stdio streams, resize, update, stats, remove. Each needs --id.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/error.h"
#include "cc/ttrpc.h"

#include "guest-agent/ctl/ctl.h"

static void do_create(const struct opts *o)
{
        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)o->id;
        req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
        req.oci = ctl_spec_new(o);
        Grpc__Storage st = GRPC__STORAGE__INIT;
        Grpc__Storage *sts[] = {&st};
        if (o->guest_pull) {
                st.driver = "image_guest_pull";
                st.source = (char *)o->guest_pull;
                st.fstype = "overlay";
                req.n_storages = 1;
                req.storages = sts;
        }
        req.devices = ctl_devices_new(o);
        req.n_devices = o->n_devices;
        ctl_call(AGENT, "CreateContainer", &req.base, NULL, NULL, 0, true);
}

/* Start/Pause/Resume requests are all { string container_id = 1; }. */
static void do_simple_id(const char *method, const ProtobufCMessageDescriptor *d, const char *id)
{
        ProtobufCMessage *m = ctl_calloc(1, d->sizeof_message);
        d->message_init(m);
        *(char **)((char *)m + d->fields[0].offset) = (char *)id;
        ctl_call(AGENT, method, m, NULL, NULL, 0, true);
        free(m);
}

struct copier {
        const char *method, *id, *exec_id;
        FILE *out;
};

static void *copy_stream(void *arg)
{
        struct copier *c = arg;
        for (;;) {
                Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
                req.container_id = (char *)c->id;
                req.exec_id = (char *)(c->exec_id ? c->exec_id : "");
                req.len = 65536;
                Grpc__ReadStreamResponse *resp = NULL;
                struct cc_error *e = NULL;
                if (cc_ttrpc_client_call(ctl_client, AGENT, c->method, &req.base,
                                         &grpc__read_stream_response__descriptor,
                                         (ProtobufCMessage **)&resp, NULL, &e) < 0) {
                        /* The agent ends a stream with an error; report only refusals. */
                        int code = cc_error_grpc_code(e);
                        if (code == CC_GRPC_PERMISSION_DENIED || code == CC_GRPC_NOT_FOUND ||
                            code == CC_GRPC_INVALID_ARGUMENT)
                                fprintf(stderr, "error: %s: %s: %s\n", c->method,
                                        cc_grpc_code_name(code), cc_error_message(e));
                        cc_error_free(e);
                        break;
                }
                fwrite(resp->data.data, 1, resp->data.len, c->out);
                fflush(c->out);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        return NULL;
}

static int do_wait(const char *id, const char *exec_id)
{
        Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        Grpc__WaitProcessResponse *resp = NULL;
        ctl_call(AGENT, "WaitProcess", &req.base, &grpc__wait_process_response__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        int st = resp->status;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return st;
}

static void do_write(const char *id, const char *exec_id, const char *data, size_t len)
{
        Grpc__WriteStreamRequest req = GRPC__WRITE_STREAM_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        req.data.data = (uint8_t *)data;
        req.data.len = len;
        ctl_call(AGENT, "WriteStdin", &req.base, &grpc__write_stream_response__descriptor, NULL, 0,
                 true);
}

static void do_close_stdin(const char *id, const char *exec_id)
{
        Grpc__CloseStdinRequest req = GRPC__CLOSE_STDIN_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        ctl_call(AGENT, "CloseStdin", &req.base, NULL, NULL, 0, true);
}

static void do_remove(const char *id, unsigned timeout)
{
        Grpc__RemoveContainerRequest req = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)id;
        req.timeout = timeout;
        ctl_call(AGENT, "RemoveContainer", &req.base, NULL, NULL, 0, true);
}

/* Copies stdout and stderr until EOF while the process runs, then waits; returns status. */
static int attach_and_wait(const struct opts *o, const char *exec_id)
{
        struct copier out = {"ReadStdout", o->id, exec_id, stdout};
        struct copier errc = {"ReadStderr", o->id, exec_id, stderr};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, copy_stream, &out);
        if (!o->tty)
                pthread_create(&t2, NULL, copy_stream, &errc);
        if (o->data) {
                do_write(o->id, exec_id, o->data, strlen(o->data));
                do_close_stdin(o->id, exec_id);
        }
        int st = do_wait(o->id, exec_id);
        pthread_join(t1, NULL);
        if (!o->tty)
                pthread_join(t2, NULL);
        return st;
}

static int cmd_create(struct opts *o)
{
        do_create(o);
        return 0;
}

static int cmd_start(struct opts *o)
{
        do_simple_id("StartContainer", &grpc__start_container_request__descriptor, o->id);
        return 0;
}

static int cmd_pause(struct opts *o)
{
        do_simple_id("PauseContainer", &grpc__pause_container_request__descriptor, o->id);
        return 0;
}

static int cmd_resume(struct opts *o)
{
        do_simple_id("ResumeContainer", &grpc__resume_container_request__descriptor, o->id);
        return 0;
}

/* create + start + copy stdout/stderr + wait + remove: the container's status. */
static int cmd_run(struct opts *o)
{
        do_create(o);
        do_simple_id("StartContainer", &grpc__start_container_request__descriptor, o->id);
        int st = attach_and_wait(o, NULL);
        do_remove(o->id, 0);
        return st;
}

static int cmd_exec(struct opts *o)
{
        if (!o->exec_id) {
                fprintf(stderr, "exec needs --exec-id\n");
                return 2;
        }
        Grpc__ExecProcessRequest req = GRPC__EXEC_PROCESS_REQUEST__INIT;
        req.container_id = (char *)o->id;
        req.exec_id = (char *)o->exec_id;
        req.process = ctl_process_new(o);
        ctl_call(AGENT, "ExecProcess", &req.base, NULL, NULL, 0, true);
        return attach_and_wait(o, o->exec_id);
}

static int cmd_wait(struct opts *o)
{
        int st = do_wait(o->id, o->exec_id);
        printf("%d\n", st);
        return 0;
}

static int cmd_signal(struct opts *o)
{
        Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
        req.container_id = (char *)o->id;
        req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
        req.signal = o->signal;
        ctl_call(AGENT, "SignalProcess", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_read_stdout(struct opts *o)
{
        struct copier c = {"ReadStdout", o->id, o->exec_id, stdout};
        copy_stream(&c);
        return 0;
}

static int cmd_read_stderr(struct opts *o)
{
        struct copier c = {"ReadStderr", o->id, o->exec_id, stdout};
        copy_stream(&c);
        return 0;
}

static int cmd_write_stdin(struct opts *o)
{
        do_write(o->id, o->exec_id, o->data ? o->data : "", o->data ? strlen(o->data) : 0);
        return 0;
}

static int cmd_close_stdin(struct opts *o)
{
        do_close_stdin(o->id, o->exec_id);
        return 0;
}

static int cmd_resize(struct opts *o)
{
        Grpc__TtyWinResizeRequest req = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
        req.container_id = (char *)o->id;
        req.exec_id = (char *)(o->exec_id ? o->exec_id : "");
        req.row = o->rows;
        req.column = o->cols;
        ctl_call(AGENT, "TtyWinResize", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_update(struct opts *o)
{
        Grpc__UpdateContainerRequest req = GRPC__UPDATE_CONTAINER_REQUEST__INIT;
        Grpc__LinuxResources res = GRPC__LINUX_RESOURCES__INIT;
        Grpc__LinuxMemory mem = GRPC__LINUX_MEMORY__INIT;
        Grpc__LinuxPids pids = GRPC__LINUX_PIDS__INIT;
        req.container_id = (char *)o->id;
        req.resources = &res;
        if (o->memory) {
                mem.limit = o->memory;
                res.memory = &mem;
        }
        if (o->pids) {
                pids.limit = o->pids;
                res.pids = &pids;
        }
        ctl_call(AGENT, "UpdateContainer", &req.base, NULL, NULL, 0, true);
        return 0;
}

static int cmd_stats(struct opts *o)
{
        Grpc__StatsContainerRequest req = GRPC__STATS_CONTAINER_REQUEST__INIT;
        req.container_id = (char *)o->id;
        Grpc__StatsContainerResponse *resp = NULL;
        ctl_call(AGENT, "StatsContainer", &req.base, &grpc__stats_container_response__descriptor,
                 (ProtobufCMessage **)&resp, 0, true);
        Grpc__CgroupStats *cs = resp->cgroup_stats;
        if (cs && cs->cpu_stats && cs->cpu_stats->cpu_usage)
                printf("cpu_usage_ns=%" PRIu64 "\n", cs->cpu_stats->cpu_usage->total_usage);
        if (cs && cs->memory_stats && cs->memory_stats->usage)
                printf("memory_usage=%" PRIu64 "\nmemory_limit=%" PRIu64 "\n",
                       cs->memory_stats->usage->usage, cs->memory_stats->usage->limit);
        for (size_t i = 0; cs && cs->memory_stats && i < cs->memory_stats->n_stats; i++)
                printf("memory_%s=%" PRIu64 "\n", cs->memory_stats->stats[i]->key,
                       cs->memory_stats->stats[i]->value);
        if (cs && cs->pids_stats)
                printf("pids_current=%" PRIu64 "\npids_limit=%" PRIu64 "\n",
                       cs->pids_stats->current, cs->pids_stats->limit);
        return 0;
}

static int cmd_remove(struct opts *o)
{
        do_remove(o->id, o->timeout);
        return 0;
}

const struct ctl_command ctl_process_commands[] = {
        {"create", true, cmd_create},
        {"start", true, cmd_start},
        {"pause", true, cmd_pause},
        {"resume", true, cmd_resume},
        {"run", true, cmd_run},
        {"exec", true, cmd_exec},
        {"wait", true, cmd_wait},
        {"signal", true, cmd_signal},
        {"read-stdout", true, cmd_read_stdout},
        {"read-stderr", true, cmd_read_stderr},
        {"write-stdin", true, cmd_write_stdin},
        {"close-stdin", true, cmd_close_stdin},
        {"resize", true, cmd_resize},
        {"update", true, cmd_update},
        {"stats", true, cmd_stats},
        {"remove", true, cmd_remove},
        {NULL},
};
