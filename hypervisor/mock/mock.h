#pragma once
/*
 * The "mock" backend: a test double for the shim's unit tests. It starts no process and needs
 * no KVM; a VM "runs" from hv_vm_start() until hv_vm_stop() or hv_mock_exit(). Its agent
 * address is "unix:<run_dir>/agent.sock" (the test serves a fake agent there), its exit fd is
 * an eventfd, and it records every operation so tests can assert the call sequence.
 *
 * Select it with `backend = "mock"` in struct hv_config. The controls below are process-wide
 * and thread-safe.
 */

#include <stdbool.h>

struct hv_vm;

/* Makes the VM exit as if the VMM ended with `code` (>= 0) or was killed by `signal`. */
int hv_mock_exit(struct hv_vm *vm, int code, int signal);

/* The next call of `op` ("start", "stop", "wait", "agent_address", "disk_add",
 * "disk_remove") fails with -errnum. */
void hv_mock_fail_next(const char *op, int errnum);

/* Operations so far, space separated, e.g. "start:vm1 agent_address:vm1 stop:vm1"; disks as
 * "disk_add:vm1:<serial>" and "disk_remove:vm1:<serial>". Caller frees. */
char *hv_mock_calls(void);

/*
 * The disks hot-plugged into `vm` now, by slot (a removed disk frees its slot), space separated,
 * each as
 * "<serial>=<path>" with ",ro" when read-only; "" when none; NULL when out of memory. Like
 * QEMU, the mock has hv_config.hotplug_slots slots: -ENOSPC beyond them, -EEXIST for a serial
 * attached already, -ENOENT when removing one that is not. A stopped VM forgets its disks.
 * Caller frees.
 */
char *hv_mock_disks(struct hv_vm *vm);

/* Forgets recorded calls and pending failures. */
void hv_mock_reset(void);
