/*
 * Fuzz target: every request the agent decodes from the (untrusted) host. The first byte picks
 * a method of grpc.AgentService or grpc.Health; the rest is its protobuf payload, decoded with
 * the method's descriptor exactly as the ttrpc server does, then put through the agent's own
 * request checks and conversions that run before any side effect: id validation, the OCI spec
 * conversion (CreateContainer), the process conversion (ExecProcess), the resources conversion
 * (UpdateContainer), path checks (CopyFile), the volume Storages' checks and the block Devices'
 * checks and spec rewrite (CreateContainer) and a policy decision.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/agent.h"
#include "guest-agent/runtime/spec-oci.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent_policy *policy;

static void check_ids(const ProtobufCMessage *m)
{
        /* container_id / exec_id / sandbox_id fields, wherever a request has them. */
        const ProtobufCMessageDescriptor *d = m->descriptor;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
                        continue;
                if (!strstr(f->name, "_id") && strcmp(f->name, "path") != 0)
                        continue;
                const char *v = *(const char *const *)((const char *)m + f->offset);
                struct cc_error *err = NULL;
                if (v && strcmp(f->name, "path") == 0)
                        (void)agent_validate_abs_path(v, "path", &err);
                else if (v)
                        (void)agent_validate_id(v, f->name, &err);
                cc_error_free(err);
        }
}

static void convert(const char *method, const ProtobufCMessage *m)
{
        struct cc_error *err = NULL;
        if (strcmp(method, "CreateContainer") == 0) {
                const Grpc__CreateContainerRequest *r = (const void *)m;
                struct agent_spec *s = NULL;
                if (agent_spec_from_oci(r->oci, &s, &err) == 0) {
                        /* The whole request against the TEE default (policy version 2). */
                        static struct agent_policy *tee;
                        if (!tee && agent_policy_tee_default(&tee, NULL) < 0)
                                abort();
                        struct agent_policy_create c = {
                                .container_id = "c1",
                                .name = agent_spec_annotation(r->oci,
                                                              "io.kubernetes.cri.container-name"),
                                .image = agent_spec_annotation(r->oci,
                                                               "io.kubernetes.cri.image-name"),
                                .spec = s,
                        };
                        (void)agent_policy_check_create(tee, &c, &err);
                        agent_spec_free(s);
                }
                /* Block Devices against the spec's linux.devices, and the rewrite of its host
                 * numbers (devices.c); the message is this input's own copy. */
                Grpc__Linux *l = r->oci ? r->oci->linux_ : NULL;
                if (agent_devices_check(r->devices, r->n_devices, l, &err) == 0)
                        for (size_t i = 0; i < r->n_devices; i++)
                                (void)agent_devices_rewrite(l, r->devices[i]->container_path, 253,
                                                            (int64_t)i);
                cc_error_free(err);
                err = NULL;
                /* The pod's volumes: mount point and options (storage.c). */
                (void)agent_storages_image(r->storages, r->n_storages);
                for (size_t i = 0; i < r->n_storages; i++) {
                        bool tmpfs;
                        mode_t mode;
                        char *size = NULL;
                        cc_error_free(err);
                        err = NULL;
                        if (r->storages[i] && agent_storage_volume_check(r->storages[i], &tmpfs,
                                                                         &mode, &size, &err) == 0)
                                free(size);
                }
        } else if (strcmp(method, "ExecProcess") == 0) {
                const Grpc__ExecProcessRequest *r = (const void *)m;
                struct agent_process p;
                (void)agent_process_from_oci(r->process, &p, &err);
                agent_process_done(&p);
        } else if (strcmp(method, "SetPolicy") == 0) {
                const Grpc__SetPolicyRequest *r = (const void *)m;
                struct agent_policy *p = NULL;
                if (r->policy && agent_policy_parse(r->policy, &p, &err) == 0)
                        agent_policy_free(p);
        } else if (strcmp(method, "UpdateContainer") == 0) {
                const Grpc__UpdateContainerRequest *r = (const void *)m;
                struct agent_resources res = {0};
                agent_resources_from_oci(r->resources, &res);
                free(res.cpuset_cpus);
                free(res.cpuset_mems);
        }
        cc_error_free(err);
        err = NULL;
        (void)agent_policy_check(policy, method, "c1", &err);
        cc_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!policy)
                (void)agent_policy_parse("{\"rules\":[{\"requests\":[\"ExecProcess\",\"CopyFile\"],"
                                         "\"containers\":[\"c*\"],\"action\":\"deny\"}]}",
                                         &policy, NULL);
        if (size < 1)
                return 0;
        const struct cc_ttrpc_service *svcs[] = {agent_rpc_service(), agent_rpc_health_service()};
        size_t total = svcs[0]->n_methods + svcs[1]->n_methods;
        size_t idx = data[0] % total;
        const struct cc_ttrpc_method *meth = idx < svcs[0]->n_methods
                                                     ? &svcs[0]->methods[idx]
                                                     : &svcs[1]->methods[idx - svcs[0]->n_methods];
        /* The ttrpc server's NUL check (reject_nul_strings) runs on the same bytes first. */
        char field[128];
        (void)cc_pb_find_nul_string(meth->request, data + 1, size - 1, field, sizeof(field));
        ProtobufCMessage *m = protobuf_c_message_unpack(meth->request, NULL, size - 1, data + 1);
        if (!m)
                return 0;
        check_ids(m);
        convert(meth->name, m);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}
