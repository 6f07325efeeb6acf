#pragma once
/* Conversion of the protobuf OCI spec (kata/oci.proto) into struct agent_spec. */

#include <stdbool.h>

#include "cc/error.h"

#include "guest-agent/runtime/spec.h"
#include "kata/oci.pb-c.h"

int agent_spec_from_oci(const Grpc__Spec *in, struct agent_spec **ret, struct cc_error **err);
/* For ExecProcess: a process alone. On failure *out may be partly filled: call
 * agent_process_done(). */
int agent_process_from_oci(const Grpc__Process *p, struct agent_process *out,
                           struct cc_error **err);
/* For CreateContainer and UpdateContainer; unset fields stay as they are in *out. */
void agent_resources_from_oci(const Grpc__LinuxResources *r, struct agent_resources *out);
/* The pod's sandbox container (CRI annotation), run as the agent's own pause process. */
bool agent_spec_is_sandbox(const Grpc__Spec *s);
/* The value of annotation `key` in the spec, or NULL. */
const char *agent_spec_annotation(const Grpc__Spec *s, const char *key);
