#pragma once
/*
 * A small ttrpc service for tests, fuzzing and benchmarks ("cc.test.v1.Test"), built only on
 * google.protobuf.Timestamp so it needs no other protos:
 *   Echo    (inline) seconds+1 back, nanos unchanged
 *   Work    (worker) the same, on a worker thread
 *   Fail    (inline) fails with errno = seconds and message "failed as asked"
 *   Sleep   (worker) sleeps `nanos` ns, then echoes
 *   Block   (worker) waits until Release is called (or the deadline passes)
 *   Release (inline) wakes every Block
 *   Meta    (inline) answers seconds = length of metadata "containerd-namespace-ttrpc"
 *   Empty   (inline) answers google.protobuf.Empty (no response descriptor)
 *   Mirror  (worker) answers with the request's unknown fields: as large as the request
 */
#include "cc/ttrpc.h"

extern const struct cc_ttrpc_service test_ttrpc_service;
/* Echo, Work, Fail, Meta and Empty only: nothing that waits (for fuzzing). */
extern const struct cc_ttrpc_service test_ttrpc_service_quick;
void test_ttrpc_service_reset(void);
